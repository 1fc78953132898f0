# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a Secret as kubernetes.core.k8s_info returns it: one way for every role."""

from __future__ import annotations

import base64
import binascii

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: k8s_secret_data
short_description: The data of the Secret a kubernetes.core.k8s_info result holds
version_added: 1.0.0
description:
  - Returns the C(data) of the first object of a registered M(kubernetes.core.k8s_info) result,
    base64-decoded as text, or as the API gave it with O(decode=false) (to fingerprint it).
  - A result with no object (the Secret does not exist), a skipped read, or a Secret without data
    gives C({}).
  - Fails naming the key when a value is not base64 or not UTF-8 text, and when the input is not a
    k8s_info result; the values themselves are never part of a message.
options:
  _input:
    description: A registered kubernetes.core.k8s_info result (or one item of a looped one).
    type: dict
    required: true
  decode:
    description: Decode the values.
    type: bool
    default: true
  names:
    description:
      - For a listing of Secrets (M(kubernetes.core.k8s_info) without a name), a key to the name of
        a Secret. The result is then that key to the data of the Secret of that name, C({}) for a
        name the listing lacks; one read of a namespace stands for one read per Secret.
    type: dict
"""

EXAMPLES = r"""
- name: Read the supervisord credentials
  kubernetes.core.k8s_info:
    kind: Secret
    namespace: misp
    name: misp-supervisor
  register: supervisor_secret
  no_log: true

- name: Use them
  ansible.builtin.set_fact:
    supervisor: "{{ supervisor_secret | cti.misp_platform.k8s_secret_data }}"
  no_log: true

- name: Some Secrets of one listing of the namespace, by key
  ansible.builtin.set_fact:
    secrets: "{{ listing | cti.misp_platform.k8s_secret_data(names={'db': 'misp-database', 'redis': 'misp-redis'}) }}"
  no_log: true

- name: Every Secret of a looped read, by loop item
  ansible.builtin.set_fact:
    secrets: >-
      {{ dict(read.results | map(attribute='item') | zip(read.results | map('cti.misp_platform.k8s_secret_data'))) }}
  no_log: true
"""

RETURN = r"""
_value:
  description: Key to value; with O(names), key of O(names) to the key-to-value of its Secret.
  type: dict
"""


def _secret_data(resource, decode):
    data = (resource or {}).get("data") or {}
    if not decode:
        return dict(data)
    decoded = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise AnsibleFilterError(f"k8s_secret_data: key {key!r} is not base64-encoded UTF-8 text") from exc
    return decoded


def k8s_secret_data(info, decode=True, names=None):
    if not isinstance(info, dict) or not isinstance(info.get("resources", []), list):
        raise AnsibleFilterError("k8s_secret_data: expected a kubernetes.core.k8s_info result with 'resources'")
    resources = info.get("resources") or []
    if names is None:
        return _secret_data(resources[0] if resources else None, decode)
    if not isinstance(names, dict):
        raise AnsibleFilterError(f"k8s_secret_data: names must map keys to Secret names, got {names!r}")
    by_name = {(item.get("metadata") or {}).get("name"): item for item in resources}
    return {key: _secret_data(by_name.get(name), decode) for key, name in names.items()}


class FilterModule:
    def filters(self):
        return {"k8s_secret_data": k8s_secret_data}
