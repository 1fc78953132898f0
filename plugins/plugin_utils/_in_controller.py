# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the collection's modules inside the controller (internal to this collection).

Every play of the collection that talks to the cluster or to MISP runs on the controller with a
local connection. A module process there spends most of its time starting Python and importing
what the module needs (the Kubernetes client alone is 0.4 s); the action plugins built on
InControllerAction run the module's own entry point in the task's worker instead, a fork of the
controller's main process, which imported the action plugin, and with it those libraries, once.
On any other connection the module runs on its host as usual.
"""

from __future__ import annotations

import os
import traceback

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase


class _ModuleExit(Exception):
    def __init__(self, result):
        super().__init__()
        self.result = result


class ControllerModule:
    """What the collection's module entry points use of AnsibleModule (params, check mode, the
    values never to show, warn, exit_json, fail_json), for a run in the controller."""

    def __init__(self, params, check_mode, diff, no_log_values):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.no_log_values = set(no_log_values)
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)

    def exit_json(self, **result):
        raise _ModuleExit(result)

    def fail_json(self, msg, **result):
        raise _ModuleExit(dict(result, failed=True, msg=msg))

    def run(self, entry_point):
        """The result of ``entry_point(self)``, with the arguments it ran with and every value
        never to show masked, as AnsibleModule returns a module's result."""
        result = None
        try:
            entry_point(self)
        except _ModuleExit as done:
            result = done.result
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # What a module process that raises ends with: a failed result, which failed_when and
            # ignore_errors see (an exception out of the action plugin would end the task anyway).
            message = f"{type(exc).__name__}: {to_native(exc)}"
            result = {"failed": True, "msg": message, "exception": traceback.format_exc()}
        if result is None:
            raise RuntimeError(f"{entry_point.__module__} returned without exit_json or fail_json")
        if self.warnings:
            result["warnings"] = self.warnings
        # Shown with -vvv, the values never to show masked, as AnsibleModule returns them.
        result.setdefault("invocation", {"module_args": self.params})
        return remove_values(result, self.no_log_values)


class InControllerAction(ActionBase):
    """Runs ``MODULE`` in the controller on a local connection, on its host otherwise.

    Subclasses name the module, its argument spec and checks (as AnsibleModule takes them) and
    its entry point, which takes an AnsibleModule or a ``CONTROLLER_MODULE`` (a ControllerModule
    with whatever else the entry point reads of its module).
    """

    _supports_check_mode = True
    _supports_async = False

    MODULE = ""
    CONTROLLER_MODULE = ControllerModule

    def argument_spec(self):
        """(argument_spec, {required_together: ..., mutually_exclusive: ...}) of the module."""
        raise NotImplementedError

    def entry_point(self, module):
        raise NotImplementedError

    def in_controller(self):
        """Whether this task can run in the controller."""
        return self._connection.transport == "local"

    def module_args(self, task_vars):
        """The arguments the module gets: the task's."""
        return dict(self._task.args)

    def run_here(self, params, no_log_values):
        """The module's result, run in this process."""
        module = self.CONTROLLER_MODULE(params, self._task.check_mode, self._task.diff, no_log_values)
        return module.run(self.entry_point)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = self.module_args(task_vars or {})
        if not self.in_controller():
            result.update(self._execute_module(module_name=self.MODULE, module_args=module_args, task_vars=task_vars))
            self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        # What a module process would get (K8S_AUTH_KUBECONFIG, MISP_URL...), before the spec's
        # fallbacks read it; this worker is a process of this task alone.
        environment = {}
        self._compute_environment_string(environment)
        os.environ.update({name: to_native(value) for name, value in environment.items()})
        spec, checks = self.argument_spec()
        validation = ArgumentSpecValidator(spec, **checks).validate(module_args)
        if validation.error_messages:
            message = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):
                message = f"Unsupported parameters for ({self.MODULE}) module: {message}"
            raise AnsibleActionFail(message)
        result.update(self.run_here(validation.validated_parameters, validation._no_log_values))
        return result
