# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with misp_common_proxy beyond what the role's argument spec says."""

from __future__ import annotations

import json
import re

from ansible_collections.cti.misp_platform.plugins.plugin_utils._patterns import HOST, whole_number

DOCUMENTATION = r"""
name: misp_proxy_problems
short_description: What is wrong with misp_common_proxy
version_added: 1.0.0
description:
  - Checks the outbound proxy settings of the MISP roles and returns one message per problem,
    each naming the variable and the bad value (empty when the settings are usable or empty).
  - Leaves unknown keys and the choices of C(method) to the role's argument spec, which refuses
    them first. Types stay strict here because the spec converts for itself only (it takes the
    string C("false") as a boolean while the role reads the value as given).
  - The host is a name or IPv4 address without scheme or port; the port a number from 1 to 65535,
    required with the host; a C(method) needs C(credentials) true; C(no_proxy) a list of host
    names, .domains or addresses without commas or spaces.
options:
  _input:
    description: misp_common_proxy.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Stop on a bad proxy setting
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}"
  vars:
    __problems: "{{ misp_common_proxy | cti.misp_platform.misp_proxy_problems }}"
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the bad value; empty when there is none.
  type: list
  elements: str
"""

NO_PROXY_ENTRY = re.compile(r"^[A-Za-z0-9.:/*-]+$")


def _port_problem(port) -> str | None:
    number = whole_number(port)
    if number is None or not 1 <= number <= 65535:
        return f"must be a number from 1 to 65535, got {json.dumps(port)}"
    return None


def misp_proxy_problems(proxy):
    """Messages naming each bad value of misp_common_proxy; empty when it is usable or empty."""
    if not isinstance(proxy, dict):
        return [
            "misp_common_proxy must be a mapping {host, port, method, no_proxy, credentials}, "
            f"got {json.dumps(proxy)}"
        ]
    if not proxy:
        return []
    problems = []
    host = proxy.get("host", "")
    if not isinstance(host, str) or not HOST.match(host):
        problems.append(
            f"misp_common_proxy.host must be a host name or IPv4 address without scheme or port, got {json.dumps(host)}"
        )
    port = proxy.get("port", "")
    if str(port) == "":
        problems.append(f"misp_common_proxy.port is required with host {json.dumps(host)}")
    elif problem := _port_problem(port):
        problems.append(f"misp_common_proxy.port {problem}")
    credentials = proxy.get("credentials", False)
    if proxy.get("method") and not credentials:
        problems.append(f"misp_common_proxy.method {json.dumps(proxy['method'])} needs credentials: true")
    if not isinstance(credentials, bool):
        problems.append(f"misp_common_proxy.credentials must be true or false, got {json.dumps(credentials)}")
    no_proxy = proxy.get("no_proxy", [])
    if not isinstance(no_proxy, list):
        problems.append(f"misp_common_proxy.no_proxy must be a list, got {json.dumps(no_proxy)}")
    else:
        problems += [
            f"misp_common_proxy.no_proxy[{index}] must be a host name, .domain or address without commas "
            f"or spaces, got {json.dumps(entry)}"
            for index, entry in enumerate(no_proxy)
            if not isinstance(entry, str) or not NO_PROXY_ENTRY.match(entry)
        ]
    return problems


class FilterModule:
    def filters(self):
        return {"misp_proxy_problems": misp_proxy_problems}
