"""The kube-vip checks of the rke2 role, on network facts shaped like those `setup` gathers."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.rke2_kube_vip_problems import (
    FilterModule,
    rke2_kube_vip_problems,
)

HOST = "server-1"
NOT_IP = "is not an IP address: kube-vip holds an address, not a name"


def facts(**extra):
    """ansible_facts of a server with eth0 in 10.213.19.0/24, lo, and a link-local IPv6 address."""
    base = {
        "interfaces": ["lo", "eth0"],
        "eth0": {
            "device": "eth0",
            "active": True,
            "ipv4": {"address": "10.213.19.11", "netmask": "255.255.255.0", "network": "10.213.19.0", "prefix": "24"},
            "ipv6": [{"address": "fe80::1c2b:3cff:fe4d:5e6f", "prefix": "64", "scope": "link"}],
        },
        "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0", "prefix": "8"}},
    }
    base.update(extra)
    return base


def test_a_free_address_in_the_node_network_is_accepted():
    assert rke2_kube_vip_problems("10.213.19.250", "eth0", facts(), HOST) == []


def test_the_vip_held_by_kube_vip_is_still_accepted():
    """On the next run the holder has the VIP as a /32 secondary address; that is no network of its own."""
    held = facts()
    held["eth0"]["ipv4_secondaries"] = [{"address": "10.213.19.250", "netmask": "255.255.255.255", "prefix": "32"}]
    assert rke2_kube_vip_problems("10.213.19.250", "eth0", held, HOST) == []


def test_interface_names_with_dashes_are_found_under_their_fact_name():
    bond = facts(interfaces=["lo", "bond-api"], bond_api=facts()["eth0"] | {"device": "bond-api"})
    assert rke2_kube_vip_problems("10.213.19.250", "bond-api", bond, HOST) == []


def test_ipv6_vip_in_a_global_network():
    v6 = facts()
    v6["eth0"]["ipv6"].append({"address": "2001:db8:19::11", "prefix": "64", "scope": "global"})
    assert rke2_kube_vip_problems("2001:db8:19::250", "eth0", v6, HOST) == []
    # The link-local network is not one kube-vip announces a VIP in.
    assert rke2_kube_vip_problems("fe80::250", "eth0", v6, HOST) == [
        "server-1: rke2_api_vip fe80::250 is outside the node network of eth0 (2001:db8:19::/64): "
        "kube-vip can only announce it there"
    ]


@pytest.mark.parametrize(
    ("vip", "interface", "host_facts", "message"),
    [
        ("", "eth0", facts(), "rke2_kube_vip is true but rke2_api_vip is empty: kube-vip needs the virtual IP to hold"),
        ("api.example.org", "eth0", facts(), f"rke2_api_vip 'api.example.org' {NOT_IP}"),
        ("10.213.19.300", "eth0", facts(), f"rke2_api_vip '10.213.19.300' {NOT_IP}"),
        (
            "203.0.113.10",
            "eth0",
            facts(),
            "server-1: rke2_api_vip 203.0.113.10 is outside the node network of eth0 (10.213.19.0/24): "
            "kube-vip can only announce it there",
        ),
        (
            "10.213.19.11",
            "eth0",
            facts(),
            "server-1: rke2_api_vip 10.213.19.11 is the server's own address on eth0: the VIP must be free",
        ),
        (
            "10.213.19.250",
            "eth9",
            facts(),
            "server-1: rke2_kube_vip_interface 'eth9' is not an interface of this server (it has eth0, lo)",
        ),
        (
            "10.213.19.250",
            "",
            facts(),
            "server-1: rke2_kube_vip_interface is empty: kube-vip needs the interface to announce 10.213.19.250 on",
        ),
        (
            "2001:db8:19::250",
            "eth0",
            facts(),
            "server-1: rke2_kube_vip_interface 'eth0' has no IPv6 network to announce rke2_api_vip 2001:db8:19::250 in",
        ),
        (
            "10.213.19.250",
            "eth0",
            facts(eth0={"device": "eth0", "active": True}),
            "server-1: rke2_kube_vip_interface 'eth0' has no IPv4 network to announce rke2_api_vip 10.213.19.250 in",
        ),
        # Facts without the network subset: the interface cannot be shown to exist.
        (
            "10.213.19.250",
            "eth0",
            {},
            "server-1: rke2_kube_vip_interface 'eth0' is not an interface of this server "
            "(no network facts were gathered)",
        ),
    ],
    ids=[
        "empty_vip",
        "name",
        "bad_octet",
        "outside",
        "own_address",
        "missing_interface",
        "empty_interface",
        "no_ipv6",
        "no_ipv4",
        "no_facts",
    ],
)
def test_bad_values_are_named(vip, interface, host_facts, message):
    assert rke2_kube_vip_problems(vip, interface, host_facts, HOST) == [message]


def test_the_filter_is_exported():
    assert FilterModule().filters() == {"rke2_kube_vip_problems": rke2_kube_vip_problems}
