#!/usr/bin/python
# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_read
short_description: Read a Vault path as community.hashi_vault.vault_read does, in the controller
version_added: 1.0.0
author:
  - cti.misp_platform developers (@cti)
description:
  - M(community.hashi_vault.vault_read) with the same options, messages and result, run by its own
    code, which on a C(local) connection runs in the controller's own process (the action plugin)
    instead of a new Python process that imports hvac first (most of a read's third of a second).
    It reads the task's C(environment) (E(VAULT_ADDR), E(VAULT_TOKEN)...) as the module would.
  - On any other connection the task runs M(community.hashi_vault.vault_read) on the host.
  - It is in the action group C(cti.misp_platform.vault), which extends C(community.hashi_vault.vault),
    so that one C(module_defaults) entry gives it and the community.hashi_vault modules their
    connection. The vault role reads through it; its re-run reads Vault without a module process.
extends_documentation_fragment:
  - community.hashi_vault.connection
  - community.hashi_vault.auth
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - cti.misp_platform.in_controller
  - cti.misp_platform.in_controller.read_only
options:
  path:
    description: Vault path to be read.
    type: str
    required: true
seealso:
  - module: community.hashi_vault.vault_read
  - module: cti.misp_platform.vault_kv2_get
requirements:
  - hvac
"""

EXAMPLES = r"""
- name: Read the ACL policy of MISP's service accounts
  cti.misp_platform.vault_read:
    url: https://vault.example.org:8200
    path: sys/policies/acl/misp-read
  register: policy
  no_log: true

- name: Whether Vault answers, without a token
  cti.misp_platform.vault_read:
    path: sys/health
    auth_method: none
  register: health
  failed_when: false
"""

RETURN = r"""
data:
  description: The raw result of the read against the given path.
  returned: success
  type: dict
  sample: {data: {name: misp-read, policy: 'path "misp/data/*" { capabilities = ["read"] }'}}
"""
