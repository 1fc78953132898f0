# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying a list of Kubernetes objects in one module run (internal to this collection).

Each object goes through kubernetes.core's own perform_action, exactly as kubernetes.core.k8s
with ``apply: true`` handles it (client-side apply, dry run in check mode, waiter, diff), so an
object keeps the same field ownership and result whichever of the two applied it. What this adds:
one Python process and one API client for all the objects of a role instead of one per loop item
(about a second each), one read of an object the apply leaves unchanged (_OneReadService), a diff
per object under ``--diff``, and errors that name the object.
The module and the action plugin (which applies in the controller's own process on a local
connection) share apply_objects.
"""

from __future__ import annotations

import time

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.apply import apply_patch
from ansible_collections.kubernetes.core.plugins.module_utils.exceptions import ApplyException
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import requires
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.resource import create_definitions
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.runner import perform_action
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import K8sService

try:
    import yaml

    # libyaml's parser reads a role's rendered templates about ten times faster than PyYAML's own
    # (kubernetes.core's from_yaml), which was half of an unchanged apply's time.
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:
    # kubernetes.core's module setup reports the missing PyYAML.
    pass

K8S_APPLY_ARGSPEC = {
    "definitions": {"type": "list", "elements": "raw"},
    # Rendered by the action plugin into definitions; the module never receives it.
    "template": {"type": "list", "elements": "str"},
    "namespace": {"type": "str"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "apply": {"type": "bool", "default": True},
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": 120},
    "wait_sleep": {"type": "int", "default": 5},
    "absent": {"type": "list", "elements": "raw", "default": []},
    "prune": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "api_version": {"type": "str", "required": True},
            "kind": {"type": "str", "required": True},
            "label_selectors": {"type": "list", "elements": "str", "required": True},
            "namespace": {"type": "str"},
        },
    },
}

# Checks of the arguments beyond K8S_APPLY_ARGSPEC, for AnsibleModule and the action plugin alike.
K8S_APPLY_CHECKS = {
    "required_one_of": [("definitions", "template")],
    "mutually_exclusive": [("definitions", "template")],
}

# Options of kubernetes.core.k8s that its service reads from the module's parameters, fixed to
# the values kubernetes.core.k8s has when nothing else is set (apply is an option of this module).
_K8S_FIXED_PARAMS = {
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
# count as a change the apply made, and an idempotent run would report one. A created object gets
# its uid and creationTimestamp from the server too (made up by a dry run, under --check).
_SERVER_WRITTEN = frozenset({"status"})
_SERVER_WRITTEN_METADATA = frozenset(
    {"resourceVersion", "generation", "managedFields", "uid", "creationTimestamp", "selfLink"}
)


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


def object_key(definition: dict) -> tuple:
    """What tells one object from another among a task's objects: kind, namespace and name."""
    metadata = definition["metadata"]
    return definition["kind"], metadata.get("namespace"), metadata["name"]


def load_definitions(params: dict, key: str = "definitions") -> list[dict]:
    """Every object of ``params[key]`` (dicts, or YAML texts of one or more documents; empty
    documents dropped, ``*List`` kinds flattened), with ``namespace`` where an object names none.
    Refuses, naming it, any entry that is not an object with kind, apiVersion and name."""
    for index, entry in enumerate(params[key]):
        if not isinstance(entry, (dict, str)):
            raise K8sApplyError(f"{key}[{index}] is a {type(entry).__name__}, not an object or YAML text", [])
    try:
        documents = [
            document
            for entry in params[key]
            # str(): libyaml takes only plain strings, not Ansible's str subclasses.
            for document in (yaml.load_all(str(entry), Loader=_SafeLoader) if isinstance(entry, str) else [entry])
            if document
        ]
    except Exception as exc:
        # Any YAML error, reported as the input error it is.
        raise K8sApplyError(f"{key} could not be read: {to_native(exc)}", []) from exc
    for document in documents:
        if not isinstance(document, dict):
            raise K8sApplyError(f"{key} holds {document!r}, which is not an object", [])
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


def _without_server_fields(side: dict) -> dict:
    """One side of an object's diff without the fields the server and controllers write (status,
    resourceVersion, generation, managedFields...): what is left is what the apply changes."""
    kept = {key: value for key, value in side.items() if key != "metadata" and key not in _SERVER_WRITTEN}
    metadata = {
        key: value for key, value in (side.get("metadata") or {}).items() if key not in _SERVER_WRITTEN_METADATA
    }
    if metadata:
        kept["metadata"] = metadata
    return kept


def changed_by_apply(result: dict) -> bool:
    """Whether the apply changed the object: False when the only differences kubernetes.core found
    are fields the server and controllers write. Needs the result's diff (always asked for)."""
    if not result["changed"] or result.get("method") != "apply" or not result.get("diff"):
        return result["changed"]
    diff = result["diff"]
    return any(_without_server_fields(diff.get(side) or {}) for side in ("before", "after"))


class _AlwaysDiff:
    """The module as kubernetes.core's service sees it, asking for the differences on every run:
    kubernetes.core returns them only under --diff, and changed_by_apply reads them."""

    _diff = True

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)


def merge_patched(target, patch):
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7386), as the API server applies
    the patches of kubernetes.core's client-side apply."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patched(result.get(key), value)
    return result


class _OneReadService(K8sService):
    """kubernetes.core's service, whose apply of an object that the patch would leave as it is
    returns the object as perform_action read it. kubernetes.core's client reads it again (its
    apply_object), then reads it a third time or sends the patch, which changes nothing: two of
    every three requests of a re-run. Its own apply_patch makes the patch; anything the patch
    would change, or that it cannot make, goes to kubernetes.core's apply."""

    def apply(self, resource, definition, existing=None):
        if existing and not self.module.params.get("server_side_apply") and not self._client_side_dry_run:
            try:
                actual, patch = apply_patch(existing.to_dict(), definition)
            except ApplyException:
                pass  # kubernetes.core's apply reports it.
            else:
                if merge_patched(actual, patch) == actual:
                    # No warnings: the read's response headers are gone (a deprecated API's warning
                    # shows when the object next changes).
                    return actual, []
        return super().apply(resource, definition, existing)


class ControllerRun:
    """What kubernetes.core's API client and service read from a module, for a run without one: the
    action plugin's, in the controller's process. Differences are always asked for, as with
    _AlwaysDiff; warnings go to ``warn``."""

    _diff = True

    def __init__(self, params: dict, check_mode: bool, warn):
        self.params = params
        self.check_mode = check_mode
        self.warn = warn

    @property
    def server_side_dry_run(self) -> bool:
        return self.check_mode

    def requires(self, dependency, minimum=None, reason=None) -> None:
        try:
            requires(dependency, minimum, reason=reason)
        except Exception as exc:
            # kubernetes.core raises a bare Exception naming the missing library.
            raise CoreException(to_native(exc)) from exc


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
    # Without what the server wrote (an apply moves managedFields and generation along): a drift
    # check shows the fields that differ, nothing else.
    return {
        "before_header": label,
        "after_header": label,
        "before": _without_server_fields(diff.get("before") or {}),
        "after": _without_server_fields(diff.get("after", result.get("result")) or {}),
    }


def check_absent(definitions: list[dict], absent: list[dict], params: dict) -> None:
    """Refuses, naming it, an O(absent) that contradicts the task: with state=absent, or holding an
    object that O(definitions) applies."""
    if absent and params["state"] != "present":
        raise K8sApplyError("absent goes with state=present", [])
    applied = {object_key(definition) for definition in definitions}
    for definition in absent:
        if object_key(definition) in applied:
            raise K8sApplyError(f"{object_label(definition)} is both in definitions and in absent", [])


def check_prune(params: dict) -> None:
    """Refuses, naming it, a prune entry that could delete what it should not: one without a
    namespace to search, with state=absent, or with no label selector (every object of its kind)."""
    for index, entry in enumerate(params["prune"]):
        if params["state"] != "present":
            raise K8sApplyError("prune goes with state=present", [])
        if not (entry["namespace"] or params["namespace"]):
            raise K8sApplyError(f"prune[{index}] ({entry['kind']}) needs a namespace, its own or namespace", [])
        if not [selector for selector in entry["label_selectors"] if selector]:
            kind = entry["kind"]
            raise K8sApplyError(f"prune[{index}] ({kind}) has no label selector: it would delete every {kind}", [])


def stale_objects(svc, definitions: list[dict], params: dict) -> list[dict]:
    """The objects that O(prune)'s kinds and labels find in their namespace and ``definitions`` does
    not hold, as definitions to delete. A kind the cluster does not serve has none."""
    # load_definitions gave every object without a namespace O(namespace).
    wanted = {object_key(definition) for definition in definitions}
    stale = []
    for entry in params["prune"]:
        namespace = entry["namespace"] or params["namespace"]
        selectors = [selector for selector in entry["label_selectors"] if selector]
        try:
            found = svc.find(entry["kind"], entry["api_version"], namespace=namespace, label_selectors=selectors)
        except Exception as exc:
            # kubernetes.core raises several kinds; each becomes an error naming the search.
            search = f"{entry['kind']} objects to prune ({', '.join(selectors)})"
            raise K8sApplyError(f"finding the {search}: {to_native(exc)}", []) from exc
        for live in found["resources"]:
            metadata = {"name": live["metadata"]["name"], "namespace": namespace}
            gone = {"apiVersion": entry["api_version"], "kind": entry["kind"], "metadata": metadata}
            if object_key(gone) not in wanted:
                stale.append(gone)
    return stale


def rolled_out(deployment: dict) -> bool:
    """Whether every replica of a Deployment runs its current template. kubernetes.core's waiter
    also accepts a status the controller writes while it starts scaling the old ReplicaSet down
    (it does not look at updatedReplicas): with the Recreate strategy, before the new pod exists."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    return (
        status.get("observedGeneration") == (deployment.get("metadata") or {}).get("generation")
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
    )


def wait_rolled_out(svc, definition: dict, params: dict) -> None:
    """After kubernetes.core's wait: until the Deployment is rolled_out, within wait_timeout."""
    resource = svc.find_resource(definition["kind"], definition["apiVersion"], fail=True)
    metadata = definition["metadata"]
    deadline = time.monotonic() + params["wait_timeout"]
    while not rolled_out(
        svc.client.get(resource, name=metadata["name"], namespace=metadata.get("namespace")).to_dict()
    ):
        if time.monotonic() >= deadline:
            raise CoreException(f"not rolled out after {params['wait_timeout']} s")
        time.sleep(params["wait_sleep"])


def apply_all(svc, definitions: list[dict], params: dict, want_diff: bool, stale: list[dict] = ()) -> dict:
    """Applies (or deletes) each object in order, then deletes the ``stale`` ones; a failure stops
    at that object, naming it and listing the objects already handled."""
    objects, diffs, changed = [], [], False
    steps = [(definition, params) for definition in definitions]
    steps += [(definition, dict(params, state="absent")) for definition in stale]
    for definition, object_params in steps:
        try:
            result = perform_action(svc, definition, object_params)
            if (
                object_params.get("wait")
                and object_params["state"] == "present"
                and definition["kind"] == "Deployment"
                and not svc.module.check_mode
            ):
                wait_rolled_out(svc, definition, object_params)
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


def apply_objects(run, want_diff: bool) -> dict:
    """Reads ``run.params``'s definitions and applies them; the result the module returns. Raises
    K8sApplyError for bad input or a failed object, CoreException when no client can be made.
    ``run`` is the module (seen through _AlwaysDiff) or a ControllerRun."""
    run.params.update(_K8S_FIXED_PARAMS)
    definitions = load_definitions(run.params)
    absent = load_definitions(run.params, "absent")
    check_absent(definitions, absent, run.params)
    check_prune(run.params)
    if not definitions and not absent and not run.params["prune"]:
        return {"changed": False, "objects": [], **({"diff": []} if want_diff else {})}
    svc = _OneReadService(get_api_client(run), run)
    return apply_all(svc, definitions, run.params, want_diff, absent + stale_objects(svc, definitions, run.params))


def run_module(module) -> None:
    """Entry point of the module: read, apply, exit_json; errors become fail_json."""
    try:
        module.exit_json(**apply_objects(_AlwaysDiff(module), module._diff))
    except K8sApplyError as exc:
        module.fail_json(msg=str(exc), objects=exc.objects)
    except CoreException as exc:
        module.fail_from_exception(exc)
