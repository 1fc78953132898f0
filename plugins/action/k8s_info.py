# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cti.misp_platform.k8s_info: kubernetes.core.k8s_info's own code, run in the
controller on a local connection (plugin_utils/_in_controller.py); kubernetes.core.k8s_info's
module on any other connection."""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.action.k8s_info import ActionModule as CoreAction
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import K8sService
from ansible_collections.kubernetes.core.plugins.modules import k8s_info

from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_apply import ControllerRun
from ansible_collections.cti.misp_platform.plugins.plugin_utils._in_controller import (
    ControllerModule,
    InControllerAction,
)

try:
    import kubernetes  # noqa: F401  pylint: disable=unused-import

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False


class _K8sModule(ControllerModule):
    """A ControllerModule with what kubernetes.core's client reads besides (requires, dry run)."""

    requires = ControllerRun.requires

    @property
    def server_side_dry_run(self):
        return False


class ActionModule(InControllerAction):
    MODULE = "kubernetes.core.k8s_info"
    CONTROLLER_MODULE = _K8sModule

    def argument_spec(self):
        return k8s_info.argspec(), {}

    def in_controller(self):
        # Without the library the module reports it.
        return super().in_controller() and HAS_KUBERNETES

    def module_args(self, task_vars):
        args = super().module_args(task_vars)
        if args.get("kubeconfig") and self.in_controller():
            # Found (files/ of the role or play) and decrypted as kubernetes.core's plugin does.
            CoreAction.get_kubeconfig(self, args["kubeconfig"], False, args)
        return args

    def entry_point(self, module):
        try:
            k8s_info.execute_module(module, K8sService(get_api_client(module), module))
        except CoreException as exc:
            module.fail_json(msg=to_native(exc))
