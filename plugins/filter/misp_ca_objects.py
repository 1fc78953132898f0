# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The extra CA volume of the MISP pods, from the ConfigMaps and Secrets misp_common_ca_certificates names."""

from __future__ import annotations

import hashlib
import json
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.k8s_secret_data import k8s_secret_data

DOCUMENTATION = r"""
name: misp_ca_objects
short_description: The extra CA volume of the MISP pods and what is wrong with its objects
version_added: 1.0.0
description:
  - >-
    Takes the results of reading each C({configmap|secret: NAME}) entry of misp_common_ca_certificates
    (a looped C(kubernetes.core.k8s_info) whose C(item) is the entry) and returns
    C(sources), C(problems) and C(fingerprint).
  - C(sources) are the sources of the projected volume C(ca-extra) - ConfigMap misp-ca-certificates
    first when there are PEM strings, then each object with its C(*.crt) keys as items under
    distinct paths C(<kind>-<name>-<key>), since two objects may both hold C(ca.crt).
  - C(problems) names each object that is missing, has no C(*.crt) key or holds a key that is not
    a PEM certificate; C(fingerprint) is the SHA-256 of the PEM strings and the objects' data,
    which rolls the pods when a CA changes, and empty when there are no extra CAs at all.
options:
  _input:
    description: The C(results) of the registered k8s_info loop.
    type: list
    elements: dict
    required: true
  pems:
    description: The PEM strings of misp_common_ca_certificates (misp_common_ca_pems).
    type: list
    elements: str
    required: true
  namespace:
    description: Namespace the objects were read in, for the messages.
    type: str
    required: true
  pem_pattern:
    description: Regular expression a certificate must match (misp_common_ca_pem_pattern).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Build the sources of the extra CA volume
  ansible.builtin.set_fact:
    misp_common_ca_sources: "{{ __ca.sources }}"
    misp_common_ca_errors: "{{ __ca.problems }}"
    misp_common_ca_fingerprint: "{{ __ca.fingerprint }}"
  vars:
    __ca: >-
      {{ misp_common_ca_objects.results | cti.misp_platform.misp_ca_objects(misp_common_ca_pems,
         misp_common_namespace, misp_common_ca_pem_pattern) }}
"""

RETURN = r"""
_value:
  description: C(sources) (list of projected volume sources), C(problems) (list of messages) and C(fingerprint) (str).
  type: dict
"""

CRT_KEY = re.compile(r".*\.crt$")


def _data(result: dict) -> dict:
    """The data of the object read, empty when it is missing or holds none."""
    resources = result.get("resources") or [{}]
    return resources[0].get("data") or {}


def _text(kind: str, key: str, value: str) -> str:
    """A certificate as text: a Secret's value decoded the collection's one way (k8s_secret_data)."""
    if kind == "ConfigMap":
        return value
    try:
        return k8s_secret_data({"resources": [{"data": {key: value}}]})[key]
    except AnsibleFilterError:
        # No UTF-8 text (a DER file): no PEM certificate either, and its bytes are not shown.
        return ""


def _entry(result: dict) -> tuple[str, str]:
    ((kind, name),) = result["item"].items()
    return kind, name


def _source(result: dict) -> dict:
    kind, name = _entry(result)
    items = [{"key": key, "path": f"{kind}-{name}-{key}"} for key in sorted(_data(result)) if CRT_KEY.match(key)]
    return {("configMap" if kind == "configmap" else "secret"): {"name": name, "items": items}}


def _problems(result: dict, namespace: str, pem: re.Pattern) -> list[str]:
    kind, name = _entry(result)
    kind = "ConfigMap" if kind == "configmap" else "Secret"
    where = f"misp_common_ca_certificates: {kind} {name}"
    if not result.get("resources"):
        return [f"{where} not found in namespace {namespace}"]
    data = _data(result)
    keys = [key for key in data if CRT_KEY.match(key)]
    if not keys:
        return [f"{where} has no *.crt key"]
    return [f"{where} key {key} is not a PEM certificate" for key in keys if not pem.match(_text(kind, key, data[key]))]


def misp_ca_objects(results, pems, namespace, pem_pattern):
    """sources, problems and fingerprint of the extra CA volume."""
    pem = re.compile(pem_pattern)
    sources = [{"configMap": {"name": "misp-ca-certificates"}}] if pems else []
    sources += [_source(result) for result in results]
    problems = [problem for result in results for problem in _problems(result, namespace, pem)]
    fingerprint = ""
    if pems or results:
        # Serialised as Ansible's to_json(sort_keys=true) does, so the checksum stays what it was.
        parts = [pems] + [_data(result) for result in results]
        fingerprint = hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()
    return {"sources": sources, "problems": problems, "fingerprint": fingerprint}


class FilterModule:
    def filters(self):
        return {"misp_ca_objects": misp_ca_objects}
