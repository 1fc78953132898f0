# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A user's membership of the groups the keycloak role manages, as keycloak_user takes it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: keycloak_group_membership
short_description: A user's groups among the managed ones, as community.general.keycloak_user takes them
version_added: 1.0.0
description:
  - For each group of O(managed), returns C({name, state}) with C(state=present) when the group is
    in the input (the user's groups) and C(absent) otherwise, so that the user ends a member of
    exactly those of the managed groups; groups the role does not manage are not listed, and
    keycloak_user leaves them alone.
  - Fails naming the value when the user's groups or O(managed) are not lists of names.
options:
  _input:
    description: The groups the user should be a member of (null for none).
    type: list
    elements: str
    required: true
  managed:
    description: The groups the role manages.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: A test user
  community.general.keycloak_user:
    username: "{{ item.username }}"
    groups: "{{ item.groups | default([]) | cti.misp_platform.keycloak_group_membership(['misp-operators']) }}"
"""

RETURN = r"""
_value:
  description: One C({name, state}) per managed group, in the order of O(managed).
  type: list
  elements: dict
"""


def _names(value, what):
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise AnsibleFilterError(f"keycloak_group_membership: {what} must be a list of group names, got {value!r}")
    return value


def keycloak_group_membership(groups, managed):
    wanted = set(_names(groups or [], "the user's groups"))
    return [
        {"name": group, "state": "present" if group in wanted else "absent"} for group in _names(managed, "managed")
    ]


class FilterModule:
    def filters(self):
        return {"keycloak_group_membership": keycloak_group_membership}
