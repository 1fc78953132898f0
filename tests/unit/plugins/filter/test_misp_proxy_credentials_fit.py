"""Whether the proxy account can stand unencoded in the pods' HTTP_PROXY URL."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.misp_proxy_credentials_fit import (
    FilterModule,
    misp_proxy_credentials_fit,
)


@pytest.mark.parametrize(
    "account",
    [{"username": "svc-misp", "password": "Zk3!x$&*+,;=~"}, {}, {"username": "a.b_c", "password": "p:ss"}],
)
def test_accounts_that_fit(account):
    assert misp_proxy_credentials_fit(account) is True


@pytest.mark.parametrize(
    "account",
    [
        {"username": "svc", "password": "p@ss/word"},
        {"username": "dom:user", "password": "x"},
        {"username": "svc", "password": "with space"},
        {"username": "svc", "password": "100%"},
        {"username": "svc", "password": "a#b"},
        {"username": "svc", "password": "[x]"},
        {"username": "sv?c", "password": "x"},
    ],
)
def test_accounts_that_do_not_fit(account):
    assert misp_proxy_credentials_fit(account) is False


def test_values_are_taken_as_text():
    """misp_secrets may hold a number; None (an empty YAML value) is the text None, as before."""
    assert misp_proxy_credentials_fit({"username": 1234, "password": None}) is True


def test_none_is_an_empty_account():
    assert misp_proxy_credentials_fit(None) is True


def test_registered():
    assert FilterModule().filters() == {"misp_proxy_credentials_fit": misp_proxy_credentials_fit}
