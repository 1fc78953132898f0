"""Unit tests of k8s_apply's action plugin: in the controller on a local connection, the module elsewhere."""

from __future__ import annotations

import os
from unittest.mock import MagicMock

import pytest
import yaml
from ansible.errors import AnsibleActionFail, AnsibleUndefinedVariable
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.cti.misp_platform.plugins.action import k8s_apply as action
from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_apply import K8sApplyError
from tests.action_plugin import action_plugin

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}}


def plugin(transport="local", args=None, environment=None, check_mode=False, diff=False):
    args = args if args is not None else {"definitions": [CM], "namespace": "misp"}
    return action_plugin(
        action.ActionModule, args, transport=transport, environment=environment, check_mode=check_mode, diff=diff
    )


@pytest.fixture
def applied(monkeypatch):
    """Records what apply_objects got, and answers like an unchanged object."""
    calls = []

    def apply_objects(run, want_diff):
        calls.append((run, want_diff, dict(os.environ)))
        return {"changed": False, "objects": [{"name": "a", "changed": False}]}

    monkeypatch.setattr(action, "apply_objects", apply_objects)
    return calls


def test_a_local_connection_applies_in_this_process_with_the_tasks_environment(applied, monkeypatch):
    # The plugin sets the worker's environment; this test's process gets it back afterwards.
    monkeypatch.setattr(os, "environ", {"PATH": "/usr/bin"})
    environment = [{"K8S_AUTH_KUBECONFIG": "/play/kubeconfig"}, {"K8S_AUTH_CONTEXT": "rig"}]
    result = plugin(environment=environment, check_mode=True, diff=True).run(task_vars={})
    assert result["objects"] == [{"name": "a", "changed": False}]
    ((run, want_diff, seen_environment),) = applied
    assert (run.check_mode, run._diff, want_diff) == (True, True, True)
    assert run.params["definitions"] == [CM]
    # The argument spec's defaults are filled in, as AnsibleModule would.
    assert (run.params["state"], run.params["apply"], run.params["wait_timeout"], run.params["prune"]) == (
        "present",
        True,
        120,
        [],
    )
    assert (seen_environment["K8S_AUTH_KUBECONFIG"], seen_environment["K8S_AUTH_CONTEXT"]) == (
        "/play/kubeconfig",
        "rig",
    )


def test_another_connection_runs_the_module_on_that_host(applied):
    remote = plugin(transport="ssh")
    remote._execute_module = MagicMock(return_value={"changed": False, "objects": []})
    remote._remove_tmp_path = MagicMock()
    assert remote.run(task_vars={"x": 1}) == {"changed": False, "objects": []}
    remote._execute_module.assert_called_once_with(
        module_name="cti.misp_platform.k8s_apply",
        module_args={"definitions": [CM], "namespace": "misp"},
        task_vars={"x": 1},
    )
    assert applied == []


def test_without_the_kubernetes_library_the_module_reports_it(applied, monkeypatch):
    monkeypatch.setattr(action, "HAS_KUBERNETES", False)
    local = plugin()
    local._execute_module = MagicMock(
        return_value={"failed": True, "msg": "Failed to import the required Python library (kubernetes)"}
    )
    local._remove_tmp_path = MagicMock()
    assert local.run(task_vars={})["failed"] is True
    assert applied == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "one of the following is required: definitions, template"),
        ({"definitions": [CM], "template": ["cm.yaml.j2"]}, "parameters are mutually exclusive: definitions|template"),
        ({"definitions": [CM], "state": "patched"}, "value of state must be one of: present, absent"),
        (
            {"definitions": [CM], "prune": [{"kind": "ConfigMap"}]},
            "missing required arguments: api_version, label_selectors",
        ),
    ],
)
def test_bad_arguments_fail_naming_them_before_anything_is_applied(applied, args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        plugin(args=args).run(task_vars={})
    assert applied == []


def test_a_failed_object_fails_the_task_naming_it_with_those_handled_before(monkeypatch):
    def fail(run, want_diff):
        raise K8sApplyError("ConfigMap misp/b: refused", [{"name": "a"}])

    monkeypatch.setattr(action, "apply_objects", fail)
    result = plugin().run(task_vars={})
    assert (result["failed"], result["msg"], result["objects"]) == (True, "ConfigMap misp/b: refused", [{"name": "a"}])


class NoCopy:
    """A variable that refuses to be copied: rendering must only read the task's variables."""

    def __deepcopy__(self, memo):
        raise AssertionError("the task's variables were deep-copied")


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "cm.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ cm_name }}}\ndata: {key: {{ cm_value | to_json }}}\n"
    )
    (tmp_path / "two.yaml.j2").write_text("{% for n in [1, 2] %}\n---\nkind: Secret\nname: s{{ n }}\n{% endfor %}\n")
    return tmp_path


def template_plugin(templates, transport="local", names=("cm.yaml.j2", "two.yaml.j2")):
    loader = DataLoader()
    args = {"template": list(names), "namespace": "misp"}
    local = action_plugin(action.ActionModule, args, transport=transport, loader=loader, templar=Templar(loader=loader))
    # As ansible.builtin.template finds its src: here, in the test's templates directory.
    local._find_needle = lambda dirname, needle: str(templates / needle)
    return local


TASK_VARS = {"cm_name": "rendered", "cm_value": "a: b", "unused": NoCopy()}


def test_templates_are_rendered_with_the_tasks_variables_into_definitions(applied, templates):
    result = template_plugin(templates).run(task_vars=TASK_VARS)
    assert result["objects"] == [{"name": "a", "changed": False}]
    ((run, _want_diff, _environment),) = applied
    assert run.params["template"] is None
    first, second = run.params["definitions"]
    assert yaml.safe_load(first) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "rendered"},
        "data": {"key": "a: b"},
    }
    assert [d for d in yaml.safe_load_all(second) if d] == [
        {"kind": "Secret", "name": "s1"},
        {"kind": "Secret", "name": "s2"},
    ]


def test_another_connection_gets_the_rendered_templates_as_definitions(applied, templates):
    remote = template_plugin(templates, transport="ssh", names=["cm.yaml.j2"])
    remote._execute_module = MagicMock(return_value={"changed": False, "objects": []})
    remote._remove_tmp_path = MagicMock()
    remote.run(task_vars=TASK_VARS)
    module_args = remote._execute_module.call_args.kwargs["module_args"]
    assert sorted(module_args) == ["definitions", "namespace"]
    assert yaml.safe_load(module_args["definitions"][0])["metadata"] == {"name": "rendered"}
    assert applied == []


def test_an_undefined_variable_in_a_template_fails_naming_it_before_anything_is_applied(applied, templates):
    with pytest.raises(AnsibleUndefinedVariable, match="cm_name"):
        template_plugin(templates).run(task_vars={"cm_value": "x"})
    assert applied == []


def test_a_variable_that_every_template_reads_is_templated_once(applied, tmp_path):
    calls = []

    def shared():
        calls.append(1)
        return "shared"

    for name in ("a.yaml.j2", "b.yaml.j2"):
        (tmp_path / name).write_text(
            f"kind: ConfigMap\nmetadata: {{name: {name[0]}, labels: {{l: {{{{ labels }}}}}}}}\n"
        )
    task_vars = {"count": shared, "labels": trust_as_template("{{ count() }}")}
    template_plugin(tmp_path, names=["a.yaml.j2", "b.yaml.j2"]).run(task_vars=task_vars)
    ((run, _want_diff, _environment),) = applied
    assert [yaml.safe_load(d)["metadata"] for d in run.params["definitions"]] == [
        {"name": "a", "labels": {"l": "shared"}},
        {"name": "b", "labels": {"l": "shared"}},
    ]
    assert len(calls) == 1


def test_a_template_in_a_subdirectory_or_rendering_nothing_or_a_number_is_one_text_each(applied, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "empty.yaml.j2").write_text("{% if false %}kind: ConfigMap{% endif %}")
    (tmp_path / "number.yaml.j2").write_text("{{ 1 + 2 }}")
    for names in (["sub/empty.yaml.j2"], ["number.yaml.j2"], ["number.yaml.j2", "sub/empty.yaml.j2"]):
        template_plugin(tmp_path, names=names).run(task_vars={})
    assert [run.params["definitions"] for run, _want_diff, _environment in applied] == [[""], ["3"], ["3", ""]]
