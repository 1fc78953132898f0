#!/usr/bin/python
# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_kv2_get
short_description: Get a KV version 2 secret as community.hashi_vault.vault_kv2_get does, in the controller
version_added: 1.0.0
author:
  - cti.misp_platform developers (@cti)
description:
  - M(community.hashi_vault.vault_kv2_get) with the same options, messages and result, run by its
    own code, which on a C(local) connection runs in the controller's own process (the action
    plugin) instead of a new Python process that imports hvac first. It reads the task's
    C(environment) (E(VAULT_ADDR), E(VAULT_TOKEN)...) as the module would.
  - On any other connection the task runs M(community.hashi_vault.vault_kv2_get) on the host.
  - It is in the action group C(cti.misp_platform.vault), which extends C(community.hashi_vault.vault).
extends_documentation_fragment:
  - community.hashi_vault.connection
  - community.hashi_vault.auth
  - community.hashi_vault.engine_mount
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - cti.misp_platform.in_controller
  - cti.misp_platform.in_controller.read_only
options:
  engine_mount_point:
    default: secret
  path:
    description:
      - Vault KV path to be read, relative to O(engine_mount_point), without C(/data/).
    type: str
    required: true
  version:
    description: The version to return; the latest without it.
    type: int
seealso:
  - module: community.hashi_vault.vault_kv2_get
  - module: cti.misp_platform.vault_read
requirements:
  - hvac
"""

EXAMPLES = r"""
- name: Read MISP's database secret, which may not exist yet
  cti.misp_platform.vault_kv2_get:
    engine_mount_point: misp
    path: database
  register: database
  failed_when: >-
    database.failed | default(false)
    and database.msg is not search('Invalid or missing path')
  no_log: true
"""

RETURN = r"""
raw:
  description: The raw result of the read against the given path.
  returned: success
  type: dict
data:
  description: The C(data) field of the raw result (C(raw.data)).
  returned: success
  type: dict
  sample: {data: {password: "..."}, metadata: {version: 2, destroyed: false}}
secret:
  description: The secret's keys and values (C(raw.data.data)).
  returned: success
  type: dict
  sample: {password: "..."}
metadata:
  description: The secret's metadata (C(raw.data.metadata)).
  returned: success
  type: dict
  sample:
    created_time: "2026-12-06T09:00:00.000000Z"
    custom_metadata: null
    deletion_time: ""
    destroyed: false
    version: 2
"""
