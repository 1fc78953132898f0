# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The workloads whose pods use given Secrets, so that a rotation restarts exactly those."""

from __future__ import annotations

DOCUMENTATION = r"""
name: workloads_using_secrets
short_description: The Deployments and StatefulSets whose pods use given Secrets
version_added: 1.0.0
description:
  - Takes the results of reading workloads by kind (a looped C(kubernetes.core.k8s_info) whose
    C(item) is the kind) and returns C({kind, name}) of each workload whose pod template uses one of
    O(secrets), in the order read.
  - A pod uses a Secret through a container's or init container's C(env) (C(valueFrom.secretKeyRef))
    or C(envFrom) (C(secretRef)), or a C(secret) or C(projected) volume.
options:
  _input:
    description: The C(results) of the registered k8s_info loop over workload kinds.
    type: list
    elements: dict
    required: true
  secrets:
    description: Names of the Secrets.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Work out which workloads use the rotated Secrets
  ansible.builtin.set_fact:
    __vault_restart: >-
      {{ __vault_workloads.results | cti.misp_platform.workloads_using_secrets(vault_rollout_secrets) }}
"""

RETURN = r"""
_value:
  description: kind and name of each workload using one of the Secrets.
  type: list
  elements: dict
"""


def _secrets_used(pod: dict) -> set[str]:
    used = set()
    for container in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                used.add(ref.get("name"))
        used.update(
            source["secretRef"].get("name") for source in container.get("envFrom") or [] if source.get("secretRef")
        )
    for volume in pod.get("volumes") or []:
        if volume.get("secret"):
            used.add(volume["secret"].get("secretName"))
        sources = (volume.get("projected") or {}).get("sources") or []
        used.update(source["secret"].get("name") for source in sources if source.get("secret"))
    return used


def workloads_using_secrets(results, secrets):
    """kind and name of each workload read whose pods use one of ``secrets``."""
    wanted = set(secrets)
    return [
        {"kind": result["item"], "name": workload["metadata"]["name"]}
        for result in results
        for workload in result.get("resources") or []
        if _secrets_used(workload["spec"]["template"]["spec"]) & wanted
    ]


class FilterModule:
    def filters(self):
        return {"workloads_using_secrets": workloads_using_secrets}
