"""secret_env: a container keeps its plain variables and only the secrets named for it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.secret_env import FilterModule, secret_env


def ref(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


ENV = [
    ref("MYSQL_PASSWORD", "misp-database", "password"),
    ref("MISP_PROXY_USERNAME", "misp-proxy", "username"),
    ref("MISP_PROXY_PASSWORD", "misp-proxy", "password"),
    {"name": "HTTP_PROXY", "value": "http://$(MISP_PROXY_USERNAME):$(MISP_PROXY_PASSWORD)@proxy:3128"},
    {"name": "NO_PROXY", "value": "localhost"},
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ref("SUPERVISOR_PASSWORD", "misp-supervisor", "password"),
]


def test_keeps_plain_entries_and_named_secrets_in_order():
    kept = secret_env(ENV, ["MYSQL_PASSWORD", "MISP_PROXY_USERNAME", "MISP_PROXY_PASSWORD", "ABSENT"])
    assert [e["name"] for e in kept] == [
        "MYSQL_PASSWORD",
        "MISP_PROXY_USERNAME",
        "MISP_PROXY_PASSWORD",
        "HTTP_PROXY",
        "NO_PROXY",
        "POD_NAME",
    ]


def test_a_value_naming_a_left_out_secret_goes_with_it():
    kept = secret_env(ENV, ["SUPERVISOR_PASSWORD"])
    assert [e["name"] for e in kept] == ["NO_PROXY", "POD_NAME", "SUPERVISOR_PASSWORD"]
    assert secret_env(ENV, []) == [ENV[4], ENV[5]]


@pytest.mark.parametrize(
    ("env", "names", "message"),
    [
        ("MYSQL_PASSWORD", [], "expected a list of env entries with a name, got 'MYSQL_PASSWORD'"),
        ([{"value": "x"}], [], "expected a list of env entries with a name, got [{'value': 'x'}]"),
        (ENV, "MYSQL_PASSWORD", "names must be a list of variable names, got 'MYSQL_PASSWORD'"),
        (ENV, [1], "names must be a list of variable names, got [1]"),
    ],
)
def test_bad_input_is_named(env, names, message):
    with pytest.raises(AnsibleFilterError, match=None) as error:
        secret_env(env, names)
    assert str(error.value) == f"secret_env: {message}"


def test_registered():
    assert FilterModule().filters()["secret_env"] is secret_env
