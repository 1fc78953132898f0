# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with MISP's base URL, namespace and image beyond what the argument spec says."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ansible_collections.cti.misp_platform.plugins.plugin_utils._patterns import DNS_LABEL

DOCUMENTATION = r"""
name: misp_common_problems
short_description: What is wrong with MISP's base URL, namespace and image
version_added: 1.0.0
description:
  - Checks the values every MISP pod shares and returns one message per problem, each naming the
    inventory variable, the role variable and the bad value; empty when they are usable.
  - misp_common_base_url is MISP's public URL (http or https, a host, an optional path) without a
    trailing slash, as MISP.baseurl must be; misp_common_namespace a DNS label (the API server's
    rule for namespaces); misp_common_image a mapping with a repository and a tag or a digest.
  - Types and unknown keys stay the argument spec's.
options:
  _input:
    description: misp_common_base_url.
    type: raw
    required: true
  namespace:
    description: misp_common_namespace.
    type: raw
    required: true
  image:
    description: misp_common_image.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check the shared MISP variables
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}."
  vars:
    __problems: >-
      {{ misp_common_base_url | cti.misp_platform.misp_common_problems(misp_common_namespace, misp_common_image) }}
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the bad value; empty when there is none.
  type: list
  elements: str
"""

BASE_URL = re.compile(r"^https?://[^/\s]+(/\S*)?$")


def misp_common_problems(base_url, namespace, image):
    """Messages naming each bad shared value; empty when they are usable."""
    problems = []
    if not isinstance(base_url, str) or not BASE_URL.match(base_url) or base_url.endswith("/"):
        problems.append(
            "misp_base_url (misp_common_base_url) must be the public URL of MISP without a trailing slash"
            f" (e.g. https://misp.example.org), got {json.dumps(base_url)}"
        )
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        problems.append(
            "misp_namespace (misp_common_namespace) must be a DNS label (at most 63 lower-case letters,"
            f" digits and '-', starting and ending with a letter or digit), got {json.dumps(namespace)}"
        )
    if not isinstance(image, Mapping) or not image.get("repository") or not (image.get("tag") or image.get("digest")):
        shown = json.dumps(dict(image) if isinstance(image, Mapping) else image, default=str)
        problems.append(f"misp_image (misp_common_image) needs repository and a tag or digest, got {shown}")
    return problems


class FilterModule:
    def filters(self):
        return {"misp_common_problems": misp_common_problems}
