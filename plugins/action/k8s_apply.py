# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cti.misp_platform.k8s_apply: applies in the controller on a local connection
(plugin_utils/_in_controller.py), and renders O(template) into O(definitions).

The templates are rendered as one, which includes each file, with one view of the task's
variables: ansible.builtin.template's lookup deep-copies every variable of the play for each file
(about 30 ms a file on the rig, most of a role's templating), which rendering does not need, as it
only reads them; and a variable that several files read is templated once.
"""

from __future__ import annotations

import json
import os
import uuid

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.common.validation import check_type_list
from ansible.template import trust_as_template
from ansible.utils.display import Display
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_apply import (
    K8S_APPLY_ARGSPEC,
    K8S_APPLY_CHECKS,
    ControllerRun,
    K8sApplyError,
    apply_objects,
)
from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_args import k8s_argspec
from ansible_collections.cti.misp_platform.plugins.plugin_utils._in_controller import InControllerAction

try:
    import kubernetes  # noqa: F401  pylint: disable=unused-import

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False

display = Display()


class ActionModule(InControllerAction):
    MODULE = "cti.misp_platform.k8s_apply"

    def argument_spec(self):
        return k8s_argspec(K8S_APPLY_ARGSPEC), K8S_APPLY_CHECKS

    def in_controller(self):
        # Without the library the module reports it.
        return super().in_controller() and HAS_KUBERNETES

    def module_args(self, task_vars):
        args = super().module_args(task_vars)
        if args.get("template") is None or args.get("definitions") is not None:
            # With both, the spec's mutually_exclusive check (here or in the module) names them.
            return args
        try:
            names = check_type_list(args.pop("template"))
        except TypeError as exc:
            raise AnsibleActionFail(f"template: {to_native(exc)}") from None
        args["definitions"] = self._render(names, task_vars)
        return args

    def run_here(self, params, no_log_values):
        try:
            return apply_objects(ControllerRun(params, self._task.check_mode, display.warning), self._task.diff)
        except K8sApplyError as exc:
            return {"failed": True, "msg": str(exc), "objects": exc.objects}
        except CoreException as exc:
            return {"failed": True, "msg": to_native(exc)}

    def _render(self, names, task_vars):
        """Each template of ``names`` rendered with the task's variables, as YAML text."""
        paths = [self._find_needle("templates", str(name)) for name in names]
        if not paths:
            return []
        # One template that includes them all, each after a marker no template renders: they share
        # one view of the variables, so a variable that several of them read (the shared labels,
        # Secret names, namespace) is templated once. The marker also keeps the result text where
        # a lone template rendering nothing or a number would be None or an int.
        root = os.path.commonpath([os.path.dirname(path) for path in paths])
        marker = uuid.uuid4().hex
        source = "".join(f"{marker}{{% include {json.dumps(os.path.relpath(path, root))} %}}" for path in paths)
        # A shallow copy is the sacrificial layer the template lookup's deepcopy stands for.
        templar = self._templar.copy_with_new_env(searchpath=[root], available_variables=dict(task_vars))
        rendered = templar.template(
            trust_as_template(source), preserve_trailing_newlines=True, escape_backslashes=False
        )
        return rendered.split(marker)[1:]
