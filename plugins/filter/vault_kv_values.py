# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The values a generated KV secret should hold: existing ones kept, missing or rotated ones made."""

from __future__ import annotations

import secrets
import string
import uuid

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: vault_kv_values
short_description: The values a KV secret should hold after generating what is missing
version_added: 1.0.0
description:
  - Starts from the values the secret holds now (the input) and, for each field of O(fields),
    sets a fixed C(value) (as text), or generates a value when the field is missing or named in
    O(rotate); every other existing value is kept, so a second run returns the input unchanged.
  - A generated value is C(length) characters (default 64) drawn from C(chars) (default letters
    and digits; an entry is the name of a constant of Python's C(string) module or the characters
    themselves) with the C(secrets) module, or a random UUID when C(uuid) is true.
  - Fails naming the field when a field's settings have the wrong shape; values never appear in
    a message.
options:
  _input:
    description: The secret's current key to value (C({}) or null when it does not exist yet).
    type: dict
    required: true
  fields:
    description:
      - Field name to its settings, one of C(value) (fixed), C(uuid) (true for a UUID) or
        C(length) and C(chars).
    type: dict
    required: true
  rotate:
    description: Fields to generate anew even though they hold a value.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Work out the values
  ansible.builtin.set_fact:
    after: >-
      {{ current | cti.misp_platform.vault_kv_values({'username': {'value': 'misp'},
         'password': {'length': 32}, 'uuid': {'uuid': true}}, rotate=['password']) }}
  no_log: true
"""

RETURN = r"""
_value:
  description: Key to value (text), the input's keys included.
  type: dict
"""

DEFAULT_CHARS = ("ascii_letters", "digits")


def _characters(entry):
    named = getattr(string, entry, None)
    # Only the string constants: string.capwords, say, is a function, so "capwords" is letters.
    return named if isinstance(named, str) else entry


def _generate(field, spec):
    if spec.get("uuid"):
        return str(uuid.uuid4())
    length = spec.get("length", 64)
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise AnsibleFilterError(f"vault_kv_values: field {field!r}: length must be a positive integer, got {length!r}")
    chars = spec.get("chars", DEFAULT_CHARS)
    if isinstance(chars, str) or not isinstance(chars, (list, tuple)) or not all(isinstance(c, str) for c in chars):
        raise AnsibleFilterError(f"vault_kv_values: field {field!r}: chars must be a list of strings, got {chars!r}")
    alphabet = "".join(dict.fromkeys("".join(_characters(c) for c in chars)))
    if not alphabet:
        raise AnsibleFilterError(f"vault_kv_values: field {field!r}: chars gives no character to draw from")
    return "".join(secrets.choice(alphabet) for _i in range(length))


def vault_kv_values(current, fields, rotate=None):
    current = current or {}
    if not isinstance(current, dict):
        raise AnsibleFilterError(f"vault_kv_values: expected the secret's key to value, got a {type(current).__name__}")
    if not isinstance(fields, dict):
        raise AnsibleFilterError(f"vault_kv_values: fields must map names to settings, got {fields!r}")
    rotate = rotate or []
    out = dict(current)
    for field, spec in fields.items():
        if not isinstance(spec, dict):
            raise AnsibleFilterError(f"vault_kv_values: field {field!r}: settings must be a mapping, got {spec!r}")
        if "value" in spec:
            out[field] = str(spec["value"])
        elif field not in out or field in rotate:
            out[field] = _generate(field, spec)
    return out


class FilterModule:
    def filters(self):
        return {"vault_kv_values": vault_kv_values}
