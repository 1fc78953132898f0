# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which secret keys are missing or empty, named without their values."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: missing_secret_keys
short_description: The secret keys that are missing or empty
version_added: 1.0.0
description:
  - For each Secret name and key of the input, in its order, whose value in O(data) is absent,
    empty or false, returns O(label) filled with the name and key. Values never appear in the
    result, so the list may be printed.
  - Fails naming the bad input when the input or O(data) has the wrong shape.
options:
  _input:
    description: The keys wanted, by Secret name.
    type: dict
    required: true
  data:
    description: The values given, by Secret name then key (values may be base64 or plain).
    type: dict
    required: true
  label:
    description: How a missing key is named; C({name}) and C({key}) are replaced.
    type: str
    default: "{name}.{key}"
"""

EXAMPLES = r"""
- name: Stop when a key is missing
  ansible.builtin.assert:
    that: missing | length == 0
    fail_msg: "Missing or empty: {{ missing | join(', ') }}"
  vars:
    missing: >-
      {{ {'app': ['salt'], 'redis': ['password']}
         | cti.misp_platform.missing_secret_keys(misp_secrets, 'misp_secrets.{name}.{key}') }}
"""

RETURN = r"""
_value:
  description: The labels of the missing keys.
  type: list
  elements: str
"""


def missing_secret_keys(wanted, data, label="{name}.{key}"):
    if not isinstance(wanted, dict) or not all(isinstance(keys, list) for keys in wanted.values()):
        raise AnsibleFilterError(f"missing_secret_keys: expected {{name: [keys]}}, got {wanted!r}")
    if not isinstance(data, dict):
        raise AnsibleFilterError(
            f"missing_secret_keys: data must be {{name: {{key: value}}}}, got a {type(data).__name__}"
        )
    missing = []
    for name, keys in wanted.items():
        given = data.get(name) or {}
        if not isinstance(given, dict):
            raise AnsibleFilterError(f"missing_secret_keys: data[{name!r}] must be a mapping of keys to values")
        missing += [label.format(name=name, key=key) for key in keys if str(given.get(key) or "") == ""]
    return missing


class FilterModule:
    def filters(self):
        return {"missing_secret_keys": missing_secret_keys}
