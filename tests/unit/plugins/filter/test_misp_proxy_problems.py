"""misp_common_proxy checks: every bad value named, JSON-quoted as the role printed them."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.misp_proxy_problems import FilterModule, misp_proxy_problems

GOOD = {
    "host": "proxy.corp.test",
    "port": 3128,
    "method": "Basic",
    "no_proxy": [".corp.test", "10.0.0.0/8"],
    "credentials": True,
}


@pytest.mark.parametrize(
    "proxy", [{}, GOOD, {"host": "10.1.2.3", "port": "8080"}, {"host": "p", "port": 1, "method": ""}]
)
def test_usable_or_empty_settings_have_no_problem(proxy):
    assert misp_proxy_problems(proxy) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"host": "proxy.corp.test:3128"},
            "misp_common_proxy.host must be a host name or IPv4 address without scheme or port, "
            'got "proxy.corp.test:3128"',
        ),
        ({"host": "http://proxy.corp.test"}, 'got "http://proxy.corp.test"'),
        ({"host": None}, "misp_common_proxy.host must be a host name or IPv4 address without scheme or port, got null"),
        ({"port": ""}, 'misp_common_proxy.port is required with host "proxy.corp.test"'),
        ({"port": 70000}, "misp_common_proxy.port must be a number from 1 to 65535, got 70000"),
        ({"port": 0}, "misp_common_proxy.port must be a number from 1 to 65535, got 0"),
        ({"port": True}, "misp_common_proxy.port must be a number from 1 to 65535, got true"),
        ({"port": "http"}, 'misp_common_proxy.port must be a number from 1 to 65535, got "http"'),
        ({"credentials": False}, 'misp_common_proxy.method "Basic" needs credentials: true'),
        ({"credentials": "false"}, 'misp_common_proxy.credentials must be true or false, got "false"'),
        ({"no_proxy": ".corp.test"}, 'misp_common_proxy.no_proxy must be a list, got ".corp.test"'),
        (
            {"no_proxy": ["ok.test", "a b", 7]},
            'misp_common_proxy.no_proxy[1] must be a host name, .domain or address without commas or spaces, got "a b"',
        ),
    ],
)
def test_bad_values_are_named(change, message):
    problems = misp_proxy_problems({**GOOD, **change})
    assert any(message in p for p in problems), problems


def test_a_missing_port_names_the_host():
    assert misp_proxy_problems({"host": "proxy.corp.test"}) == [
        'misp_common_proxy.port is required with host "proxy.corp.test"'
    ]


def test_every_problem_at_once():
    problems = misp_proxy_problems({"host": "a:1", "port": 0, "no_proxy": ["x,y", 3], "credentials": "yes"})
    assert len(problems) == 5, problems
    assert problems[-1].startswith("misp_common_proxy.no_proxy[1] ") and problems[-1].endswith("got 3")


@pytest.mark.parametrize("proxy", ["proxy.corp.test:3128", ["proxy"], None])
def test_not_a_mapping(proxy):
    (problem,) = misp_proxy_problems(proxy)
    assert problem.startswith("misp_common_proxy must be a mapping {host, port, method, no_proxy, credentials}, got ")


def test_registered():
    assert FilterModule().filters() == {"misp_proxy_problems": misp_proxy_problems}
