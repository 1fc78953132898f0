# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's share of the MISP pod environment: the plain entries and only the secrets its
program reads (docs/identity.md), so that no container holds a secret it does not use."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: secret_env
short_description: Keep only the named secret variables of a container environment
version_added: 1.0.0
description:
  - Returns the entries of a Kubernetes container C(env) list in their order, keeping every entry
    that does not read a Secret and, of those reading a Secret (C(valueFrom.secretKeyRef)), only
    the ones named in O(names).
  - A plain entry whose value names a left-out variable as C($(NAME)) (the proxy URL naming the
    proxy account) is left out too, since it could only hold the unexpanded reference.
  - Names of O(names) absent from the list (a feature that is off) are ignored.
  - Fails naming the bad value when the input is not a list of env entries or O(names) is not a
    list of strings.
options:
  _input:
    description: The container's env list.
    type: list
    elements: dict
    required: true
  names:
    description: Names of the secret variables the container's program reads.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The update Job's environment
  ansible.builtin.debug:
    msg: "{{ misp_common_app_env | cti.misp_platform.secret_env(['MYSQL_USER', 'MYSQL_PASSWORD']) }}"
"""

RETURN = r"""
_value:
  description: The env entries kept, in their order.
  type: list
  elements: dict
"""


def _reads_secret(entry: dict) -> bool:
    return "secretKeyRef" in (entry.get("valueFrom") or {})


def secret_env(env, names):
    if not isinstance(env, list) or not all(isinstance(e, dict) and "name" in e for e in env):
        raise AnsibleFilterError(f"secret_env: expected a list of env entries with a name, got {env!r}")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise AnsibleFilterError(f"secret_env: names must be a list of variable names, got {names!r}")
    dropped = {entry["name"] for entry in env if _reads_secret(entry) and entry["name"] not in names}
    return [
        entry
        for entry in env
        if entry["name"] not in dropped and not any(f"$({name})" in str(entry.get("value", "")) for name in dropped)
    ]


class FilterModule:
    def filters(self):
        return {"secret_env": secret_env}
