"""k8s_info against the rig's kube-apiserver: what kubernetes.core.k8s_info reads, read in the
controller (a module process could not even start: its interpreter does not exist)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration._helpers import temporary_namespace

pytestmark = pytest.mark.rig

PLAYBOOK = Path(__file__).parent / "targets" / "k8s_info" / "read.yml"
NO_PYTHON = "/nonexistent/python3"


@pytest.fixture(scope="module")
def ns(api):
    for name in temporary_namespace(api, "ki-test"):
        core = client.CoreV1Api(api)
        for cm, tier in (("web", "front"), ("db", "back"), ("cache", "back")):
            core.create_namespaced_config_map(
                name, {"metadata": {"name": cm, "labels": {"tier": tier}}, "data": {"role": cm}}
            )
        labels = {"app": "web"}
        pod = {"containers": [{"name": "web", "image": "web:1"}]}
        client.AppsV1Api(api).create_namespaced_deployment(
            name,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                },
            },
        )
        yield name


@pytest.fixture
def read(k8s_cluster, run_playbook, tmp_path):
    def run(args):
        extra = {"ki_args": args, "ki_result_path": str(tmp_path / "result.json"), "ki_interpreter": NO_PYTHON}
        played = run_playbook(PLAYBOOK, extra, env={"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]})
        result = json.loads((tmp_path / "result.json").read_text())
        return played, result["k8s_info"], result["core"]

    return run


def names(result: dict) -> list[str]:
    return sorted(r["metadata"]["name"] for r in result["resources"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"kind": "ConfigMap", "name": "web"}, ["web"]),
        ({"kind": "ConfigMap", "label_selectors": ["tier=back"]}, ["cache", "db"]),
        ({"kind": "ConfigMap", "name": "absent"}, []),
        ({"kind": "Deployment", "api_version": "apps/v1", "hidden_fields": ["metadata.managedFields"]}, ["web"]),
    ],
)
def test_reads_in_the_controller_what_kubernetes_core_reads(read, ns, args, expected):
    played, ours, core = read({**args, "namespace": ns})
    assert played.rc == 0, played.stdout[-3000:]
    assert names(ours) == expected
    assert (ours["changed"], ours["api_found"]) == (False, True)
    if args["kind"] == "ConfigMap":
        assert ours["resources"] == core["resources"]
    else:
        # A Deployment's status moves on between the two reads; its definition does not.
        assert [r["spec"] for r in ours["resources"]] == [r["spec"] for r in core["resources"]]
    hidden = "managedFields" not in ours["resources"][0]["metadata"] if ours["resources"] else True
    assert hidden == ("hidden_fields" in args or not ours["resources"])


def test_an_unknown_kind_is_api_found_false_as_with_kubernetes_core(read, ns):
    played, ours, core = read({"kind": "Gizmo", "api_version": "example.invalid/v1", "namespace": ns})
    assert played.rc == 0, played.stdout[-3000:]
    assert (ours["api_found"], ours["resources"]) == (core["api_found"], core["resources"]) == (False, [])


def test_waits_for_a_condition_as_kubernetes_core_does(read, ns):
    args = {"kind": "Deployment", "api_version": "apps/v1", "name": "web", "namespace": ns, "wait": True}
    played, ours, _core = read({**args, "wait_condition": {"type": "Available"}, "wait_timeout": 60})
    assert played.rc == 0, played.stdout[-3000:]
    (deployment,) = ours["resources"]
    conditions = {c["type"]: c["status"] for c in deployment["status"]["conditions"]}
    assert conditions["Available"] == "True"


def test_a_missing_kind_fails_naming_it(read, ns):
    played, ours, _core = read({"namespace": ns})
    assert played.rc != 0
    assert ours["failed"] is True
    assert "missing required arguments: kind" in ours["msg"]
