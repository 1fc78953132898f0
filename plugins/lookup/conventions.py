# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract between the collection's layers, for roles and playbooks."""

from __future__ import annotations

DOCUMENTATION = r"""
name: conventions
short_description: Names, labels, Secret keys and pod security settings shared between the roles
version_added: 1.0.0
description:
  - Returns a convention of the contract between the collection's layers, written only in the
    collection's C(plugins/plugin_utils/_conventions.py); docs/development.md describes each.
  - C(labels) - the labels of every object of the platform (part-of, managed-by).
  - C(part_of_labels) - the part-of label alone, as NetworkPolicies and selectors of any MISP pod
    use it.
  - C(part_of_selector) - the label selector of the platform's objects, as a string.
  - C(secrets) - each Kubernetes Secret of the MISP namespace by short name (database, redis, app,
    supervisor, oidc, proxy, smtp), with its C(name) and C(data_keys).
  - C(base_secrets) - the short names of the Secrets every deployment has.
  - C(services) - each Service of the MISP layer by short name (frontend, workers, database,
    redis), with its C(name), C(port), C(port_name) and C(target_port).
  - C(pod_security_context), C(container_security_context) - Pod Security restricted settings of
    the pods that run as the MISP image's www-data.
  - C(restart_annotation) - the pod template annotation a rolling restart sets.
  - Fails naming the term when it is not one of these.
options:
  _terms:
    description: Names of the conventions to return.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Label an object as the platform's
  ansible.builtin.set_fact:
    labels: >-
      {{ lookup('cti.misp_platform.conventions', 'labels') | combine({'app.kubernetes.io/component': 'backup'}) }}

- name: Read the supervisord credentials' Secret
  kubernetes.core.k8s_info:
    kind: Secret
    namespace: misp
    name: "{{ lookup('cti.misp_platform.conventions', 'secrets').supervisor.name }}"
"""

RETURN = r"""
_raw:
  description: One value per term (a mapping, list or string, as the convention is).
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.cti.misp_platform.plugins.plugin_utils._conventions import convention


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        values = []
        for term in terms:
            try:
                values.append(convention(term))
            except (KeyError, TypeError) as exc:
                raise AnsibleLookupError(f"conventions: {exc.args[0] if exc.args else term!r}") from None
        return values
