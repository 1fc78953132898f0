"""keycloak_group_membership: exactly the listed managed groups present, the others absent."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.keycloak_group_membership import (
    keycloak_group_membership,
)

MANAGED = ["misp-operators", "misp-auditors"]


def test_listed_groups_present_other_managed_ones_absent():
    assert keycloak_group_membership(["misp-auditors", "elsewhere"], MANAGED) == [
        {"name": "misp-operators", "state": "absent"},
        {"name": "misp-auditors", "state": "present"},
    ]


def test_a_user_of_no_group_leaves_every_managed_one():
    assert keycloak_group_membership(None, MANAGED) == [{"name": g, "state": "absent"} for g in MANAGED]


def test_no_managed_group_nothing_listed():
    assert keycloak_group_membership(["misp-operators"], []) == []


@pytest.mark.parametrize(
    ("groups", "managed", "message"),
    [
        ("misp-operators", MANAGED, "the user's groups must be a list of group names, got 'misp-operators'"),
        (["misp-operators"], [1], r"managed must be a list of group names, got \[1\]"),
    ],
)
def test_bad_input_is_named(groups, managed, message):
    with pytest.raises(AnsibleFilterError, match=message):
        keycloak_group_membership(groups, managed)
