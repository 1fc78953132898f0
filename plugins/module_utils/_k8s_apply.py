# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying a list of Kubernetes objects in one module run (internal to this collection).

Each object goes through kubernetes.core's own perform_action, exactly as kubernetes.core.k8s
with ``apply: true`` handles it (client-side apply, dry run in check mode, waiter, diff), so an
object keeps the same field ownership and result whichever of the two applied it. What this adds:
one Python process and one API client for all the objects of a role instead of one per loop item
(about a second each), a diff per object under ``--diff``, and errors that name the object.
"""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.resource import create_definitions, from_yaml
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.runner import perform_action
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import K8sService

K8S_APPLY_ARGSPEC = {
    "definitions": {"type": "list", "elements": "raw", "required": True},
    "namespace": {"type": "str"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": 120},
    "wait_sleep": {"type": "int", "default": 5},
}

# Options of kubernetes.core.k8s that its service reads from the module's parameters, fixed to
# the values kubernetes.core.k8s has with apply: true and nothing else set.
_K8S_FIXED_PARAMS = {
    "apply": True,
    "force": False,
    "server_side_apply": None,
    "merge_type": None,
    "append_hash": False,
    "label_selectors": None,
    "hidden_fields": None,
    "wait_condition": None,
    "delete_options": None,
    "generate_name": None,
    "kind": None,
    "api_version": None,
    "name": None,
    "src": None,
}


# What the API server and the controllers write. kubernetes.core compares the object it read
# before the apply with the one after it (after the wait, with wait: true): a status a controller
# wrote meanwhile (a Deployment's replicas while it is waited for, an autoscaler's metrics) would
# count as a change the apply made, and an idempotent run would report one.
_SERVER_WRITTEN = frozenset({"status"})
_SERVER_WRITTEN_METADATA = frozenset({"resourceVersion", "generation", "managedFields"})


class K8sApplyError(Exception):
    """A bad definition or a failed object; the message names it."""

    def __init__(self, msg: str, objects: list[dict]):
        super().__init__(msg)
        self.objects = objects


def object_label(definition: dict) -> str:
    """``Kind namespace/name``, or ``Kind name`` for an object without a namespace."""
    metadata = definition.get("metadata") or {}
    name = metadata.get("name") or metadata.get("generateName") or "<no name>"
    namespace = metadata.get("namespace")
    return f"{definition.get('kind') or '<no kind>'} {namespace + '/' if namespace else ''}{name}"


def load_definitions(params: dict) -> list[dict]:
    """Every object of ``definitions`` (dicts, or YAML texts of one or more documents; empty
    documents dropped, ``*List`` kinds flattened), with ``namespace`` where an object names none.
    Refuses, naming it, any entry that is not an object with kind, apiVersion and name."""
    for index, entry in enumerate(params["definitions"]):
        if not isinstance(entry, (dict, str)):
            raise K8sApplyError(f"definitions[{index}] is a {type(entry).__name__}, not an object or YAML text", [])
    try:
        documents = list(from_yaml(params["definitions"]))
    except Exception as exc:
        # Any YAML error, reported as the input error it is.
        raise K8sApplyError(f"definitions could not be read: {to_native(exc)}", []) from exc
    for document in documents:
        if not isinstance(document, dict):
            raise K8sApplyError(f"definitions holds {document!r}, which is not an object", [])
    if not documents:
        return []
    definitions = create_definitions({**params, "resource_definition": documents})
    for definition in definitions:
        missing = [key for key in ("kind", "apiVersion") if not definition.get(key)]
        if not (definition.get("metadata") or {}).get("name"):
            missing.append("metadata.name")
        if missing:
            raise K8sApplyError(f"{object_label(definition)} has no {', '.join(missing)}", [])
    return definitions


def changed_by_apply(result: dict) -> bool:
    """Whether the apply changed the object: False when the only differences kubernetes.core found
    are fields the server and controllers write. Needs the result's diff (always asked for)."""
    if not result["changed"] or result.get("method") != "apply" or not result.get("diff"):
        return result["changed"]
    for side in (result["diff"].get("before") or {}, result["diff"].get("after") or {}):
        if set(side) - _SERVER_WRITTEN - {"metadata"}:
            return True
        if set(side.get("metadata") or {}) - _SERVER_WRITTEN_METADATA:
            return True
    return False


class _AlwaysDiff:
    """The module as kubernetes.core's service sees it, asking for the differences on every run:
    kubernetes.core returns them only under --diff, and changed_by_apply reads them."""

    _diff = True

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)


def summary(definition: dict, result: dict) -> dict:
    """What the module returns about one object: no object bodies, which may be large."""
    metadata = definition.get("metadata") or {}
    # The live object's true conditions (a Job's Complete, say), so that a caller needs no read of
    # its own to know whether an unchanged object had finished.
    status = (result.get("result") or {}).get("status") or {}
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return {
        "kind": definition.get("kind"),
        "api_version": definition.get("apiVersion"),
        "namespace": metadata.get("namespace"),
        "name": metadata.get("name"),
        "changed": result["changed"],
        "method": result.get("method"),
        "conditions": [c.get("type") for c in conditions or [] if isinstance(c, dict) and c.get("status") == "True"],
    }


def diff_entry(definition: dict, result: dict) -> dict | None:
    """The object's diff with headers naming it, or None when it did not change."""
    if not result["changed"]:
        return None
    label = object_label(definition)
    diff = result.get("diff") or {}
    if result.get("method") == "delete":
        return {"before_header": label, "after_header": f"{label} (deleted)", "before": "present\n", "after": ""}
    return {
        "before_header": label,
        "after_header": label,
        "before": diff.get("before", {}),
        "after": diff.get("after", result.get("result", {})),
    }


def apply_all(svc, definitions: list[dict], params: dict, want_diff: bool) -> dict:
    """Applies (or deletes) each object in order; a failure stops at that object, naming it and
    listing the objects already handled."""
    objects, diffs, changed = [], [], False
    for definition in definitions:
        try:
            result = perform_action(svc, definition, params)
        except Exception as exc:
            # kubernetes.core raises several kinds; each becomes an error naming the object.
            raise K8sApplyError(f"{object_label(definition)}: {to_native(exc)}", objects) from exc
        result["changed"] = changed_by_apply(result)
        changed |= result["changed"]
        objects.append(summary(definition, result))
        entry = diff_entry(definition, result) if want_diff else None
        if entry:
            diffs.append(entry)
    outcome = {"changed": changed, "objects": objects}
    if want_diff:
        outcome["diff"] = diffs
    return outcome


def run_module(module) -> None:
    """Entry point of the module: read, apply, exit_json; errors become fail_json."""
    module.params.update(_K8S_FIXED_PARAMS)
    try:
        definitions = load_definitions(module.params)
        if not definitions:
            module.exit_json(changed=False, objects=[], **({"diff": []} if module._diff else {}))
        svc = K8sService(get_api_client(module), _AlwaysDiff(module))
        module.exit_json(**apply_all(svc, definitions, module.params, module._diff))
    except K8sApplyError as exc:
        module.fail_json(msg=str(exc), objects=exc.objects)
    except CoreException as exc:
        module.fail_from_exception(exc)
