# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The patch of a Deployment or StatefulSet that restarts its pods, as kubectl rollout restart."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.plugin_utils._conventions import RESTART_ANNOTATION

DOCUMENTATION = r"""
name: rollout_restart_patch
short_description: The patch that restarts a workload's pods, as kubectl rollout restart writes it
version_added: 1.0.0
description:
  - Returns the strategic merge patch C(kubectl rollout restart) applies to a Deployment,
    StatefulSet or DaemonSet - the pod template annotation C(kubectl.kubernetes.io/restartedAt) set to
    the given time in UTC, RFC 3339 with seconds - for the C(definition) of a C(kubernetes.core.k8s)
    task with C(state=patched). A new time makes a new pod template, so the controller replaces the pods.
  - Fails naming the value when the input is not a date and time.
options:
  _input:
    description: When the restart is asked; a time without a time zone is taken as UTC, as
      C(now(utc=true)) gives it.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Restart the workers' pods
  kubernetes.core.k8s:
    state: patched
    api_version: apps/v1
    kind: Deployment
    namespace: misp
    name: misp-workers
    definition: "{{ now(utc=true) | cti.misp_platform.rollout_restart_patch }}"
"""

RETURN = r"""
_value:
  description: The pod template annotation C(kubectl.kubernetes.io/restartedAt), set to the time, under
    C(spec.template.metadata.annotations).
  type: dict
"""


def rollout_restart_patch(when):
    if not isinstance(when, datetime.datetime):
        raise AnsibleFilterError(f"rollout_restart_patch: expected a date and time, got {when!r}")
    if when.tzinfo is not None:
        when = when.astimezone(datetime.UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: stamp}}}}}


class FilterModule:
    def filters(self):
        return {"rollout_restart_patch": rollout_restart_patch}
