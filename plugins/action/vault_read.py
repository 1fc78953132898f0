# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cti.misp_platform.vault_read: community.hashi_vault.vault_read's own code, run
in the controller on a local connection (plugin_utils/_vault_in_controller.py); that module on
any other connection."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.community.hashi_vault.plugins.modules import vault_read

from ansible_collections.cti.misp_platform.plugins.plugin_utils._vault_in_controller import VaultInControllerAction


class ActionModule(VaultInControllerAction):
    MODULE = "community.hashi_vault.vault_read"
    CORE = vault_read
    OPTIONS: ClassVar[dict] = {"path": {"type": "str", "required": True}}
