"""k8s_apply against the rig's kube-apiserver: one run applies a list, per-object diff and
errors, check mode, deletion, and the same field ownership as kubernetes.core.k8s apply."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from kubernetes import client
from kubernetes.client import rest

from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_apply import (
    K8S_APPLY_ARGSPEC,
    ControllerRun,
    apply_objects,
)
from ansible_collections.cti.misp_platform.plugins.module_utils._k8s_args import k8s_argspec
from tests.integration._helpers import temporary_namespace

pytestmark = pytest.mark.rig

PLAYBOOK = Path(__file__).parent / "targets" / "k8s_apply" / "apply.yml"


@pytest.fixture
def ns(api):
    yield from temporary_namespace(api, "ka-test")


def objects(ns: str, greeting: str = "hello") -> list:
    """A ServiceAccount and a ConfigMap as dicts, a Deployment as YAML text (as a template
    lookup gives it); the Deployment runs on a kwok node, which makes it ready."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"greeting": greeting}},
        "---\n" + json.dumps(deployment) + "\n---\n",
    ]


@pytest.fixture
def apply(k8s_cluster, run_playbook, tmp_path):
    env = {"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]}

    def run(args, check=False, core=False, diff=False, extra=None):
        run_env = {**env, "ANSIBLE_DIFF_ALWAYS": "1"} if diff else env
        extra = {"ka_args": args, "ka_result_path": str(tmp_path / "result.json"), "ka_core": core, **(extra or {})}
        played = run_playbook(PLAYBOOK, extra, check=check, env=run_env)
        result = json.loads((tmp_path / "result.json").read_text())
        return played, result["k8s_apply"], result["core"]

    return run


def test_applies_the_list_in_one_run_then_is_idempotent_like_kubernetes_core(apply, api, ns):
    played, result, _core = apply({"definitions": objects(ns), "namespace": ns, "wait": True, "wait_timeout": 120})
    assert played.rc == 0, played.stdout[-3000:]
    assert result["changed"] is True
    assert [(o["kind"], o["namespace"], o["name"], o["changed"]) for o in result["objects"]] == [
        ("ServiceAccount", ns, "web", True),
        ("ConfigMap", ns, "web", True),
        ("Deployment", ns, "web", True),
    ]
    # wait: the Deployment was ready when the module returned.
    assert client.AppsV1Api(api).read_namespaced_deployment("web", ns).status.ready_replicas == 1
    assert client.CoreV1Api(api).read_namespaced_config_map("web", ns).data == {"greeting": "hello"}

    played, result, core = apply({"definitions": objects(ns), "namespace": ns}, core=True)
    assert played.rc == 0, played.stdout[-3000:]
    assert result["changed"] is False
    assert [o["changed"] for o in result["objects"]] == [False, False, False]
    # kubernetes.core.k8s apply over what k8s_apply applied changes nothing: same ownership.
    assert [r["changed"] for r in core["results"]] == [False, False, False]


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_an_unchanged_object_is_read_once_and_not_written(k8s_cluster, ns, monkeypatch, check_mode):
    """A re-run's requests: one read per object (kubernetes.core's apply reads each three times)."""
    validated = ArgumentSpecValidator(k8s_argspec(K8S_APPLY_ARGSPEC)).validate(
        {"definitions": objects(ns), "namespace": ns, "kubeconfig": k8s_cluster["kubeconfig"]}
    )
    assert not validated.error_messages

    warnings = []

    def run(check):
        return apply_objects(
            ControllerRun(dict(validated.validated_parameters), check, warnings.append), want_diff=True
        )

    assert run(False)["changed"] is True
    requests = []
    send = rest.RESTClientObject.request

    def counted(self, method, url, *args, **kwargs):
        requests.append((method, urlsplit(url).path))
        return send(self, method, url, *args, **kwargs)

    monkeypatch.setattr(rest.RESTClientObject, "request", counted)
    outcome = run(check_mode)
    assert outcome["changed"] is False
    assert outcome["diff"] == []
    paths = [
        f"/api/v1/namespaces/{ns}/serviceaccounts/web",
        f"/api/v1/namespaces/{ns}/configmaps/web",
        f"/apis/apps/v1/namespaces/{ns}/deployments/web",
    ]
    # Discovery (/api, /apis) is not the objects'.
    assert [request for request in requests if request[1] in paths] == [("GET", path) for path in paths]
    assert warnings == []


def test_check_mode_changes_nothing_and_diff_names_each_changed_object(apply, api, ns):
    assert apply({"definitions": objects(ns), "namespace": ns})[0].rc == 0
    played, result, _core = apply({"definitions": objects(ns, "bonjour"), "namespace": ns}, check=True, diff=True)
    assert played.rc == 0, played.stdout[-3000:]
    assert [o["changed"] for o in result["objects"]] == [False, True, False]
    assert client.CoreV1Api(api).read_namespaced_config_map("web", ns).data == {"greeting": "hello"}
    assert f"--- before: ConfigMap {ns}/web" in played.stdout
    assert "+        greeting: bonjour" in played.stdout
    assert f"Deployment {ns}/web" not in played.stdout


def test_an_object_without_a_name_fails_before_anything_is_applied(apply, api, ns):
    broken = objects(ns)
    broken[1] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {}}
    played, result, _core = apply({"definitions": broken, "namespace": ns})
    assert played.rc != 0
    assert result["msg"] == f"ConfigMap {ns}/<no name> has no metadata.name"
    assert client.CoreV1Api(api).list_namespaced_service_account(ns, field_selector="metadata.name=web").items == []


def test_a_refused_object_is_named_and_those_before_it_listed(apply, ns):
    refused = objects(ns)
    refused[1] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Name"}, "data": {}}
    played, result, _core = apply({"definitions": refused, "namespace": ns})
    assert played.rc != 0
    assert result["msg"].startswith(f"ConfigMap {ns}/Not_A_Name: ")
    assert "Invalid value" in result["msg"]
    assert [(o["kind"], o["name"]) for o in result["objects"]] == [("ServiceAccount", "web")]


def test_state_absent_deletes_what_exists(apply, api, ns):
    assert apply({"definitions": objects(ns), "namespace": ns})[0].rc == 0
    played, result, _core = apply({"definitions": objects(ns)[:2], "namespace": ns, "state": "absent", "wait": True})
    assert played.rc == 0, played.stdout[-3000:]
    assert [(o["name"], o["changed"], o["method"]) for o in result["objects"]] == [
        ("web", True, "delete"),
        ("web", True, "delete"),
    ]
    assert client.CoreV1Api(api).list_namespaced_config_map(ns, field_selector="metadata.name=web").items == []
    again = apply({"definitions": objects(ns)[:2], "namespace": ns, "state": "absent"})[1]
    assert again["changed"] is False


def test_on_a_local_connection_it_applies_in_the_controller_with_the_plays_environment(
    k8s_cluster, run_playbook, api, ns, tmp_path
):
    # No module process: the Python a module would start does not exist. The kubeconfig comes
    # only from the play's environment keyword, as a module process would get it.
    extra = {
        "ka_args": {"definitions": objects(ns)[:2], "namespace": ns},
        "ka_result_path": str(tmp_path / "result.json"),
        "ka_environment": {"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]},
        "ka_interpreter": "/nonexistent/python3",
    }
    played = run_playbook(PLAYBOOK, extra)
    assert played.rc == 0, played.stdout[-3000:]
    assert json.loads((tmp_path / "result.json").read_text())["k8s_apply"]["changed"] is True
    assert client.CoreV1Api(api).read_namespaced_config_map("web", ns).data == {"greeting": "hello"}


def test_templates_render_with_the_plays_variables_next_to_the_playbook(apply, api, ns):
    # Found as ansible.builtin.template finds its src (templates/ beside the playbook here).
    args = {"template": ["greeting-configmaps.yaml.j2"], "namespace": ns}
    extra = {"ka_names": ["one", "two"], "ka_greeting": "a: colon"}
    played, result, _core = apply(args, extra=extra)
    assert played.rc == 0, played.stdout[-3000:]
    assert [(o["name"], o["changed"]) for o in result["objects"]] == [("one", True), ("two", True)]
    core = client.CoreV1Api(api)
    assert [core.read_namespaced_config_map(name, ns).data for name in ("one", "two")] == [{"greeting": "a: colon"}] * 2
    played, result, _core = apply(args, extra=extra)
    assert (played.rc, result["changed"]) == (0, False), played.stdout[-3000:]
    # A template that does not exist fails naming it, and nothing is applied.
    played, result, _core = apply(
        {"template": ["greeting-configmaps.yaml.j2", "absent.yaml.j2"], "namespace": ns},
        extra={**extra, "ka_names": ["three"]},
    )
    assert played.rc != 0 and "absent.yaml.j2" in result["msg"], result
    assert config_map_names(api, ns) == {"one", "two"}


def config_map_names(api, ns: str) -> set:
    """The namespace's ConfigMaps but the CA bundle the cluster puts in every namespace."""
    return {c.metadata.name for c in client.CoreV1Api(api).list_namespaced_config_map(ns).items} - {"kube-root-ca.crt"}


def labelled(name: str, role: str | None) -> dict:
    labels = {"cti-test/role": role} if role else {}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {}}


def test_prune_deletes_only_the_labelled_objects_no_longer_given(apply, api, ns):
    core = client.CoreV1Api(api)
    given = [labelled("kept", "a"), labelled("dropped", "a"), labelled("other-role", "b"), labelled("unlabelled", None)]
    assert apply({"definitions": given, "namespace": ns})[0].rc == 0
    prune = [{"api_version": "v1", "kind": "ConfigMap", "label_selectors": ["cti-test/role=a"]}]

    played, result, _core = apply({"definitions": given[:1], "namespace": ns, "prune": prune}, check=True, diff=True)
    assert played.rc == 0, played.stdout[-3000:]
    assert [(o["name"], o["changed"], o["method"]) for o in result["objects"]] == [
        ("kept", False, "apply"),
        ("dropped", True, "delete"),
    ]
    assert f"+++ after: ConfigMap {ns}/dropped (deleted)" in played.stdout
    assert core.read_namespaced_config_map("dropped", ns)

    played, result, _core = apply({"definitions": given[:1], "namespace": ns, "prune": prune})
    assert played.rc == 0, played.stdout[-3000:]
    assert result["changed"] is True
    names = config_map_names(api, ns)
    assert {"kept", "other-role", "unlabelled"} <= names and "dropped" not in names

    again = apply({"definitions": given[:1], "namespace": ns, "prune": prune})[1]
    assert again["changed"] is False


def test_absent_deletes_the_objects_a_task_no_longer_renders(apply, api, ns):
    given = [labelled("kept", None), labelled("turned-off", None)]
    assert apply({"definitions": given, "namespace": ns})[0].rc == 0
    # As a role passes them: only the name, the namespace from the task; one that never existed.
    absent = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "turned-off"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "never-made"}},
    ]
    args = {"definitions": given[:1], "namespace": ns, "absent": absent}

    played, result, _core = apply(args, check=True, diff=True)
    assert played.rc == 0, played.stdout[-3000:]
    assert [(o["name"], o["changed"]) for o in result["objects"]] == [
        ("kept", False),
        ("turned-off", True),
        ("never-made", False),
    ]
    assert f"+++ after: ConfigMap {ns}/turned-off (deleted)" in played.stdout
    assert config_map_names(api, ns) == {"kept", "turned-off"}

    played, result, _core = apply(args)
    assert played.rc == 0, played.stdout[-3000:]
    assert result["changed"] is True
    assert config_map_names(api, ns) == {"kept"}
    assert apply(args)[1]["changed"] is False

    # Both applied and deleted: refused before any change.
    played, result, _core = apply({"definitions": given, "namespace": ns, "absent": absent[:1]})
    assert played.rc != 0
    assert f"ConfigMap {ns}/turned-off is both in definitions and in absent" in result["msg"]
    assert config_map_names(api, ns) == {"kept"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"prune": [{"api_version": "v1", "kind": "ConfigMap", "label_selectors": [""]}]},
            "prune[0] (ConfigMap) has no label selector",
        ),
        (
            {"prune": [{"api_version": "v1", "kind": "ConfigMap", "label_selectors": ["a=b"]}], "namespace": None},
            "prune[0] (ConfigMap) needs a namespace, its own or namespace",
        ),
    ],
)
def test_a_prune_that_could_delete_too_much_is_refused_before_any_change(apply, api, ns, args, message):
    played, result, _core = apply({"definitions": [labelled("new", "a")], "namespace": ns, **args})
    assert played.rc != 0
    assert message in result["msg"]
    assert config_map_names(api, ns) == set()


def test_apply_false_keeps_a_secrets_data_out_of_the_last_applied_annotation(apply, api, ns):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "c2VjcmV0"}}
    played, result, _core = apply({"definitions": [secret], "namespace": ns, "apply": False})
    assert played.rc == 0, played.stdout[-3000:]
    assert [(o["name"], o["changed"]) for o in result["objects"]] == [("s", True)]
    stored = client.CoreV1Api(api).read_namespaced_secret("s", ns)
    assert stored.data == {"password": "c2VjcmV0"}
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (stored.metadata.annotations or {})
    assert apply({"definitions": [secret], "namespace": ns, "apply": False})[1]["changed"] is False
    changed = {**secret, "data": {"password": "b3RoZXI="}}
    assert apply({"definitions": [changed], "namespace": ns, "apply": False})[1]["changed"] is True
    assert client.CoreV1Api(api).read_namespaced_secret("s", ns).data == {"password": "b3RoZXI="}
