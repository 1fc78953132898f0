# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vault_site_secrets in the shape of the vault role's generated secrets, with their KV paths."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: vault_site_entries
short_description: Site-provided secrets as entries of the vault role's list, with their paths
version_added: 1.0.0
description:
  - Turns each entry of vault_site_secrets (C({name, k8s_secret, keys})) into
    C({name, path, k8s_secret, keys}), the path being O(prefix)/<name>, so that the role reads,
    delivers and checks them as it does the secrets it generates. No C(fields), since nothing of
    theirs is generated.
  - Fails naming the entry when it lacks one of those keys (the role's argument spec and
    vault_site_secrets_problems check their values first).
options:
  _input:
    description: vault_site_secrets.
    type: list
    elements: dict
    required: true
  prefix:
    description: The KV path prefix of the MISP secrets (vault_kv_misp_prefix).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Read them
  community.hashi_vault.vault_kv2_get:
    path: "{{ item.path }}"
  loop: "{{ vault_site_secrets | cti.misp_platform.vault_site_entries(vault_kv_misp_prefix) }}"
"""

RETURN = r"""
_value:
  description: One C({name, path, k8s_secret, keys}) per input entry, in order.
  type: list
  elements: dict
"""


def vault_site_entries(site_secrets, prefix):
    if not isinstance(site_secrets, list):
        raise AnsibleFilterError(f"vault_site_entries: expected vault_site_secrets as a list, got {site_secrets!r}")
    out = []
    for secret in site_secrets:
        missing = [key for key in ("name", "k8s_secret", "keys") if not isinstance(secret, dict) or key not in secret]
        if missing:
            raise AnsibleFilterError(f"vault_site_entries: entry {secret!r} lacks {', '.join(missing)}")
        out.append(
            {
                "name": secret["name"],
                "path": f"{prefix}/{secret['name']}",
                "k8s_secret": secret["k8s_secret"],
                "keys": secret["keys"],
            }
        )
    return out


class FilterModule:
    def filters(self):
        return {"vault_site_entries": vault_site_entries}
