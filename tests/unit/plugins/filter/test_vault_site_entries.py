"""vault_site_entries: site-provided secrets with their KV paths; an incomplete entry is named."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.vault_site_entries import vault_site_entries


def test_each_entry_gets_its_path_under_the_prefix():
    site = [{"name": "smtp", "k8s_secret": "misp-smtp", "keys": ["username", "password"]}]
    assert vault_site_entries(site, "misp/prod") == [
        {"name": "smtp", "path": "misp/prod/smtp", "k8s_secret": "misp-smtp", "keys": ["username", "password"]}
    ]


def test_no_site_secret_no_entry():
    assert vault_site_entries([], "misp") == []


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ({"name": "smtp"}, "expected vault_site_secrets as a list"),
        ([{"name": "smtp", "keys": ["password"]}], "lacks k8s_secret"),
        (["smtp"], "entry 'smtp' lacks name, k8s_secret, keys"),
    ],
)
def test_bad_input_is_named(site, message):
    with pytest.raises(AnsibleFilterError, match=message):
        vault_site_entries(site, "misp")
