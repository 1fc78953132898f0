"""Smoke tests of the simulated cluster: the real control plane behaves like a cluster should."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.rig import rig_binary

TARGET = Path(__file__).parent / "targets" / "rig_cluster"

RESTRICTED_CONTAINER = {
    "name": "app",
    "image": "registry.example.invalid/app:1",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 33,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def namespace(api):
    core = client.CoreV1Api(api)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [RESTRICTED_CONTAINER]}},
        },
    }


def test_nodes_look_like_rke2(api):
    # The rig's own nodes; scenarios may add nodes named after their podman hosts.
    nodes = client.CoreV1Api(api).list_node(label_selector="node.kubernetes.io/instance-type=rke2").items
    servers = [n for n in nodes if n.metadata.labels.get("node-role.kubernetes.io/control-plane") == "true"]
    agents = [n for n in nodes if n not in servers]
    assert len(servers) == 3
    assert len(agents) == 3
    for node in servers + agents:
        assert node.metadata.labels["node-role.kubernetes.io/etcd" if node in servers else "kubernetes.io/os"]
        assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == ["127.0.0.1"]
        assert node.status.node_info.kubelet_version.endswith("+rke2r1")
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True"


def test_deployment_gets_ready_pods_and_rolls_out(api, namespace):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("web", 3))

    def rolled_out():
        d = apps.read_namespaced_deployment("web", namespace)
        s = d.status
        return (
            s.observed_generation == d.metadata.generation
            and s.updated_replicas == 3
            and s.ready_replicas == 3
            and (s.replicas or 0) == 3
        )

    wait_until(rolled_out, 60, "3 ready replicas")
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.spec.node_name for p in pods)

    patch = {"spec": {"template": {"metadata": {"annotations": {"smoke/rev": "2"}}}}}
    apps.patch_namespaced_deployment("web", namespace, patch)
    wait_until(rolled_out, 90, "rollout of the new template")
    replica_sets = apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
    assert len(replica_sets) == 2
    current = [rs for rs in replica_sets if (rs.spec.replicas or 0) == 3]
    assert len(current) == 1
    assert current[0].spec.template.metadata.annotations == {"smoke/rev": "2"}


def test_cronjob_produces_a_job_on_schedule(api, namespace):
    batch = client.BatchV1Api(api)
    batch.create_namespaced_cron_job(
        namespace,
        {
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "* * * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        "template": {"spec": {"restartPolicy": "Never", "containers": [RESTRICTED_CONTAINER]}},
                    }
                },
            },
        },
    )
    jobs = wait_until(
        lambda: batch.list_namespaced_job(namespace).items, 90, "a Job created by the CronJob", interval=2
    )
    assert jobs[0].metadata.owner_references[0].kind == "CronJob"
    # kwok's pod-complete stage finishes the Job's pod, so the Job succeeds.
    wait_until(
        lambda: (batch.read_namespaced_job(jobs[0].metadata.name, namespace).status.succeeded or 0) >= 1,
        60,
        "the Job to succeed",
    )


def test_restricted_namespace_refuses_privileged_pod_admits_compliant(api, namespace):
    core = client.CoreV1Api(api)
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    privileged = {
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "app", "image": "x.invalid/app:1", "securityContext": {"privileged": True}}]},
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, privileged)
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in json.loads(refused.value.body)["message"]

    compliant = {"metadata": {"name": "compliant"}, "spec": {"containers": [copy.deepcopy(RESTRICTED_CONTAINER)]}}
    core.create_namespaced_pod(namespace, compliant)

    def ready():
        pod = core.read_namespaced_pod("compliant", namespace)
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    wait_until(ready, 60, "the compliant pod to be Ready")


def test_helm_installs_upgrades_uninstalls_through_kubernetes_core(api, namespace, k8s_cluster, run_playbook):
    core = client.CoreV1Api(api)
    base = {
        "smoke_helm_binary": str(rig_binary("helm")),
        "smoke_kubeconfig": k8s_cluster["kubeconfig"],
        "smoke_namespace": namespace,
    }
    result = run_playbook(TARGET / "helm.yml", base)
    assert result.rc == 0, result.stdout
    assert result.changed == 1
    assert core.read_namespaced_config_map("smoke-smoke", namespace).data == {"message": "hello"}

    result = run_playbook(TARGET / "helm.yml", base)
    assert result.rc == 0 and result.changed == 0, result.stdout

    result = run_playbook(TARGET / "helm.yml", {**base, "smoke_message": "upgraded"})
    assert result.rc == 0 and result.changed == 1, result.stdout
    assert core.read_namespaced_config_map("smoke-smoke", namespace).data == {"message": "upgraded"}
    releases = core.list_namespaced_secret(namespace, label_selector="owner=helm,name=smoke").items
    assert sorted(s.metadata.labels["version"] for s in releases) == ["1", "2"]

    result = run_playbook(TARGET / "helm.yml", {**base, "smoke_release_state": "absent"})
    assert result.rc == 0 and result.changed == 1, result.stdout
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("smoke-smoke", namespace)
    assert gone.value.status == 404


def longhorn_volume(name: str, **spec) -> dict:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Volume",
        "metadata": {"name": name},
        "spec": {"size": "1073741824", "numberOfReplicas": 3, "dataLocality": "disabled", **spec},
    }


def test_stand_in_longhorn_crd_accepts_valid_rejects_invalid_volume(api, namespace):
    custom = client.CustomObjectsApi(api)
    args = ("longhorn.io", "v1beta2", namespace, "volumes")
    custom.create_namespaced_custom_object(*args, longhorn_volume("good"))
    assert custom.get_namespaced_custom_object(*args, "good")["spec"]["numberOfReplicas"] == 3
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(*args, longhorn_volume("bad", dataLocality="everywhere"))
    assert rejected.value.status == 422
    assert "dataLocality" in rejected.value.body
