# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cti.misp_platform.k8s_apply.

On a local connection the objects are applied in the controller's own process: a module process
spends most of its time starting Python and importing the Kubernetes client (0.5-0.9 s a task, most
of an idempotent run's time). This plugin's module is imported once by the controller's main
process, whose task workers are forks of it, so each task starts with the client imported. On any
other connection (a delegate that holds the kubeconfig, say) the module runs on that host.
"""

from __future__ import annotations

import os

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_apply import (
    K8S_APPLY_ARGSPEC,
    ControllerRun,
    K8sApplyError,
    apply_objects,
)
from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_args import k8s_argspec

try:
    import kubernetes  # noqa: F401  pylint: disable=unused-import

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False

display = Display()


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if self._connection.transport != "local" or not HAS_KUBERNETES:
            # The module reports a missing kubernetes library itself.
            result.update(self._execute_module(module_name="cti.misp_platform.k8s_apply", task_vars=task_vars))
            self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        _validation, params = self.validate_argument_spec(argument_spec=k8s_argspec(K8S_APPLY_ARGSPEC))
        # The module would see the task's environment (K8S_AUTH_KUBECONFIG...); this worker is a
        # process of this task alone, so its environment can take it.
        environment = {}
        self._compute_environment_string(environment)
        os.environ.update({name: to_native(value) for name, value in environment.items()})
        try:
            result.update(apply_objects(ControllerRun(params, self._task.check_mode, display.warning), self._task.diff))
        except K8sApplyError as exc:
            result.update(failed=True, msg=str(exc), objects=exc.objects)
        except CoreException as exc:
            result.update(failed=True, msg=to_native(exc))
        return result
