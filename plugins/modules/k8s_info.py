#!/usr/bin/python
# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_info
short_description: Read Kubernetes objects as kubernetes.core.k8s_info does, in the controller
version_added: 1.0.0
author:
  - cti.misp_platform developers (@cti)
description:
  - M(kubernetes.core.k8s_info) with the same options and result, run by its own code, which on a
    C(local) connection runs in the controller's own process (the action plugin) instead of a new
    Python process that imports the Kubernetes client first (most of a read's second). It reads the
    task's C(environment) (E(K8S_AUTH_KUBECONFIG)...) as the module would.
  - On any other connection the task runs M(kubernetes.core.k8s_info) on the host.
  - The roles of this collection read through it; a re-run of a role reads the cluster without a
    module process.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - kubernetes.core.k8s_name_options
  - kubernetes.core.k8s_wait_options
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - cti.misp_platform.in_controller
  - cti.misp_platform.in_controller.read_only
options:
  kind:
    description:
      - Kind of the objects, V(Secret) for instance.
    type: str
    required: true
  label_selectors:
    description: Label selectors the objects must all match.
    type: list
    elements: str
    default: []
  field_selectors:
    description: Field selectors the objects must all match.
    type: list
    elements: str
    default: []
  hidden_fields:
    description:
      - Fields left out of the result, V(metadata.managedFields) for instance.
    type: list
    elements: str
seealso:
  - module: kubernetes.core.k8s_info
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
"""

EXAMPLES = r"""
- name: Read the MISP Secrets of the namespace in one listing
  cti.misp_platform.k8s_info:
    kind: Secret
    namespace: misp
  register: misp_secrets
  no_log: true

- name: Wait until the frontend Deployment is available
  cti.misp_platform.k8s_info:
    kind: Deployment
    namespace: misp
    name: misp-frontend-blue
    wait: true
    wait_condition:
      type: Available
"""

RETURN = r"""
api_found:
  description: Whether O(api_version) and O(kind) name an API of the cluster.
  returned: always
  type: bool
  sample: true
resources:
  description: The objects found, as the API server returns them (without O(hidden_fields)).
  returned: success
  type: list
  elements: dict
  sample:
    - {apiVersion: v1, kind: Service, metadata: {name: misp-frontend, namespace: misp},
       spec: {selector: {misp-platform.cti/color: blue}}}
"""
