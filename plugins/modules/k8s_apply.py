#!/usr/bin/python
# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_apply
short_description: Apply a list of Kubernetes objects in one run, with a diff per object
version_added: 0.2.0
author:
  - cti.misp_platform developers (@cti)
description:
  - Applies every object of O(definitions), in order, as M(kubernetes.core.k8s) does with
    C(apply=true) (client-side apply, the same field ownership and
    C(kubectl.kubernetes.io/last-applied-configuration) annotation), creates or patches them
    without that annotation with O(apply=false), or deletes them with O(state=absent).
  - All the objects go through one module run and one API client, where a
    M(kubernetes.core.k8s) loop starts a Python process per object; the roles of this collection
    apply each role's objects with one task for that reason.
  - An object the apply would leave as it is is read once and not written; M(kubernetes.core.k8s)
    reads it twice more, or sends a patch that changes nothing. Both decide with the same patch.
  - On a C(local) connection the objects are applied in the controller's own process (the action
    plugin), which has the Kubernetes client imported already, instead of a new Python process
    for the module; it reads the task's C(environment) (E(K8S_AUTH_KUBECONFIG)...) as the module
    would. On any other connection the module runs on the host, with that host's Python.
  - With O(prune), objects of the given kinds and labels that O(definitions) no longer holds are
    deleted after the others are applied, so that what a role stops rendering (a disabled task's
    CronJob, say) goes away.
  - With C(--diff), each object that changes shows its own diff, headed by its kind, namespace and
    name, without what the server and the controllers write (see below), so that a hand edit shows
    as the fields it changed.
  - An object counts as changed only when the apply changed it. M(kubernetes.core.k8s) compares
    the object read before the apply with the object after it (after the wait, with O(wait));
    differences only in what the server and the controllers write (C(status),
    C(metadata.resourceVersion), C(metadata.generation), C(metadata.managedFields),
    C(metadata.uid), C(metadata.creationTimestamp)), such as a Deployment's ready replicas
    changing while it is waited for, are not a change of this module.
  - An object that cannot be applied stops the run with an error naming it; the objects before it
    are listed in RV(objects). A definition without kind, apiVersion or name fails before anything
    is sent to the cluster.
  - Do not pass Secrets without C(no_log) on the task; their data would show in the diff.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - cti.misp_platform.in_controller
attributes:
  check_mode:
    support: full
    details: The API server validates each change as a dry run and stores nothing.
  diff_mode:
    support: full
options:
  definitions:
    description:
      - The objects, each a dictionary or a YAML text holding one or more documents (the output of
        C(lookup('ansible.builtin.template', ...)) for instance). Empty documents are ignored, and
        the items of a C(*List) kind are applied one by one.
      - One of O(definitions) and O(template) is required.
    type: list
    elements: raw
  template:
    description:
      - Templates whose rendered YAML (one or more documents each) holds the objects, found as
        M(ansible.builtin.template) finds its C(src) (a role's C(templates) directory first) and
        rendered on the controller with the task's variables, as M(kubernetes.core.k8s) renders
        its C(template). Applied as O(definitions) would be.
      - Unlike C(query('ansible.builtin.template', ...)) in O(definitions), which copies every
        variable of the play for each file, the templates share one view of the variables
        (rendering only reads them); a role's objects render several times faster this way.
    type: list
    elements: str
  namespace:
    description:
      - Namespace of the objects that name none. Cluster-scoped objects ignore it.
    type: str
  apply:
    description:
      - V(false) creates each object, or patches the one that exists, as M(kubernetes.core.k8s)
        does without C(apply), and keeps no C(kubectl.kubernetes.io/last-applied-configuration)
        annotation. Meant for Secrets, whose data that annotation would copy in clear.
    type: bool
    default: true
  state:
    description:
      - V(present) applies the objects; V(absent) deletes those that exist.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - Wait for each object, after applying it and before the next, as M(kubernetes.core.k8s)
        does (Deployments, StatefulSets and DaemonSets until their pods are updated and ready, Pods
        until ready, others until they exist; deleted objects until they are gone).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for each object.
    type: int
    default: 120
  wait_sleep:
    description:
      - Seconds between two checks while waiting.
    type: int
    default: 5
  absent:
    description:
      - Objects to delete after applying O(definitions), as O(state=absent) deletes them (dry run in
        check mode, a diff per object), such as those a role renders only under settings it no
        longer has (an autoscaler turned off, for instance). Each is an object or a YAML text, like an entry of
        O(definitions); C(apiVersion), C(kind) and C(metadata.name) are enough, and O(namespace)
        is added where it names none. One that does not exist changes nothing.
      - Needs O(state=present); an object that O(definitions) also holds is refused.
    type: list
    elements: raw
    default: []
  prune:
    description:
      - After applying, deletes the objects of each entry's kind in its namespace that carry all of
        its labels and are not among O(definitions), as the objects of O(state=absent) are
        deleted (dry run in check mode, a diff per object).
      - Needs O(state=present) and a namespace (O(prune[].namespace) or O(namespace)); an entry
        without a label selector is refused, as it would delete every object of its kind.
    type: list
    elements: dict
    default: []
    suboptions:
      api_version:
        description: Group and version of the kind, V(batch/v1) for instance.
        type: str
        required: true
      kind:
        description: Kind of the objects to prune, V(CronJob) for instance.
        type: str
        required: true
      label_selectors:
        description: Label selectors (V(key=value) and the other forms C(kubectl -l) takes) the objects must all match.
        type: list
        elements: str
        required: true
      namespace:
        description:
          - Namespace to search, when it is not O(namespace). Setting it instead of O(namespace)
            keeps the definitions as they are (O(namespace) is added to every object that names
            none, cluster-scoped ones included, and so to their last-applied annotation).
        type: str
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
seealso:
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Apply the frontend objects, waiting for the Deployment
  cti.misp_platform.k8s_apply:
    namespace: misp
    definitions: "{{ query('ansible.builtin.template', 'serviceaccount.yaml.j2', 'deployment.yaml.j2') }}"
    wait: true
    wait_timeout: 600

- name: Apply the CronJobs of the enabled tasks and delete those of tasks disabled since
  cti.misp_platform.k8s_apply:
    namespace: misp
    definitions: "{{ query('ansible.builtin.template', 'cronjob.yaml.j2') }}"
    prune:
      - api_version: batch/v1
        kind: CronJob
        label_selectors: [app.kubernetes.io/part-of=misp, app.kubernetes.io/component=cron]

- name: Apply the frontend objects, and delete the autoscaler when autoscaling is off
  cti.misp_platform.k8s_apply:
    namespace: misp
    definitions: "{{ query('ansible.builtin.template', 'deployment.yaml.j2', 'service.yaml.j2') }}"
    absent: >-
      {{ [] if autoscaling else
         [{'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler', 'metadata': {'name': 'misp-frontend'}}] }}

- name: Remove a NetworkPolicy and a ConfigMap
  cti.misp_platform.k8s_apply:
    state: absent
    definitions:
      - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: old-egress, namespace: misp}}
      - {apiVersion: v1, kind: ConfigMap, metadata: {name: old-settings, namespace: misp}}
"""

RETURN = r"""
objects:
  description:
    - One entry per object handled, in order, those of O(absent) then the pruned ones last (on
      failure, those before the failed one).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of the object.
      type: str
      sample: Deployment
    api_version:
      description: Group and version of the object.
      type: str
      sample: apps/v1
    namespace:
      description: Namespace of the object; null for a cluster-scoped object given none.
      type: str
      sample: misp
    name:
      description: Name of the object.
      type: str
      sample: misp-frontend-blue
    changed:
      description: Whether applying (or deleting) changed the object.
      type: bool
      sample: false
    method:
      description: What was done, as kubernetes.core.k8s reports it (V(apply) or V(delete)).
      type: str
      sample: apply
    conditions:
      description: Types of the object's status conditions that are V(True) after applying (empty when it has none).
      type: list
      elements: str
      sample: [Complete, SuccessCriteriaMet]
  sample:
    - {kind: ServiceAccount, api_version: v1, namespace: misp, name: misp-frontend, changed: false, method: apply,
       conditions: []}
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_apply import (
    K8S_APPLY_ARGSPEC,
    K8S_APPLY_CHECKS,
    run_module,
)
from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_args import k8s_argspec


def argspec():
    return k8s_argspec(K8S_APPLY_ARGSPEC)


def main():
    module = AnsibleK8SModule(argument_spec=argspec(), supports_check_mode=True, **K8S_APPLY_CHECKS)
    run_module(module)


if __name__ == "__main__":
    main()
