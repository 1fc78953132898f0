# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The offenders of access_rbac's service account audit of a MISP namespace."""

from __future__ import annotations

DOCUMENTATION = r"""
name: service_account_audit_problems
short_description: What breaks the one-account-per-part rule of MISP's service accounts
version_added: 1.0.0
description:
  - Reads the objects of a MISP namespace and returns one message per offence, each naming the
    object and the account; empty when every part keeps to its own account.
  - >-
    Each part of O(components) has service account C(misp-<part>); one that does not call the
    API (not in O(api_access)) mounts no token. No RoleBinding or ClusterRoleBinding binds a part's
    account (or C(default)) of O(namespace) to a role beyond its entry in O(api_access).
  - >-
    Each workload runs as C(misp-<part>), the part being its C(app.kubernetes.io/name) label
    without C(misp-) (else its component label): the update Job shares cron's component but runs
    as misp-update. A workload of a part that does not call the API mounts no token.
options:
  _input:
    description: The objects read, by kind (C(ServiceAccount), C(RoleBinding), C(ClusterRoleBinding),
      C(Deployment), C(StatefulSet), C(CronJob), C(Job)), each a list of Kubernetes objects.
    type: dict
    required: true
  components:
    description: MISP's parts (access_rbac_audit_components).
    type: list
    elements: str
    required: true
  api_access:
    description: Parts that call the API, each with the roles (C(Role/<name>) or C(ClusterRole/<name>))
      it may be bound to (access_rbac_audit_api_access).
    type: dict
    required: true
  namespace:
    description: The namespace audited; only service accounts of it count as subjects.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the service accounts of MISP's parts
  ansible.builtin.assert:
    that: __offenders | length == 0
    fail_msg: "{{ __offenders | join('; ') }}"
  vars:
    __offenders: >-
      {{ __access_rbac_audit | cti.misp_platform.service_account_audit_problems(access_rbac_audit_components,
                                                                                access_rbac_audit_api_access,
                                                                                access_rbac_audit_namespace) }}
"""

RETURN = r"""
_value:
  description: One message per offence, naming the object and the account; empty when there is none.
  type: list
  elements: str
"""

BINDINGS = ("RoleBinding", "ClusterRoleBinding")
WORKLOADS = ("Deployment", "StatefulSet", "CronJob", "Job")


def _part(name: str) -> str:
    return name.removeprefix("misp-")


def _account_problems(objects: dict, components: list, api_access: dict) -> list[str]:
    accounts = {account["metadata"]["name"]: account for account in objects.get("ServiceAccount", [])}
    problems = []
    for part in components:
        account = f"misp-{part}"
        if account not in accounts:
            problems.append(f"service account {account} is missing")
        elif part not in api_access and accounts[account].get("automountServiceAccountToken", True):
            problems.append(f"service account {account} mounts its token (automountServiceAccountToken is not false)")
    return problems


def _binding_problems(objects: dict, components: list, api_access: dict, namespace: str) -> list[str]:
    problems = []
    for kind in BINDINGS:
        for binding in objects.get(kind, []):
            ref = f"{binding['roleRef']['kind']}/{binding['roleRef']['name']}"
            for subject in binding.get("subjects") or []:
                if subject.get("kind") != "ServiceAccount" or subject.get("namespace") != namespace:
                    continue
                part = _part(subject["name"])
                ours = subject["name"] == "default" or part in components
                if ours and ref not in api_access.get(part, []):
                    problems.append(f"{kind} {binding['metadata']['name']} binds {subject['name']} to {ref}")
    return problems


def _workload_problems(objects: dict, api_access: dict) -> list[str]:
    problems = []
    for kind in WORKLOADS:
        for workload in objects.get(kind, []):
            name = workload["metadata"]["name"]
            labels = workload["metadata"].get("labels") or {}
            label = labels.get("app.kubernetes.io/name", f"misp-{labels.get('app.kubernetes.io/component', '')}")
            part = _part(str(label))
            template = workload["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else workload["spec"]
            pod = template["template"]["spec"]
            account = pod.get("serviceAccountName", "default")
            if account != f"misp-{part}":
                problems.append(f"{kind} {name} ({part or 'no name label'}) runs as {account}, not misp-{part}")
            elif part not in api_access and pod.get("automountServiceAccountToken", False):
                problems.append(f"{kind} {name} mounts the token of {account}")
    return problems


def service_account_audit_problems(objects, components, api_access, namespace):
    """Messages naming each offence against one service account per part; empty when there is none."""
    return (
        _account_problems(objects, components, api_access)
        + _binding_problems(objects, components, api_access, namespace)
        + _workload_problems(objects, api_access)
    )


class FilterModule:
    def filters(self):
        return {"service_account_audit_problems": service_account_audit_problems}
