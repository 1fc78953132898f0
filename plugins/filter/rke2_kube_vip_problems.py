# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the kube-vip settings of an RKE2 server against its gathered network facts."""

from __future__ import annotations

import ipaddress

DOCUMENTATION = r"""
name: rke2_kube_vip_problems
short_description: What is wrong with an RKE2 server's kube-vip settings
version_added: 1.0.0
description:
  - Checks the API virtual IP and the interface kube-vip announces it on against the server's
    network facts, and returns one message per problem (empty when the settings are usable).
  - kube-vip answers ARP for the VIP on that interface, so the interface must exist and the VIP
    must lie in the network of one of its own addresses, without being that address.
options:
  _input:
    description: rke2_api_vip, the virtual IP.
    type: str
    required: true
  interface:
    description: rke2_kube_vip_interface, the interface kube-vip announces the VIP on.
    type: str
    required: true
  facts:
    description: The server's ansible_facts, with the network subset gathered.
    type: dict
    required: true
  host:
    description: The server's inventory name, for the messages.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the kube-vip settings
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}"
  vars:
    __problems: >-
      {{ rke2_api_vip | cti.misp_platform.rke2_kube_vip_problems(rke2_kube_vip_interface, ansible_facts,
                                                                  inventory_hostname) }}
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the bad value; empty when there is none.
  type: list
  elements: str
"""


def _networks(iface_facts: dict, version: int) -> list[tuple[ipaddress._BaseAddress, ipaddress._BaseNetwork]]:
    """(address, network) of the interface's own addresses of one IP version.

    kube-vip adds the VIP itself as a /32 (or /128) address, so host routes are not networks.
    """
    if version == 4:
        entries = [iface_facts["ipv4"]] if isinstance(iface_facts.get("ipv4"), dict) else []
        entries += iface_facts.get("ipv4_secondaries", [])
        pairs = [(e.get("address", ""), e.get("netmask", "")) for e in entries]
    else:
        entries = [e for e in iface_facts.get("ipv6", []) if e.get("scope") == "global"]
        pairs = [(e.get("address", ""), e.get("prefix", "")) for e in entries]
    found = []
    for address, mask in pairs:
        try:
            iface = ipaddress.ip_interface(f"{address}/{mask}")
        except ValueError:
            continue
        if iface.network.prefixlen < iface.network.max_prefixlen:
            found.append((iface.ip, iface.network))
    return found


def rke2_kube_vip_problems(vip, interface, facts, host):
    """Messages naming each bad kube-vip value of ``host``; empty when the settings are usable."""
    if not vip:
        return ["rke2_kube_vip is true but rke2_api_vip is empty: kube-vip needs the virtual IP to hold"]
    try:
        address = ipaddress.ip_address(str(vip))
    except ValueError:
        return [f"rke2_api_vip '{vip}' is not an IP address: kube-vip holds an address, not a name"]
    if not interface:
        return [f"{host}: rke2_kube_vip_interface is empty: kube-vip needs the interface to announce {vip} on"]
    interfaces = (facts or {}).get("interfaces", [])
    iface_facts = (facts or {}).get(str(interface).replace("-", "_").replace(".", "_"))
    if interface not in interfaces or not isinstance(iface_facts, dict):
        known = f"it has {', '.join(sorted(interfaces))}" if interfaces else "no network facts were gathered"
        return [f"{host}: rke2_kube_vip_interface '{interface}' is not an interface of this server ({known})"]
    networks = _networks(iface_facts, address.version)
    if not networks:
        return [
            f"{host}: rke2_kube_vip_interface '{interface}' has no IPv{address.version} network "
            f"to announce rke2_api_vip {vip} in"
        ]
    if any(ip == address for ip, _net in networks):
        return [f"{host}: rke2_api_vip {vip} is the server's own address on {interface}: the VIP must be free"]
    if not any(address in net for _ip, net in networks):
        nets = ", ".join(str(net) for _ip, net in networks)
        return [
            f"{host}: rke2_api_vip {vip} is outside the node network of {interface} ({nets}): "
            "kube-vip can only announce it there"
        ]
    return []


class FilterModule:
    def filters(self):
        return {"rke2_kube_vip_problems": rke2_kube_vip_problems}
