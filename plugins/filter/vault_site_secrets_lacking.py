# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which site-provided secrets Vault lacks, or which of their keys, named without values."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: vault_site_secrets_lacking
short_description: The site-provided secrets missing in Vault, or the keys they lack
version_added: 1.0.0
description:
  - For each result of a looped M(community.hashi_vault.vault_kv2_get) read (the C(results) of
    what it registered with C(failed_when=false), the loop item a C({path, keys}) entry of
    vault_site_secrets), returns
    C(<mount>/<path> is missing in Vault) when the read found no secret (with the reason, unless
    it is Vault's plain "missing path"), or C(<mount>/<path> lacks key <keys>) for the keys the
    secret does not hold. Values never appear in the result, so it may be printed.
  - Fails when the input is not such a list of results.
options:
  _input:
    description: The C(results) of the looped read.
    type: list
    elements: dict
    required: true
  mount:
    description: The KV v2 mount the secrets were read from, to name them.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Stop when a site-provided secret is missing or lacks a key
  ansible.builtin.assert:
    that: lacking | length == 0
    fail_msg: "{{ lacking | join('; ') }}"
  vars:
    lacking: "{{ site_read.results | cti.misp_platform.vault_site_secrets_lacking('secret') }}"
"""

RETURN = r"""
_value:
  description: One message per missing secret or secret lacking keys, in the order read.
  type: list
  elements: str
"""

# What community.hashi_vault says when the path holds no secret: "missing" says it all.
NOT_FOUND = "Invalid or missing path"


def vault_site_secrets_lacking(results, mount):
    if not isinstance(results, list) or not all(isinstance(result, dict) for result in results):
        raise AnsibleFilterError("vault_site_secrets_lacking: expected the results of a looped read")
    out = []
    for result in results:
        item = result.get("item") or {}
        where = f"{mount}/{item.get('path')}"
        secret = result.get("secret")
        if secret is None:
            why = result.get("msg") or ""
            out.append(f"{where} is missing in Vault" + ("" if not why or NOT_FOUND in why else f" ({why})"))
            continue
        lacking = [key for key in item.get("keys") or [] if key not in secret]
        if lacking:
            out.append(f"{where} lacks key {', '.join(lacking)}")
    return out


class FilterModule:
    def filters(self):
        return {"vault_site_secrets_lacking": vault_site_secrets_lacking}
