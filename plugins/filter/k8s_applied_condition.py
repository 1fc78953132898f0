# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an object that cti.misp_platform.k8s_apply applied has a condition."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: k8s_applied_condition
short_description: Whether an applied object's status has a condition
version_added: 1.0.0
description:
  - Looks in the registered result of M(cti.misp_platform.k8s_apply) for the first object of
    O(kind) (and of O(name) when given) and tells whether O(condition) is among its true status
    conditions, as the apply read them. A Job found complete, for instance, needs no wait.
  - False when the result holds no such object (in check mode with O(name) not applied yet, say).
  - Fails naming the bad input when the input is not such a result.
options:
  _input:
    description: The registered result of M(cti.misp_platform.k8s_apply).
    type: dict
    required: true
  kind:
    description: Kind of the object, V(Job) for instance.
    type: str
    required: true
  condition:
    description: Type of the condition, V(Complete) for instance.
    type: str
    required: true
  name:
    description: Name of the object; the first object of O(kind) when omitted.
    type: str
"""

EXAMPLES = r"""
- name: Wait for the Job unless the apply found it complete
  kubernetes.core.k8s_info:
    kind: Job
    namespace: misp
    name: misp-update
    wait: true
    wait_condition: {type: Complete}
  when: not (applied | cti.misp_platform.k8s_applied_condition('Job', 'Complete', 'misp-update'))
"""

RETURN = r"""
_value:
  description: Whether the object has the condition.
  type: bool
"""


def k8s_applied_condition(result, kind, condition, name=None):
    objects = result.get("objects") if isinstance(result, Mapping) else None
    if not isinstance(objects, list) or not all(isinstance(o, Mapping) for o in objects):
        raise AnsibleFilterError(
            "k8s_applied_condition: expected the result of cti.misp_platform.k8s_apply (with 'objects'), "
            f"got {result!r}"
        )
    for obj in objects:
        if obj.get("kind") == kind and (name is None or obj.get("name") == name):
            return condition in (obj.get("conditions") or [])
    return False


class FilterModule:
    def filters(self):
        return {"k8s_applied_condition": k8s_applied_condition}
