"""vault_site_secrets: names and Secrets that clash with the generated secrets or each other, bad keys."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.vault_site_secrets_problems import (
    FilterModule,
    vault_site_secrets_problems,
)

# The patterns of roles/vault/vars/main.yml.
NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
KEY = r"^[-._a-zA-Z0-9]+$"
GENERATED = [{"name": "redis", "k8s_secret": "misp-redis"}, {"name": "app", "k8s_secret": "misp-app"}]
PROXY = {"name": "proxy", "k8s_secret": "misp-proxy", "keys": ["username", "password"]}


def problems(site):
    return vault_site_secrets_problems(site, GENERATED, NAME, K8S_NAME, KEY)


def test_usable_entries():
    assert problems([]) == []
    assert problems([PROXY, {"name": "s3", "k8s_secret": "misp-backup-s3", "keys": ["access-key", "secret.key"]}]) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": "redis"}, "name 'redis' is that of a generated secret"),
        ({"name": "Proxy"}, "name 'Proxy' is not a DNS label"),
        ({"name": 7}, "name '7' is not a DNS label"),
        ({"k8s_secret": "misp-redis"}, "k8s_secret 'misp-redis' is delivered from a generated secret"),
        ({"k8s_secret": "Misp_Proxy"}, "k8s_secret 'Misp_Proxy' is not a DNS-1123 Secret name"),
        ({"k8s_secret": "a" * 254}, f"k8s_secret '{'a' * 254}' is not a DNS-1123 Secret name"),
        ({"keys": []}, "keys must be a non-empty list of Secret keys (got [])"),
        ({"keys": "password"}, 'keys must be a non-empty list of Secret keys (got "password")'),
        ({"keys": ["user name", 3]}, 'keys ["user name", 3] are not all Secret keys (letters, digits, -, _, .)'),
    ],
)
def test_bad_values_are_named_with_their_entry(change, problem):
    entry = {**PROXY, **change}
    assert problems([entry]) == [f"vault_site_secrets entry {json.dumps(entry)}: {problem}"]


def test_missing_keys_and_duplicates():
    got = problems([{"name": "proxy"}, PROXY])
    assert got == [
        'vault_site_secrets entry {"name": "proxy"}: name \'proxy\' is listed twice',
        'vault_site_secrets entry {"name": "proxy"}: k8s_secret \'\' is not a DNS-1123 Secret name',
        'vault_site_secrets entry {"name": "proxy"}: keys must be a non-empty list of Secret keys (got null)',
        f"vault_site_secrets entry {json.dumps(PROXY)}: name 'proxy' is listed twice",
    ]
    twice = problems([PROXY, {**PROXY, "name": "proxy2"}])
    assert [p.rpartition(": ")[2] for p in twice] == ["k8s_secret 'misp-proxy' is listed twice"] * 2


@pytest.mark.parametrize("site", [{"name": "proxy"}, "proxy", [PROXY, "s3"], None])
def test_not_a_list_of_mappings(site):
    (problem,) = problems(site)
    assert problem.startswith("vault_site_secrets must be a list of {name, k8s_secret, keys} (got ")


def test_registered():
    assert FilterModule().filters() == {"vault_site_secrets_problems": vault_site_secrets_problems}
