# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every name vault_rotate accepts: a secret's name and <name>.<generated field>."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: vault_rotatable
short_description: The names vault_rotate accepts for the secrets the vault role generates
version_added: 1.0.0
description:
  - For each secret of the input (C({name, fields}), as the vault role's list of generated
    secrets), returns its C(name), then C(<name>.<field>) for each field that is generated, that is
    every field without a fixed C(value) (account names are fixed, so they cannot be rotated).
  - Fails naming the entry when a secret has no name or its fields are not a mapping.
options:
  _input:
    description: The secrets, each a mapping with C(name) and C(fields) (field name to settings).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse an unknown name
  ansible.builtin.assert:
    that: vault_rotate | difference(secrets | cti.misp_platform.vault_rotatable) | length == 0
"""

RETURN = r"""
_value:
  description: The secrets' names first, in order, then their generated fields as C(<name>.<field>).
  type: list
  elements: str
"""


def vault_rotatable(secrets):
    if not isinstance(secrets, list):
        raise AnsibleFilterError(f"vault_rotatable: expected a list of secrets, got {secrets!r}")
    names, fields = [], []
    for secret in secrets:
        if not isinstance(secret, dict) or not isinstance(secret.get("name"), str) or not secret["name"]:
            raise AnsibleFilterError(f"vault_rotatable: each secret needs a name, got {secret!r}")
        if not isinstance(secret.get("fields"), dict):
            raise AnsibleFilterError(f"vault_rotatable: secret {secret['name']!r}: fields must be a mapping")
        names.append(secret["name"])
        generated = [field for field, spec in secret["fields"].items() if "value" not in (spec or {})]
        fields += [f"{secret['name']}.{field}" for field in generated]
    return names + fields


class FilterModule:
    def filters(self):
        return {"vault_rotatable": vault_rotatable}
