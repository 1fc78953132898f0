# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with the vault role's site-provided secrets (vault_site_secrets)."""

from __future__ import annotations

import json
import re

DOCUMENTATION = r"""
name: vault_site_secrets_problems
short_description: What is wrong with vault_site_secrets
version_added: 1.0.0
description:
  - Checks the secrets the site writes into Vault itself and returns one message per problem, each
    naming the entry and the bad value; empty when every entry is usable.
  - Site secrets share the delivery loop and MISP's prefix with the generated ones, so a clash would
    overwrite a generated secret's path or Kubernetes Secret. Each C(name) is a DNS label, not that of
    a generated secret and listed once; each C(k8s_secret) a DNS-1123 name of at most 253 characters,
    not delivered from a generated secret and listed once; C(keys) a non-empty list of Secret keys.
options:
  _input:
    description: vault_site_secrets, a list of C({name, k8s_secret, keys}).
    type: raw
    required: true
  generated:
    description: The generated secrets, each with C(name) and C(k8s_secret).
    type: list
    elements: dict
    required: true
  name_pattern:
    description: Regular expression of a DNS label.
    type: str
    required: true
  k8s_name_pattern:
    description: Regular expression of a DNS-1123 Secret name.
    type: str
    required: true
  k8s_key_pattern:
    description: Regular expression of a Secret key.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the site-provided secrets
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "vault: {{ __problems | join('; ') }}."
  vars:
    __problems: >-
      {{ vault_site_secrets | cti.misp_platform.vault_site_secrets_problems(__vault_secrets, __vault_name_pattern,
                                                                            __vault_k8s_name_pattern,
                                                                            __vault_k8s_key_pattern) }}
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the entry and the bad value; empty when there is none.
  type: list
  elements: str
"""

SECRET_NAME_MAX = 253


def _entry_problems(entry: dict, site: list, generated: list, patterns: tuple) -> list[str]:
    name_pattern, k8s_name_pattern, key_pattern = patterns
    problems = []
    name = entry.get("name", "")
    if not isinstance(name, str) or not name_pattern.match(name):
        problems.append(f"name '{name}' is not a DNS label")
    elif name in [g["name"] for g in generated]:
        problems.append(f"name '{name}' is that of a generated secret")
    elif [s.get("name") for s in site].count(name) > 1:
        problems.append(f"name '{name}' is listed twice")
    secret = entry.get("k8s_secret", "")
    if not isinstance(secret, str) or not k8s_name_pattern.match(secret) or len(secret) > SECRET_NAME_MAX:
        problems.append(f"k8s_secret '{secret}' is not a DNS-1123 Secret name")
    elif secret in [g["k8s_secret"] for g in generated]:
        problems.append(f"k8s_secret '{secret}' is delivered from a generated secret")
    elif [s.get("k8s_secret") for s in site].count(secret) > 1:
        problems.append(f"k8s_secret '{secret}' is listed twice")
    wanted = entry.get("keys")
    if not isinstance(wanted, list) or not wanted:
        problems.append(f"keys must be a non-empty list of Secret keys (got {json.dumps(wanted)})")
    elif not all(isinstance(key, str) and key_pattern.match(key) for key in wanted):
        problems.append(f"keys {json.dumps(wanted)} are not all Secret keys (letters, digits, -, _, .)")
    return problems


def vault_site_secrets_problems(site, generated, name_pattern, k8s_name_pattern, k8s_key_pattern):
    """Messages naming each bad entry of vault_site_secrets; empty when all are usable."""
    if not isinstance(site, list) or not all(isinstance(entry, dict) for entry in site):
        return [f"vault_site_secrets must be a list of {{name, k8s_secret, keys}} (got {json.dumps(site)})"]
    patterns = tuple(re.compile(p) for p in (name_pattern, k8s_name_pattern, k8s_key_pattern))
    return [
        f"vault_site_secrets entry {json.dumps(entry)}: {problem}"
        for entry in site
        for problem in _entry_problems(entry, site, generated, patterns)
    ]


class FilterModule:
    def filters(self):
        return {"vault_site_secrets_problems": vault_site_secrets_problems}
