"""misp_common_oidc checks beyond the argument spec: URLs, client id, role ids, the Secret reference."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.misp_oidc_problems import FilterModule, misp_oidc_problems

SECRET = {"name": "misp-oidc", "key": "client-secret"}
GOOD = {
    "provider_url": "https://sso.example.org/realms/misp",
    "client_id": "misp",
    "role_mapper": {"misp-site-admin": 1, "misp-read-only": 6},
    "client_secret_secret": SECRET,
    "scopes": ["openid"],
}


@pytest.mark.parametrize("oidc", [{}, None, "", GOOD, {**GOOD, "issuer": "http://idp.local:8080/x"}])
def test_off_or_usable(oidc):
    assert misp_oidc_problems(oidc, SECRET) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"provider_url": "sso.example.org/realms"},
            "misp_common_oidc.provider_url must be an http(s) URL, got 'sso.example.org/realms'",
        ),
        ({"provider_url": None}, "misp_common_oidc.provider_url must be an http(s) URL, got 'None'"),
        (
            {"issuer": "ftp://sso.example.org"},
            "misp_common_oidc.issuer must be an http(s) URL, got 'ftp://sso.example.org'",
        ),
        ({"client_id": ""}, "misp_common_oidc.client_id must be a non-empty string, got ''"),
        ({"client_id": 42}, "misp_common_oidc.client_id must be a non-empty string, got '42'"),
        ({"role_mapper": {}}, "misp_common_oidc.role_mapper must map IdP roles to MISP role ids, got {}"),
        (
            {"role_mapper": "misp-user=3"},
            "misp_common_oidc.role_mapper must map IdP roles to MISP role ids, got misp-user=3",
        ),
        (
            {"role_mapper": {"misp-user": 3, "misp-wizard": 9}},
            "misp_common_oidc.role_mapper[misp-wizard] is 9, not a MISP role id (1..6)",
        ),
        (
            {"role_mapper": {"misp-user": "3"}},
            "misp_common_oidc.role_mapper[misp-user] is 3, not a MISP role id (1..6)",
        ),
        (
            {"role_mapper": {"misp-user": True}},
            "misp_common_oidc.role_mapper[misp-user] is True, not a MISP role id (1..6)",
        ),
        ({"scopes": "openid profile"}, "misp_common_oidc.scopes must be a list, got openid profile"),
        (
            {"client_secret_secret": {"name": "other", "key": "k"}},
            'misp_common_oidc.client_secret_secret must be {"name": "misp-oidc", "key": "client-secret"} '
            '(fixed by the conventions), got {"name": "other", "key": "k"}',
        ),
    ],
)
def test_bad_values_are_named(change, message):
    assert misp_oidc_problems({**GOOD, **change}, SECRET) == [message]


def test_required_keys_missing_are_named_at_once():
    assert misp_oidc_problems({"issuer": "https://sso.example.org"}, SECRET) == [
        "misp_common_oidc.provider_url must be an http(s) URL, got ''",
        "misp_common_oidc.client_id must be a non-empty string, got ''",
        "misp_common_oidc.role_mapper must map IdP roles to MISP role ids, got nothing",
    ]


@pytest.mark.parametrize("oidc", [["provider_url"], "https://sso.example.org", 3])
def test_not_a_mapping(oidc):
    assert misp_oidc_problems(oidc, SECRET) == [f"misp_common_oidc (keycloak_misp_oidc) must be a mapping, got {oidc}"]


def test_registered():
    assert FilterModule().filters() == {"misp_oidc_problems": misp_oidc_problems}
