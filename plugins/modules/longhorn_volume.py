#!/usr/bin/python
# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: longhorn_volume
short_description: Manage a Longhorn volume, and optionally the PV and PVC that expose it
version_added: 0.1.0
author:
  - cti.misp_platform developers (@cti)
description:
  - Creates, grows or deletes a Longhorn C(Volume) custom resource (C(longhorn.io/v1beta2)).
  - Options left unset are not sent, so Longhorn applies its cluster-wide defaults on creation and
    an existing value is left as it is.
  - Volumes only grow. Shrinking, and changing O(data_engine) or O(encrypted) of an existing volume,
    fail naming the option, and nothing is changed.
  - Bad input fails before anything is sent to the cluster, naming the option and the value.
  - Optionally creates a PersistentVolume for the volume (CSI driver C(driver.longhorn.io)) and a
    PersistentVolumeClaim bound to it, as Longhorn's UI does, so a workload can mount it.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The API server validates the change as a dry run and stores nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the Longhorn volume; also the C(volumeHandle) of the PersistentVolume.
    type: str
    required: true
  namespace:
    description:
      - Namespace Longhorn runs in.
    type: str
    default: longhorn-system
  state:
    description:
      - V(present) creates the volume or brings it to the options; V(absent) deletes the PVC, the
        PV (when O(pvc) and O(pv) are given) and then the volume.
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - Size of the volume as bytes (V(1073741824)) or a Kubernetes quantity (V(10Gi), V(512Mi), V(1.5G)).
      - Rounded up to a multiple of 2 MiB, as Longhorn does.
      - Required when O(state=present). A size larger than the current one grows the volume.
    type: raw
  number_of_replicas:
    description:
      - Number of replicas, 1 to 20; must be 1 with O(data_locality=strict-local).
    type: int
  data_locality:
    description:
      - Whether Longhorn keeps a replica on the node the volume is attached to.
    type: str
    choices: [disabled, best-effort, strict-local]
  access_mode:
    description:
      - V(rwo) read-write by one node, V(rwop) by one pod, V(rwx) by many nodes (over NFS).
    type: str
    choices: [rwo, rwop, rwx]
  frontend:
    description:
      - How the volume is exposed on the node. The empty string means no frontend.
    type: str
    choices: [blockdev, iscsi, nvmf, ""]
  encrypted:
    description:
      - Whether the volume is encrypted; can only be set at creation.
    type: bool
  data_engine:
    description:
      - Longhorn data engine; can only be set at creation.
    type: str
    choices: [v1, v2]
  node_selector:
    description:
      - Node tags a replica's node must carry.
    type: list
    elements: str
  disk_selector:
    description:
      - Disk tags a replica's disk must carry.
    type: list
    elements: str
  stale_replica_timeout:
    description:
      - Minutes after which a failed replica is removed.
    type: int
  migratable:
    description:
      - Whether the volume can be live-migrated; needs O(access_mode=rwx).
    type: bool
  pv:
    description:
      - When given, a PersistentVolume for the volume is created if missing. An existing one must
        point at this volume.
    type: dict
    suboptions:
      name:
        description:
          - Name of the PersistentVolume; defaults to O(name).
        type: str
      fs_type:
        description:
          - File system the CSI driver formats the volume with.
        type: str
        default: ext4
      storage_class_name:
        description:
          - Storage class of the PersistentVolume and PersistentVolumeClaim.
        type: str
        default: longhorn-static
  pvc:
    description:
      - When given (with O(pv)), a PersistentVolumeClaim bound to the PersistentVolume is created if
        missing. When the volume grows, the claim's request grows first, as Longhorn requires.
    type: dict
    suboptions:
      name:
        description:
          - Name of the PersistentVolumeClaim; defaults to O(name).
        type: str
      namespace:
        description:
          - Namespace of the workload that mounts the claim.
        type: str
        required: true
  wait:
    description:
      - Wait until the volume reports O(wait_for_state) and O(wait_for_robustness), or with
        O(state=absent) until it is gone. Not done in check mode.
    type: bool
    default: false
  wait_for_state:
    description:
      - C(status.state) to wait for.
    type: str
    choices: [creating, attached, detached, attaching, detaching, deleting]
  wait_for_robustness:
    description:
      - C(status.robustness) to wait for.
    type: str
    choices: [healthy, degraded, faulted, unknown]
  wait_timeout:
    description:
      - Seconds to wait before failing with the state last seen.
      - At least V(1), whatever O(state); a smaller value is refused before anything is sent.
    type: int
    default: 120
  wait_sleep:
    description:
      - Seconds between two reads of the volume while waiting.
      - At least V(1), whatever O(state); a smaller value is refused before anything is sent.
    type: int
    default: 2
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
seealso:
  - module: kubernetes.core.k8s
notes:
  - Connection options and their C(K8S_AUTH_*) environment variables work as in kubernetes.core.k8s.
"""

EXAMPLES = r"""
- name: A 10 GiB volume for MISP's database, three replicas, mounted through a PVC
  cti.misp_platform.longhorn_volume:
    name: misp-db
    size: 10Gi
    number_of_replicas: 3
    data_locality: best-effort
    access_mode: rwo
    pv:
      fs_type: ext4
    pvc:
      namespace: misp

- name: Grow it to 20 GiB
  cti.misp_platform.longhorn_volume:
    name: misp-db
    size: 20Gi
    pv: {}
    pvc:
      namespace: misp

- name: Wait until Longhorn reports the attached volume healthy
  cti.misp_platform.longhorn_volume:
    name: misp-db
    size: 20Gi
    wait: true
    wait_for_state: attached
    wait_for_robustness: healthy
    wait_timeout: 600

- name: Delete the claim, the PV and the volume
  cti.misp_platform.longhorn_volume:
    name: misp-db
    state: absent
    pv: {}
    pvc:
      namespace: misp
"""

RETURN = r"""
result:
  description:
    - The Volume object as the API returned it (in check mode, the dry-run object); empty after deletion.
  returned: success
  type: dict
  sample:
    apiVersion: longhorn.io/v1beta2
    kind: Volume
    metadata:
      name: misp-db
      namespace: longhorn-system
    spec:
      size: "10737418240"
      numberOfReplicas: 3
    status:
      state: detached
      robustness: unknown
pv:
  description: The PersistentVolume, when O(pv) is given.
  returned: when O(pv) is given and O(state=present)
  type: dict
pvc:
  description: The PersistentVolumeClaim, when O(pvc) is given.
  returned: when O(pvc) is given and O(state=present)
  type: dict
method:
  description: What was done to the volume.
  returned: when the volume was created, updated or deleted
  type: str
  sample: update
duration:
  description: Seconds spent waiting.
  returned: when O(wait=true)
  type: int
diff:
  description: Before and after, as kubernetes.core.k8s reports them.
  returned: in diff mode
  type: dict
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_args import k8s_argspec
from ansible_collections.cti.misp_platform.plugins.module_utils._longhorn import (
    VOLUME_ARG_SPEC,
    run_module,
)


def argspec():
    return k8s_argspec(VOLUME_ARG_SPEC)


def main():
    module = AnsibleK8SModule(
        argument_spec=argspec(),
        required_by={"pvc": "pv"},
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
