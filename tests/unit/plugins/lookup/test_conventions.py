"""conventions lookup: one value per term, copies the caller may change, unknown terms named."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.cti.misp_platform.plugins.lookup.conventions import LookupModule
from ansible_collections.cti.misp_platform.plugins.plugin_utils._conventions import LABELS, SECRETS


def run(*terms):
    return LookupModule().run(list(terms), variables={})


def test_one_value_per_term_in_order():
    labels, selector, secrets = run("labels", "part_of_selector", "secrets")
    assert labels == LABELS
    assert selector == "app.kubernetes.io/part-of=misp"
    assert secrets["supervisor"] == {"name": "misp-supervisor", "data_keys": ["username", "password"]}


def test_a_changed_result_leaves_the_contract_alone():
    (labels,) = run("labels")
    labels["app.kubernetes.io/part-of"] = "other"
    assert run("labels") == [LABELS]


def test_an_unknown_term_is_named():
    with pytest.raises(AnsibleLookupError, match="unknown convention 'secret'; known: base_secrets, "):
        run("labels", "secret")


def test_secrets_keep_their_short_names():
    (secrets,) = run("secrets")
    assert secrets is not SECRETS
    assert {short: secret["name"] for short, secret in secrets.items()} == {
        short: f"misp-{short}" for short in ("database", "redis", "app", "supervisor", "oidc", "proxy", "smtp")
    }
