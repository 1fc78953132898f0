"""vault_rotatable: names, then generated fields; fixed values are not rotatable; bad entries named."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.vault_rotatable import vault_rotatable

SECRETS = [
    {"name": "database", "fields": {"username": {"value": "misp"}, "password": {"length": 32}}},
    {"name": "app", "fields": {"salt": {"length": 32}, "uuid": {"uuid": True}}},
    {"name": "empty", "fields": {}},
]


def test_names_then_generated_fields_only():
    assert vault_rotatable(SECRETS) == ["database", "app", "empty", "database.password", "app.salt", "app.uuid"]


def test_no_secret_nothing_to_rotate():
    assert vault_rotatable([]) == []


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ("database", "expected a list of secrets, got 'database'"),
        ([{"fields": {}}], "each secret needs a name, got {'fields': {}}"),
        ([{"name": "", "fields": {}}], "each secret needs a name"),
        ([{"name": "db", "fields": ["password"]}], "secret 'db': fields must be a mapping"),
    ],
)
def test_bad_input_is_named(secrets, message):
    with pytest.raises(AnsibleFilterError, match=message):
        vault_rotatable(secrets)
