"""The rig's real node (tests/rig/node.sh): containers run, Services and DNS route, NetworkPolicies
enforce, images come by digest from the loopback registry, an HPA acts on real CPU figures, and
Pod Security `restricted` pods run as they would on RKE2.

Every pod here selects and tolerates the real node; the kwok nodes would mark it Ready without
running anything, which is exactly what these tests must not accept. Traffic stays inside the
rig's network namespace: clients are pods, servers are pods.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration._helpers import RESTRICTED, pid_taken_after_stop
from tests.rig import rig_binary, rig_image

pytestmark = pytest.mark.rig

REAL_NODE = "rig-node-1"
REAL_KEY = "cti.misp-platform/real-node"
ON_REAL_NODE = {
    "nodeSelector": {REAL_KEY: "true"},
    "tolerations": [{"key": REAL_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
IMAGE_POLICY_TARGET = Path(__file__).parent / "targets" / "image_policy" / "policy.yml"


def wait_until(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Node:
    """Creates pods on the real node of one namespace and runs commands in them."""

    def __init__(self, api, kubeconfig: str, namespace: str):
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def kubectl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(rig_binary("kubectl")), "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def exec(self, pod: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.kubectl("exec", pod, "--", *command, timeout=timeout)

    def pod(self, name: str, command: list[str], labels: dict | None = None, **spec) -> dict:
        container = {"name": "main", "image": rig_image("tools"), "command": command}
        container.update(spec.pop("container", {}))
        body = {
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 1, **ON_REAL_NODE, **spec},
        }
        return self.core.create_namespaced_pod(self.namespace, body)

    def running(self, name: str, timeout: float = 120) -> client.V1Pod:
        def ready():
            pod = self.core.read_namespaced_pod(name, self.namespace)
            if pod.status.phase in ("Failed", "Succeeded"):
                pytest.fail(f"pod {name} ended: {pod.status}")
            conditions = {c.type: c.status for c in pod.status.conditions or []}
            return pod if conditions.get("Ready") == "True" else None

        return wait_until(ready, timeout, f"pod {name} Ready")

    def web(self, name: str, labels: dict, ports=(8080,)) -> None:
        """A pod serving its own name over HTTP on each port, and a Service for the first port."""
        serve = " & ".join(f"python3 -m http.server {p} --directory /srv" for p in ports)
        script = f"echo {name} > /srv/index.html; {serve} & wait"
        self.pod(
            name,
            ["sh", "-c", script],
            labels=labels,
            volumes=[{"name": "srv", "emptyDir": {}}],
            container={"volumeMounts": [{"name": "srv", "mountPath": "/srv"}]},
        )
        self.core.create_namespaced_service(
            self.namespace,
            {
                "metadata": {"name": name},
                "spec": {
                    "selector": labels,
                    "ports": [{"name": f"p{p}", "port": p, "targetPort": p} for p in ports],
                },
            },
        )
        self.running(name)

    def fetch(self, pod: str, url: str) -> subprocess.CompletedProcess:
        return self.exec(pod, "curl", "-sS", "--max-time", "3", url, timeout=30)


@pytest.fixture(scope="module")
def node(api, k8s_cluster):
    core = client.CoreV1Api(api)
    name = f"rn-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    yield Node(api, k8s_cluster["kubeconfig"], name)
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def clients(node):
    """Two idle client pods, one labelled as the allowed peer of the policy test."""
    for name, role in (("client-a", "allowed"), ("client-b", "other")):
        node.pod(name, ["sleep", "infinity"], labels={"role": role})
    for name in ("client-a", "client-b"):
        node.running(name)
    return node


def test_real_node_is_labelled_tainted_and_not_kwok(api):
    real = client.CoreV1Api(api).read_node(REAL_NODE)
    assert real.metadata.labels.get(REAL_KEY) == "true"
    assert (REAL_KEY, "true", "NoSchedule") in [(t.key, t.value, t.effect) for t in real.spec.taints or []]
    assert "kwok.x-k8s.io/node" not in (real.metadata.annotations or {})
    # A real kubelet reports a container runtime; kwok reports none.
    assert real.status.node_info.container_runtime_version.startswith("containerd://")
    kwok = client.CoreV1Api(api).list_node(label_selector="type=kwok").items
    assert kwok and all(REAL_KEY not in n.metadata.labels for n in kwok)


def test_pod_runs_a_process_whose_output_is_read(node):
    token = uuid.uuid4().hex
    node.pod("echo", ["sh", "-c", f"echo started-{token}; exec sleep infinity"])
    node.running("echo")
    wait_until(
        lambda: f"started-{token}" in node.core.read_namespaced_pod_log("echo", node.namespace),
        30,
        "the pod's log line",
    )
    out = node.exec("echo", "sh", "-c", "echo $((6 * 7)) from $(hostname)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42 from echo"


def test_service_name_resolves_through_coredns_and_reaches_its_pod(clients):
    clients.web("dns-web", {"app": "dns-web"})
    svc = clients.core.read_namespaced_service("dns-web", clients.namespace)
    fqdn = f"dns-web.{clients.namespace}.svc.cluster.local"
    looked_up = clients.exec("client-a", "getent", "hosts", fqdn)
    assert looked_up.returncode == 0, looked_up.stderr
    assert looked_up.stdout.split()[0] == svc.spec.cluster_ip
    # The short name through the pod's search path, and the Service's virtual IP through kube-proxy.
    for url in ("http://dns-web:8080/", f"http://{svc.spec.cluster_ip}:8080/"):
        got = clients.fetch("client-a", url)
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == "dns-web"
    missing = clients.exec("client-a", "getent", "hosts", f"nothing-here.{clients.namespace}.svc.cluster.local")
    assert missing.returncode != 0


def test_network_policy_default_deny_then_one_peer_and_port(clients):
    net = client.NetworkingV1Api(clients.core.api_client)
    clients.web("np-web", {"app": "np-web"}, ports=(8080, 8081))
    ip = clients.core.read_namespaced_pod("np-web", clients.namespace).status.pod_ip

    def outcome(pod, port):
        return clients.fetch(pod, f"http://{ip}:{port}/").returncode == 0

    matrix = [("client-a", 8080), ("client-a", 8081), ("client-b", 8080)]
    assert all(outcome(p, port) for p, port in matrix), "without a policy every client must get through"

    deny = {
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {"matchLabels": {"app": "np-web"}}, "policyTypes": ["Ingress"]},
    }
    net.create_namespaced_network_policy(clients.namespace, deny)
    wait_until(lambda: not any(outcome(p, port) for p, port in matrix), 60, "default deny to block every client")

    allow = {
        "metadata": {"name": "allow-a-8080"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "np-web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "allowed"}}}], "ports": [{"port": 8080}]}],
        },
    }
    net.create_namespaced_network_policy(clients.namespace, allow)
    wait_until(lambda: outcome("client-a", 8080), 60, "the allow rule to reopen client-a -> 8080")
    assert not outcome("client-a", 8081), "the allow rule opened a port it does not name"
    assert not outcome("client-b", 8080), "the allow rule opened a peer it does not name"

    net.delete_namespaced_network_policy("allow-a-8080", clients.namespace)
    wait_until(lambda: not outcome("client-a", 8080), 60, "removing the allow rule to close client-a -> 8080 again")


def test_images_are_pinned_and_come_from_the_allowed_registry(node, run_playbook, env, dyn):
    policy = f"rn-ip-{uuid.uuid4().hex[:6]}"
    registry = rig_image("tools").split("/", 1)[0] + "/cti-rig"
    node.core.patch_namespace(node.namespace, {"metadata": {"labels": {"cti-test/image-policy": policy}}})
    run = run_playbook(
        IMAGE_POLICY_TARGET,
        {
            "image_policy_images": [rig_image("tools")],
            "image_policy_allowed_registries": [registry],
            "image_policy_admission_enabled": True,
            "image_policy_admission_name": policy,
            "image_policy_namespace_selector": {"matchLabels": {"cti-test/image-policy": policy}},
        },
        env=env,
    )
    assert run.rc == 0, run.stdout + run.stderr
    try:
        tools = rig_image("tools")
        unpinned = tools.split("@", 1)[0] + ":latest"
        foreign = "registry.example.invalid/cti-rig/" + tools.split("/", 2)[2]

        def refused(image: str, name: str) -> str:
            with pytest.raises(ApiException) as err:
                wait_until(lambda: _try_pod(node, name, image), 30, f"admission policy {policy} to refuse {image}")
            return err.value.body

        assert "digest" in refused(unpinned, "unpinned")
        assert registry in refused(foreign, "foreign")
        node.pod("pinned", ["sh", "-c", "echo pulled-by-digest; exec sleep infinity"], container={"image": tools})
        pod = node.running("pinned")
        assert pod.status.container_statuses[0].image_id.endswith(tools.split("@", 1)[1])
        assert "pulled-by-digest" in node.core.read_namespaced_pod_log("pinned", node.namespace)
    finally:
        for kind in ("ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"):
            dyn.resources.get(api_version="admissionregistration.k8s.io/v1", kind=kind).delete(name=policy)


def _try_pod(node: Node, name: str, image: str):
    """Create the pod; ApiException once the policy is in force, False (retry) while it is not yet."""
    try:
        node.pod(name, ["sleep", "1"], container={"image": image})
    except ApiException as exc:
        if exc.status == 403 or exc.status == 422:
            raise
        return False
    node.core.delete_namespaced_pod(name, node.namespace, grace_period_seconds=0)
    wait_until(lambda: not _exists(node, name), 30, f"pod {name} deleted")
    return False


def _exists(node: Node, name: str) -> bool:
    try:
        node.core.read_namespaced_pod(name, node.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_restricted_pod_runs_as_www_data_and_writes_only_to_its_empty_dirs(api, k8s_cluster):
    core = client.CoreV1Api(api)
    name = f"rn-psa-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    try:
        node = Node(api, k8s_cluster["kubeconfig"], name)
        with pytest.raises(ApiException) as err:
            node.pod("root", ["sleep", "infinity"], container={"securityContext": {"privileged": True}})
        assert err.value.status == 403
        assert "violates PodSecurity" in err.value.body
        node.pod(
            "www",
            ["sleep", "infinity"],
            volumes=[{"name": "data", "emptyDir": {}}],
            container={"securityContext": RESTRICTED, "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        )
        node.running("www")
        ids = node.exec("www", "sh", "-c", "id -u; id -g")
        assert ids.stdout.split() == ["33", "33"], ids
        ok = node.exec("www", "sh", "-c", "echo x > /data/written && cat /data/written")
        assert ok.returncode == 0 and ok.stdout.strip() == "x", ok.stderr
        for path in ("/etc/written", "/tmp/written", "/written"):
            denied = node.exec("www", "sh", "-c", f"echo x > {path}")
            assert denied.returncode != 0
            assert "Read-only file system" in denied.stderr, denied.stderr
    finally:
        core.delete_namespace(name)


@pytest.mark.slow
def test_hpa_scales_out_under_cpu_load_and_back_in(node):
    # Each replica burns a core while /tmp/burn exists; the test creates and removes it.
    burn = "while :; do if [ -e /tmp/burn ]; then :; else sleep 1; fi; done"
    labels = {"app": "burner"}
    node.apps.create_namespaced_deployment(
        node.namespace,
        {
            "metadata": {"name": "burner"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **ON_REAL_NODE,
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "main",
                                "image": rig_image("tools"),
                                "command": ["sh", "-c", burn],
                                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}},
                            }
                        ],
                    },
                },
            },
        },
    )
    client.AutoscalingV2Api(node.core.api_client).create_namespaced_horizontal_pod_autoscaler(
        node.namespace,
        {
            "metadata": {"name": "burner"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burner"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                    }
                ],
                # Scale in as soon as the load is gone; the default waits five minutes.
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            },
        },
    )

    def replicas():
        return node.apps.read_namespaced_deployment("burner", node.namespace).spec.replicas

    wait_until(
        lambda: node.kubectl("rollout", "status", "deployment/burner", "--timeout=5s").returncode == 0, 120, "burner"
    )
    first = node.core.list_namespaced_pod(node.namespace, label_selector="app=burner").items[0].metadata.name
    assert node.exec(first, "touch", "/tmp/burn").returncode == 0
    wait_until(lambda: replicas() > 1, 240, "the HPA to scale out under load")
    assert node.exec(first, "rm", "/tmp/burn").returncode == 0
    wait_until(lambda: replicas() == 1, 240, "the HPA to scale back in once the load is gone")


def test_stopping_a_component_never_kills_what_its_pid_became(tmp_path):
    # A forwarder that, asked to stop, becomes another program under the same pid: as if its pid
    # had been reused by another process before the SIGKILL that follows the grace period.
    run_dir = tmp_path / "node" / "run"
    run_dir.mkdir(parents=True)
    with pid_taken_after_stop("forwarder", f"{tmp_path / 'node'}/") as other:
        (run_dir / "peer-5999.pid").write_text(f"{other.pid}\n")
        stopped = subprocess.run(
            ["bash", str(Path(__file__).parents[1] / "rig" / "node.sh"), "unforward", "5999"],
            env={**os.environ, "CTI_RIG_STATE": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert stopped.returncode == 0, stopped.stderr
        assert other.poll() is None, "the process that took the forwarder's pid was killed"
        assert (Path(f"/proc/{other.pid}/cmdline").read_bytes(), (run_dir / "peer-5999.pid").exists()) == (
            b"sleep\x00300\x00",
            False,
        )
