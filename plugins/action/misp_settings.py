# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cti.misp_platform.misp_settings: runs the module in the controller on a local
connection (plugin_utils/_in_controller.py), on its host otherwise."""

from __future__ import annotations

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_settings import argument_spec, run_module
from ansible_collections.cti.misp_platform.plugins.plugin_utils._in_controller import InControllerAction


class ActionModule(InControllerAction):
    MODULE = "cti.misp_platform.misp_settings"

    def argument_spec(self):
        return argument_spec()

    def entry_point(self, module):
        run_module(module)
