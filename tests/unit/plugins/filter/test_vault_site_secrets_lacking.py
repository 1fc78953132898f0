"""vault_site_secrets_lacking: missing site secrets and missing keys named, values never."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.vault_site_secrets_lacking import vault_site_secrets_lacking


def result(path, keys, secret=None, msg=None):
    out = {"item": {"path": path, "keys": keys}}
    if secret is not None:
        out["secret"] = secret
    if msg is not None:
        out["msg"] = msg
    return out


def test_complete_secrets_give_nothing():
    read = [result("platform/s3", ["id", "key"], {"id": "a", "key": "s3cret", "extra": "x"})]
    assert vault_site_secrets_lacking(read, "secret") == []


def test_a_missing_secret_is_named_with_the_reason_unless_it_is_just_missing():
    read = [
        result("platform/s3", ["id"], msg="Invalid or missing path ['platform/s3']"),
        result("platform/ldap", ["password"], msg="Forbidden: Permission Denied"),
        result("platform/none", ["password"]),
    ]
    assert vault_site_secrets_lacking(read, "kv") == [
        "kv/platform/s3 is missing in Vault",
        "kv/platform/ldap is missing in Vault (Forbidden: Permission Denied)",
        "kv/platform/none is missing in Vault",
    ]


def test_lacking_keys_are_named_and_values_are_not():
    read = [result("platform/s3", ["id", "key", "region"], {"id": "s3cret-id"})]
    out = vault_site_secrets_lacking(read, "secret")
    assert out == ["secret/platform/s3 lacks key key, region"]
    assert "s3cret" not in out[0]


def test_no_site_secrets_give_nothing():
    assert vault_site_secrets_lacking([], "secret") == []


@pytest.mark.parametrize("read", [None, {}, {"results": []}, "x", ["x"]])
def test_an_input_that_is_not_a_looped_read_is_refused(read):
    with pytest.raises(AnsibleFilterError, match="expected the results of a looped read"):
        vault_site_secrets_lacking(read, "secret")
