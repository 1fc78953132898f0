"""Unit tests of _k8s_apply: reading the definitions, per-object results, diffs and errors."""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils import _k8s_apply

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
CM_AFTER = {"data": {"k": "v"}}
ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}


def params(definitions, **extra):
    return {"definitions": definitions, "namespace": "misp", "state": "present", **extra}


def test_reads_dicts_and_multi_document_yaml_and_sets_the_namespace():
    text = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: other}\n---\n\n---\n" + json.dumps(ROLE)
    definitions = _k8s_apply.load_definitions(params([CM, text]))
    assert [(d["kind"], d["metadata"].get("namespace")) for d in definitions] == [
        ("ConfigMap", "misp"),
        ("Secret", "other"),
        ("ClusterRole", "misp"),
    ]


def test_flattens_list_kinds():
    listed = {"apiVersion": "v1", "kind": "ConfigMapList", "items": [CM, {**CM, "metadata": {"name": "b"}}]}
    assert [d["metadata"]["name"] for d in _k8s_apply.load_definitions(params([listed]))] == ["a", "b"]


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ([CM, 42], "definitions[1] is a int, not an object or YAML text"),
        ([{"kind": "ConfigMap", "metadata": {"name": "a"}}], "ConfigMap misp/a has no apiVersion"),
        ([{"apiVersion": "v1", "metadata": {"name": "a"}}], "<no kind> misp/a has no kind"),
        ([{"apiVersion": "v1", "kind": "ConfigMap"}], "ConfigMap misp/<no name> has no metadata.name"),
        (["kind: [unclosed"], "definitions could not be read: "),
        (["- just\n- a list\n"], "definitions holds ['just', 'a list'], which is not an object"),
    ],
)
def test_bad_definitions_are_refused_naming_them(definitions, message):
    with pytest.raises(_k8s_apply.K8sApplyError) as err:
        _k8s_apply.load_definitions(params(definitions))
    assert str(err.value).startswith(message)


def fake_perform(outcomes):
    """A perform_action that answers from ``outcomes`` by object name (an exception is raised)."""
    calls = []

    def perform(svc, definition, params):
        calls.append(definition["metadata"]["name"])
        outcome = outcomes[definition["metadata"]["name"]]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return perform, calls


def test_each_object_is_reported_and_only_changed_ones_get_a_named_diff(monkeypatch):
    perform, calls = fake_perform(
        {
            "a": {
                "changed": True,
                "method": "apply",
                "diff": {"before": {"data": {"k": "old"}}, "after": {"data": {"k": "v"}}},
            },
            "r": {
                "changed": False,
                "method": "apply",
                "diff": {},
                "result": {
                    "status": {
                        "conditions": [{"type": "Complete", "status": "True"}, {"type": "Failed", "status": "False"}]
                    }
                },
            },
        }
    )
    monkeypatch.setattr(_k8s_apply, "perform_action", perform)
    definitions = _k8s_apply.load_definitions(params([CM, ROLE]))
    outcome = _k8s_apply.apply_all(None, definitions, {}, want_diff=True)
    assert calls == ["a", "r"]
    assert outcome["changed"] is True
    assert [(o["kind"], o["name"], o["changed"], o["method"]) for o in outcome["objects"]] == [
        ("ConfigMap", "a", True, "apply"),
        ("ClusterRole", "r", False, "apply"),
    ]
    # Only the conditions that hold, and none for an object without status.
    assert [o["conditions"] for o in outcome["objects"]] == [[], ["Complete"]]
    assert outcome["diff"] == [
        {
            "before_header": "ConfigMap misp/a",
            "after_header": "ConfigMap misp/a",
            "before": {"data": {"k": "old"}},
            "after": CM_AFTER,
        }
    ]
    assert "diff" not in _k8s_apply.apply_all(None, definitions, {}, want_diff=False)


def test_a_deleted_object_shows_as_deleted_in_the_diff(monkeypatch):
    perform, _calls = fake_perform({"a": {"changed": True, "method": "delete"}})
    monkeypatch.setattr(_k8s_apply, "perform_action", perform)
    outcome = _k8s_apply.apply_all(None, _k8s_apply.load_definitions(params([CM])), {}, want_diff=True)
    assert outcome["diff"][0]["after_header"] == "ConfigMap misp/a (deleted)"


def test_a_failure_names_the_object_and_lists_those_before_it(monkeypatch):
    perform, calls = fake_perform(
        {"a": {"changed": True, "method": "apply"}, "r": RuntimeError("Failed to apply object: forbidden")}
    )
    monkeypatch.setattr(_k8s_apply, "perform_action", perform)
    third = {**CM, "metadata": {"name": "never"}}
    with pytest.raises(_k8s_apply.K8sApplyError) as err:
        _k8s_apply.apply_all(None, _k8s_apply.load_definitions(params([CM, ROLE, third])), {}, want_diff=False)
    assert str(err.value) == "ClusterRole misp/r: Failed to apply object: forbidden"
    assert [o["name"] for o in err.value.objects] == ["a"]
    assert calls == ["a", "r"]


def test_no_objects_is_nothing_to_do():
    assert _k8s_apply.load_definitions(params(["---\n", ""])) == []


@pytest.mark.parametrize(
    ("diff", "changed"),
    [
        # A controller wrote the status between the read and the apply (or during its wait).
        ({"before": {"status": {"readyReplicas": 2}}, "after": {"status": {"readyReplicas": 1}}}, False),
        (
            {
                "before": {"metadata": {"resourceVersion": "7", "managedFields": [{"manager": "hpa"}]}},
                "after": {"metadata": {"resourceVersion": "9", "managedFields": [{"manager": "hpa"}, {}]}},
            },
            False,
        ),
        # What the apply itself changes counts, with or without a status change beside it.
        ({"before": {"spec": {"replicas": 2}}, "after": {"spec": {"replicas": 3}}}, True),
        (
            {
                "before": {"metadata": {"labels": {"a": "1"}}, "status": {"x": 1}},
                "after": {"metadata": {"labels": {"a": "2"}}, "status": {"x": 2}},
            },
            True,
        ),
        ({"before": {}, "after": {"data": {"k": "v"}}}, True),
    ],
)
def test_only_what_the_apply_changed_counts(monkeypatch, diff, changed):
    perform, _calls = fake_perform({"a": {"changed": True, "method": "apply", "diff": diff}})
    monkeypatch.setattr(_k8s_apply, "perform_action", perform)
    outcome = _k8s_apply.apply_all(None, _k8s_apply.load_definitions(params([CM])), {}, want_diff=True)
    assert outcome["changed"] is changed
    assert [o["changed"] for o in outcome["objects"]] == [changed]
    assert len(outcome["diff"]) == int(changed)


def test_a_diff_shows_what_the_apply_changes_not_what_the_server_writes(monkeypatch):
    """Issue 20: --diff of a drift check. A CronJob whose schedule was edited by hand: its diff holds
    the schedule, not the managedFields, generation, resourceVersion and status that moved with it;
    a created object's diff holds the definition without what the server added."""
    written = {
        "resourceVersion": "7",
        "generation": 2,
        "managedFields": [{"manager": "kubectl-patch"}],
        "uid": "0d9a",
        "creationTimestamp": "2026-12-07T02:57:47Z",
    }
    perform, _calls = fake_perform(
        {
            "a": {
                "changed": True,
                "method": "apply",
                "diff": {
                    "before": {
                        "metadata": {**written, "labels": {"a": "1"}},
                        "spec": {"schedule": "7 7 * * *"},
                        "status": {"lastScheduleTime": "x"},
                    },
                    "after": {
                        "metadata": {
                            "resourceVersion": "9",
                            "generation": 3,
                            "managedFields": [],
                            "labels": {"a": "2"},
                        },
                        "spec": {"schedule": "20 2 * * *"},
                        "status": {},
                    },
                },
            },
            "r": {"changed": True, "method": "create", "result": {**ROLE, "metadata": {"name": "r", **written}}},
        }
    )
    monkeypatch.setattr(_k8s_apply, "perform_action", perform)
    outcome = _k8s_apply.apply_all(None, _k8s_apply.load_definitions(params([CM, ROLE])), {}, want_diff=True)
    assert [(entry["before"], entry["after"]) for entry in outcome["diff"]] == [
        (
            {"metadata": {"labels": {"a": "1"}}, "spec": {"schedule": "7 7 * * *"}},
            {"metadata": {"labels": {"a": "2"}}, "spec": {"schedule": "20 2 * * *"}},
        ),
        ({}, {**ROLE, "metadata": {"name": "r"}}),
    ]


def test_created_and_deleted_objects_are_changes_whatever_their_diff(monkeypatch):
    perform, _calls = fake_perform({"a": {"changed": True, "method": "create"}})
    monkeypatch.setattr(_k8s_apply, "perform_action", perform)
    assert _k8s_apply.apply_all(None, _k8s_apply.load_definitions(params([CM])), {}, want_diff=False)["changed"]


def test_kubernetes_core_is_asked_for_the_differences_without_diff_mode():
    class Module:
        _diff = False
        check_mode = True

    seen = _k8s_apply._AlwaysDiff(Module())
    assert (seen._diff, seen.check_mode) == (True, True)


def prune_params(**extra):
    entry = {"api_version": "v1", "kind": "ConfigMap", "label_selectors": ["cti/role=a"], "namespace": None}
    return {**params([]), "prune": [entry], **extra}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"state": "absent"}, "prune goes with state=present"),
        ({"namespace": None}, "prune[0] (ConfigMap) needs a namespace, its own or namespace"),
        (
            {"prune": [{"api_version": "v1", "kind": "Secret", "label_selectors": ["", ""], "namespace": "misp"}]},
            "prune[0] (Secret) has no label selector: it would delete every Secret",
        ),
    ],
)
def test_a_prune_that_could_delete_too_much_is_refused(extra, message):
    with pytest.raises(_k8s_apply.K8sApplyError, match=re.escape(message)):
        _k8s_apply.check_prune(prune_params(**extra))
    _k8s_apply.check_prune(prune_params())
    own = {"api_version": "v1", "kind": "ConfigMap", "label_selectors": ["cti/role=a"], "namespace": "misp"}
    _k8s_apply.check_prune(prune_params(namespace=None, prune=[own]))


class FindingService:
    """Answers find() with the ConfigMaps named, recording the search."""

    def __init__(self, names, error=None):
        self.names, self.error, self.searches = names, error, []

    def find(self, kind, api_version, namespace=None, label_selectors=None):
        self.searches.append((kind, api_version, namespace, label_selectors))
        if self.error:
            raise self.error
        return {"resources": [{"metadata": {"name": name, "namespace": namespace}} for name in self.names]}


def test_prune_finds_the_labelled_objects_the_definitions_no_longer_hold():
    svc = FindingService(["a", "gone"])
    definitions = _k8s_apply.load_definitions(params([CM, ROLE]))
    stale = _k8s_apply.stale_objects(svc, definitions, prune_params())
    assert svc.searches == [("ConfigMap", "v1", "misp", ["cti/role=a"])]
    assert stale == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "namespace": "misp"}}]


def test_a_failed_search_names_what_it_looked_for():
    svc = FindingService([], error=RuntimeError("forbidden"))
    with pytest.raises(
        _k8s_apply.K8sApplyError, match=r"finding the ConfigMap objects to prune \(cti/role=a\): forbidden"
    ):
        _k8s_apply.stale_objects(svc, [], prune_params())


def test_stale_objects_are_deleted_after_the_definitions_are_applied(monkeypatch):
    seen = []

    def perform(svc, definition, object_params):
        seen.append((definition["metadata"]["name"], object_params["state"]))
        return {
            "changed": object_params["state"] == "absent",
            "method": "delete" if object_params["state"] == "absent" else "apply",
        }

    monkeypatch.setattr(_k8s_apply, "perform_action", perform)
    gone = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "namespace": "misp"}}
    outcome = _k8s_apply.apply_all(None, _k8s_apply.load_definitions(params([CM])), {"state": "present"}, True, [gone])
    assert seen == [("a", "present"), ("gone", "absent")]
    assert [(o["name"], o["changed"], o["method"]) for o in outcome["objects"]] == [
        ("a", False, "apply"),
        ("gone", True, "delete"),
    ]
    assert outcome["diff"][0]["after_header"] == "ConfigMap misp/gone (deleted)"


def test_an_entry_searches_its_own_namespace_when_it_names_one():
    svc = FindingService(["a"])
    own = {"api_version": "v1", "kind": "ConfigMap", "label_selectors": ["cti/role=a"], "namespace": "other"}
    stale = _k8s_apply.stale_objects(svc, _k8s_apply.load_definitions(params([CM])), prune_params(prune=[own]))
    assert svc.searches[0][2] == "other"
    # misp/a is given, other/a is not.
    assert stale == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "other"}}]


def deployment(generation=2, wanted=1, **status):
    return {"metadata": {"generation": generation}, "spec": {"replicas": wanted}, "status": status}


@pytest.mark.parametrize(
    ("live", "done"),
    [
        (deployment(observedGeneration=2, replicas=1, updatedReplicas=1, availableReplicas=1), True),
        # What the controller writes as Recreate starts: new generation, the old pod still counted.
        (deployment(observedGeneration=2, replicas=1, updatedReplicas=0, availableReplicas=1), False),
        (deployment(observedGeneration=1, replicas=1, updatedReplicas=1, availableReplicas=1), False),
        (deployment(observedGeneration=2, replicas=1, updatedReplicas=1, availableReplicas=0), False),
        (deployment(wanted=3, observedGeneration=2, replicas=2, updatedReplicas=2, availableReplicas=2), False),
    ],
)
def test_a_deployment_is_rolled_out_when_every_replica_runs_the_current_template(live, done):
    assert _k8s_apply.rolled_out(live) is done


def test_a_waited_deployment_is_read_until_rolled_out(monkeypatch):
    reads = iter(
        [
            deployment(observedGeneration=2, replicas=1, updatedReplicas=0, availableReplicas=1),
            deployment(observedGeneration=2, replicas=1, updatedReplicas=1, availableReplicas=1),
        ]
    )

    class Live:
        def __init__(self, body):
            self.body = body

        def to_dict(self):
            return self.body

    class Service:
        module = type("Module", (), {"check_mode": False})()
        client = type("Client", (), {"get": staticmethod(lambda resource, **where: Live(next(reads)))})()

        def find_resource(self, kind, api_version, fail=False):
            return (kind, api_version)

    monkeypatch.setattr(_k8s_apply, "perform_action", lambda svc, definition, p: {"changed": False, "method": "apply"})
    monkeypatch.setattr(_k8s_apply.time, "sleep", lambda seconds: None)
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "misp"}}
    waited = {"state": "present", "wait": True, "wait_timeout": 60, "wait_sleep": 1}
    _k8s_apply.apply_all(Service(), [web], waited, want_diff=False)
    assert next(reads, None) is None


# RFC 7386, Appendix A: target, patch, result.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_a_merge_patch_applies_as_rfc_7386_says(target, patch, result):
    assert _k8s_apply.merge_patched(target, patch) == result


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def last_applied(definition):
    """The annotation as kubernetes.core's apply writes it."""
    return {LAST_APPLIED: json.dumps(definition, separators=(",", ":"), sort_keys=True)}


def live_config_map(data, applied_data):
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "misp"}}
    applied["data"] = applied_data
    metadata = dict(applied["metadata"], resourceVersion="7", annotations=last_applied(applied))
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


class Existing:
    def __init__(self, body):
        self.body = body

    def to_dict(self):
        return json.loads(json.dumps(self.body))


def one_read_service(monkeypatch, check_mode=False, server_dry_run=True, **params):
    """A _OneReadService whose fallback, kubernetes.core's own apply, records its calls."""
    calls = []
    monkeypatch.setattr(
        _k8s_apply.K8sService, "apply", lambda self, resource, definition, existing=None: calls.append(definition)
    )
    module = type("Module", (), {"params": params, "check_mode": check_mode})()
    client = type("Client", (), {"dry_run": server_dry_run})()
    return _k8s_apply._OneReadService(client, module), calls


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_apply_that_would_change_nothing_returns_the_object_read(monkeypatch, check_mode):
    svc, calls = one_read_service(monkeypatch, check_mode=check_mode)
    live = live_config_map({"k": "v"}, {"k": "v"})
    definition = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "misp"}}
    assert svc.apply("configmaps", dict(definition, data={"k": "v"}), Existing(live)) == (live, [])
    assert calls == []


@pytest.mark.parametrize(
    ("live", "data", "options"),
    [
        # A changed value, a key given up since the last apply, one added: the patch changes them.
        (live_config_map({"k": "v"}, {"k": "v"}), {"k": "w"}, {}),
        (live_config_map({"k": "v", "old": "x"}, {"k": "v", "old": "x"}), {"k": "v"}, {}),
        (live_config_map({"k": "v"}, {"k": "v"}), {"k": "v", "new": "y"}, {}),
        # Someone else changed a value this apply sets.
        (live_config_map({"k": "changed"}, {"k": "v"}), {"k": "v"}, {}),
        # Not applied by this client before: the whole definition goes with the annotation.
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}, {"k": "v"}, {}),
        # Server-side apply, and a server without dry run in check mode, are kubernetes.core's.
        (live_config_map({"k": "v"}, {"k": "v"}), {"k": "v"}, {"server_side_apply": {"field_manager": "x"}}),
        (live_config_map({"k": "v"}, {"k": "v"}), {"k": "v"}, {"check_mode": True, "server_dry_run": False}),
    ],
)
def test_any_other_apply_is_kubernetes_cores(monkeypatch, live, data, options):
    svc, calls = one_read_service(monkeypatch, **options)
    definition = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "misp"}, "data": data}
    svc.apply("configmaps", definition, Existing(live))
    assert calls == [definition]


def test_a_missing_object_and_an_unmergeable_list_are_kubernetes_cores(monkeypatch):
    svc, calls = one_read_service(monkeypatch)
    definition = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "misp"}}
    svc.apply("configmaps", definition, None)
    # A container without its merge key (name): kubernetes.core's apply_patch refuses it.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}]}}
    applied = dict(pod, spec={"containers": [{"name": "c", "image": "x"}]})
    live = dict(applied, metadata={"name": "p", "annotations": last_applied(applied)})
    svc.apply("pods", pod, Existing(live))
    assert calls == [definition, pod]


def test_absent_objects_are_read_like_definitions_and_named_as_absent():
    text = "kind: ConfigMap\napiVersion: v1\nmetadata: {name: old}"
    absent = _k8s_apply.load_definitions(params([], absent=[text]), "absent")
    assert absent == [{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "old", "namespace": "misp"}}]
    with pytest.raises(_k8s_apply.K8sApplyError, match=re.escape("absent[0] is a int, not an object or YAML text")):
        _k8s_apply.load_definitions(params([], absent=[3]), "absent")
    with pytest.raises(_k8s_apply.K8sApplyError, match=re.escape("ConfigMap misp/<no name> has no metadata.name")):
        _k8s_apply.load_definitions(params([], absent=[{"apiVersion": "v1", "kind": "ConfigMap"}]), "absent")


@pytest.mark.parametrize(
    ("given", "absent", "state", "message"),
    [
        ([], [CM], "absent", "absent goes with state=present"),
        ([CM], [{**CM, "data": {}}], "present", "ConfigMap misp/a is both in definitions and in absent"),
    ],
)
def test_an_absent_that_contradicts_the_task_is_refused(given, absent, state, message):
    task = params(given, absent=absent, state=state)
    definitions = _k8s_apply.load_definitions(task)
    with pytest.raises(_k8s_apply.K8sApplyError, match=re.escape(message)):
        _k8s_apply.check_absent(definitions, _k8s_apply.load_definitions(task, "absent"), task)
    # Another object, or another namespace, is no contradiction.
    other = {**CM, "metadata": {"name": "a", "namespace": "other"}}
    _k8s_apply.check_absent(definitions, _k8s_apply.load_definitions(params([], absent=[other]), "absent"), params([]))
