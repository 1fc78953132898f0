"""vault_kv_values: existing values kept, missing and rotated ones generated, bad settings named."""

from __future__ import annotations

import string
import uuid

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.vault_kv_values import vault_kv_values

FIELDS = {"username": {"value": "misp"}, "password": {"length": 32}, "uuid": {"uuid": True}, "token": {}}


def test_a_new_secret_gets_every_field():
    out = vault_kv_values(None, FIELDS)
    assert out["username"] == "misp"
    assert len(out["password"]) == 32 and set(out["password"]) <= set(string.ascii_letters + string.digits)
    assert str(uuid.UUID(out["uuid"])) == out["uuid"]
    assert len(out["token"]) == 64


def test_a_second_run_returns_the_secret_unchanged():
    first = vault_kv_values({}, FIELDS)
    assert vault_kv_values(first, FIELDS) == first


def test_existing_values_and_unknown_keys_are_kept_missing_ones_made():
    out = vault_kv_values({"password": "kept", "extra": "also kept"}, FIELDS)
    assert out["password"] == "kept" and out["extra"] == "also kept"
    assert set(out) == {"username", "password", "uuid", "token", "extra"}


def test_rotate_makes_the_named_fields_anew_only():
    before = vault_kv_values({}, FIELDS)
    after = vault_kv_values(before, FIELDS, rotate=["password"])
    assert after["password"] != before["password"]
    assert {k: v for k, v in after.items() if k != "password"} == {k: v for k, v in before.items() if k != "password"}


def test_a_fixed_value_replaces_what_is_stored_as_text():
    assert vault_kv_values({"username": "old"}, {"username": {"value": 7}}) == {"username": "7"}


def test_chars_name_string_constants_or_give_the_characters():
    assert set(vault_kv_values({}, {"p": {"length": 50, "chars": ["digits"]}})["p"]) <= set(string.digits)
    assert set(vault_kv_values({}, {"p": {"length": 50, "chars": ["xy"]}})["p"]) <= {"x", "y"}
    assert set(vault_kv_values({}, {"p": {"length": 50, "chars": ["capwords"]}})["p"]) <= set("capwords")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": {"length": 0}}, "field 'password': length must be a positive integer, got 0"),
        ({"password": {"length": "32"}}, "field 'password': length must be a positive integer, got '32'"),
        ({"password": {"chars": "digits"}}, "field 'password': chars must be a list of strings, got 'digits'"),
        ({"password": {"chars": [""]}}, "field 'password': chars gives no character to draw from"),
        ({"password": 32}, "field 'password': settings must be a mapping, got 32"),
        (["password"], r"fields must map names to settings, got \['password'\]"),
    ],
)
def test_bad_settings_are_named(fields, message):
    with pytest.raises(AnsibleFilterError, match=message):
        vault_kv_values({}, fields)


def test_a_current_value_that_is_not_a_mapping_is_refused_without_printing_it():
    with pytest.raises(AnsibleFilterError, match="got a str") as raised:
        vault_kv_values("s3cret", FIELDS)
    assert "s3cret" not in str(raised.value)
