"""MISP's enrichment service (issue 19 item 3): the misp_modules role, against the real service.

misp_modules and misp_config run in one play (tests/integration/targets/misp_modules, as
playbooks/misp.yml runs them) in a namespace of their own on the rig's API server, Pod Security
``restricted`` enforced; misp_config writes MISP's settings through the MISP API stand-in. The
real service, PyPI misp-modules in a venv of the rig cache (tests/rig/misp-modules.sh), is
started on loopback with the command line of the rendered Deployment, and answers the readiness
probe's path and ``/modules``. Then the role's Deployment runs on the real node ``rig-node-1``
with the rig's misp-modules image (the same wheels, tests/rig/images.sh), its NetworkPolicies
enforced there: a pod labelled as a MISP frontend gets ``/modules`` through the Service, a pod
labelled as MISP's cron is dropped. Everything is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.doubles.misp_api import MispApiDouble
from tests.integration._helpers import RESTRICTED, static_storage_class, static_volume
from tests.rig import rig_binary, rig_image

pytestmark = [pytest.mark.rig, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests/integration/targets/misp_modules/deploy.yml"
KEY = "modules-admin-key-" + "5" * 22
WORD = secrets.token_hex(16)
LABELS = {
    "app.kubernetes.io/part-of": "misp",
    "app.kubernetes.io/managed-by": "cti.misp_platform",
    "app.kubernetes.io/component": "modules",
    "app.kubernetes.io/name": "misp-modules",
}
# Enrichment (expansion) modules of misp-modules that need neither an API key nor an extra:
# MISP lists them under Plugin.Enrichment_<name>_enabled once it has read /modules.
REAL_KEY = "cti.misp-platform/real-node"
ON_REAL_NODE = {
    "nodeSelector": {REAL_KEY: "true"},
    "tolerations": [{"key": REAL_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
ENRICHMENT = {"cve", "rdap", "hashlookup", "urlhaus", "countrycode", "extract_url_components", "ipinfo"}


def role_vars(namespace, storage_class, misp_url):
    return {
        "misp_namespace": namespace,
        "misp_base_url": "https://misp.modules.test",
        "misp_secrets_source": "inventory",
        "misp_secrets": {
            "database": {"username": "misp", "password": WORD, "root-password": WORD},
            "redis": {"password": WORD},
            "app": {
                "salt": WORD,
                "encryption-key": WORD,
                "gpg-passphrase": WORD,
                "admin-api-key": KEY,
                "uuid": "6a2f0e0c-0a4e-4c43-9d43-3c7f1d5e9a02",
            },
            "supervisor": {"username": "supervisor", "password": WORD},
        },
        "misp_common_files_storage_class": storage_class,
        "misp_common_files_size": "1Gi",
        "misp_common_proxy": {"host": "proxy.corp.test", "port": 3128},
        "misp_modules_image": "registry.modules.test/misp-modules:3.1.1",
        # The MISP pods' placement, which the role shares: here a kwok node, which pulls nothing.
        "misp_common_node_selector": {"type": "kwok"},
        "misp_common_tolerations": [{"key": "cti-test/modules", "operator": "Exists", "effect": "NoSchedule"}],
        "misp_config_url": misp_url,
        # The stand-in listens on loopback, not in a pod; no workers run here.
        "misp_config_port_forward": False,
        "misp_config_check_workers": False,
    }


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def namespace(api, core):
    """A restricted namespace with a bound static volume for misp-files (misp_common makes the claim)."""
    name = f"cti-modules-{secrets.token_hex(3)}"
    storage = client.StorageV1Api(api)
    labels = {"pod-security.kubernetes.io/enforce": "restricted", "cti-test": "modules"}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    storage.create_storage_class(static_storage_class(name))
    core.create_persistent_volume(static_volume(name, "misp-files", "ReadWriteMany", name))
    yield name
    core.delete_namespace(name)
    for delete, obj in ((core.delete_persistent_volume, f"{name}-misp-files"), (storage.delete_storage_class, name)):
        with contextlib.suppress(ApiException):
            delete(obj)


@pytest.fixture(scope="module")
def deployed(run_playbook, env, namespace):
    """(first run, second run, the stand-in's settings after the first run)."""
    with MispApiDouble(api_key=KEY) as misp:
        extravars = role_vars(namespace, namespace, misp.url)
        first = run_playbook(TARGET, extravars, env=env, timeout=900)
        assert first.rc == 0, (first.stdout + first.stderr)[-6000:]
        settings = dict(misp.settings)
        second = run_playbook(TARGET, extravars, env=env, timeout=900)
    return first, second, settings


@pytest.fixture(scope="module")
def deployment(api, deployed, namespace):
    return client.AppsV1Api(api).read_namespaced_deployment("misp-modules", namespace)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback only
        return resp.status, json.loads(resp.read())


@pytest.fixture(scope="module")
def service(deployment, tmp_path_factory):
    """The real misp-modules, started with the Deployment's command on a loopback port: (base URL, probe path)."""
    built = subprocess.run(
        ["bash", str(REPO / "tests/rig/misp-modules.sh")], capture_output=True, text=True, timeout=1800, check=False
    )
    assert built.returncode == 0, built.stderr[-3000:]
    venv = Path(built.stdout.strip().splitlines()[-1])
    container = deployment.spec.template.spec.containers[0]
    command = list(container.command)
    assert command[0] == "misp-modules", command
    # Same program and options; only the address (loopback, not every interface) and the port
    # (a free one) differ.
    command[command.index("--listen") + 1] = "127.0.0.1"
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    log = tmp_path_factory.mktemp("misp-modules") / "service.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(venv / "bin/python"), "-m", "misp_modules", *command[1:]],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
        )
    base = f"http://127.0.0.1:{port}"
    probe = container.readiness_probe.http_get.path
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get_json(base + probe)
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1)
        yield base, probe
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_converges_and_second_run_changes_nothing(deployed):
    first, second, _settings = deployed
    assert first.changed > 0
    assert second.rc == 0, second.stdout[-6000:]
    assert second.changed == 0, second.stdout[-6000:]


def test_misp_is_pointed_at_the_service(deployed):
    settings = deployed[2]
    assert settings["Plugin.Enrichment_services_enable"] is True
    assert settings["Plugin.Enrichment_services_url"] == "http://misp-modules"
    assert settings["Plugin.Enrichment_services_port"] == 6666


def test_service_and_deployment(api, core, deployment, namespace):
    service = core.read_namespaced_service("misp-modules", namespace)
    assert service.spec.selector == LABELS
    assert [(p.name, p.port, p.target_port) for p in service.spec.ports] == [("modules", 6666, "modules")]
    spec = deployment.spec.template.spec
    assert deployment.spec.template.metadata.labels == LABELS
    container = spec.containers[0]
    assert container.image == "registry.modules.test/misp-modules:3.1.1"
    assert [(p.name, p.container_port) for p in container.ports] == [("modules", 6666)]
    assert spec.automount_service_account_token is False
    assert spec.node_selector == {"type": "kwok"}
    assert [(t.key, t.effect) for t in spec.tolerations] == [("cti-test/modules", "NoSchedule")]
    # Outbound enrichment goes through the site's proxy, MISP's own names directly.
    env = {e.name: e.value for e in container.env}
    assert env["HTTPS_PROXY"] == "http://proxy.corp.test:3128"
    assert "misp-workers" in env["NO_PROXY"].split(",")


def test_pods_pass_pod_security_restricted(api, core, deployment, namespace):
    """The API server's PodSecurity admission judges a pod of the template (server-side dry run)."""
    template = api.sanitize_for_serialization(deployment.spec.template)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "misp-modules-psa"}, "spec": template["spec"]}
    core.create_namespaced_pod(namespace, pod, dry_run="All")
    # The same check refuses a pod that could run as root: it is not a check that cannot fail.
    loose = copy.deepcopy(pod)
    del loose["spec"]["securityContext"]["runAsNonRoot"]
    loose["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot", None)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, loose, dry_run="All")
    assert refused.value.status == 403
    assert "restricted" in refused.value.body and "runAsNonRoot" in refused.value.body


def test_only_frontends_and_workers_may_connect(api, deployed, namespace):
    net = client.NetworkingV1Api(api)
    ingress = net.read_namespaced_network_policy("misp-modules-ingress", namespace).spec
    assert ingress.pod_selector.match_labels == LABELS
    assert ingress.policy_types == ["Ingress"]
    [rule] = ingress.ingress
    [peer] = rule._from
    assert peer.namespace_selector is None and peer.ip_block is None
    assert peer.pod_selector.match_labels == {"app.kubernetes.io/part-of": "misp"}
    [expr] = peer.pod_selector.match_expressions
    assert (expr.key, expr.operator) == ("app.kubernetes.io/component", "In")
    assert sorted(expr.values) == ["frontend", "workers"]
    assert [(p.port, p.protocol) for p in rule.ports] == [("modules", "TCP")]

    egress = net.read_namespaced_network_policy("misp-modules-clients-egress", namespace).spec
    [expr] = egress.pod_selector.match_expressions
    assert sorted(expr.values) == ["frontend", "workers"]
    [rule] = egress.egress
    assert rule.to[0].pod_selector.match_labels == LABELS
    assert [(p.port, p.protocol) for p in rule.ports] == [(6666, "TCP")]


def test_the_real_service_answers_the_probe_and_lists_the_enrichment_modules(service):
    base, probe = service
    status, health = get_json(base + probe)
    assert status == 200 and health, health
    status, modules = get_json(base + "/modules")
    assert status == 200
    expansion = {m["name"] for m in modules if "expansion" in m["type"]}
    assert expansion >= ENRICHMENT, sorted(ENRICHMENT - expansion)
    for module in modules:
        assert {"name", "type", "mispattributes", "meta"} <= module.keys(), module


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(2)
    return value


@pytest.fixture(scope="module")
def on_real_node(api, core, deployment, namespace, k8s_cluster):
    """The role's Deployment on the real node with the rig's misp-modules image, and two clients.

    Only the image and the placement are changed (the converge placed it on kwok); the rest of
    the pod, the Service and the NetworkPolicies are the role's. Clients: a pod labelled
    as a MISP frontend and one labelled as MISP's cron, both in this restricted namespace.
    """
    built = subprocess.run(
        ["bash", str(REPO / "tests/rig/images.sh"), "build", "misp-modules"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    apps = client.AppsV1Api(api)
    # A strategic merge patch merges nodeSelector: the converge's kwok selector is removed by null.
    placement = {**ON_REAL_NODE, "nodeSelector": {**ON_REAL_NODE["nodeSelector"], "type": None}}
    template = {**placement, "containers": [{"name": "misp-modules", "image": rig_image("misp-modules")}]}
    apps.patch_namespaced_deployment("misp-modules", namespace, {"spec": {"template": {"spec": template}}})
    for name, component in (("client-frontend", "frontend"), ("client-cron", "cron")):
        labels = {"app.kubernetes.io/part-of": "misp", "app.kubernetes.io/component": component}
        container = {"name": "main", "image": rig_image("tools"), "command": ["sleep", "infinity"]}
        container["securityContext"] = RESTRICTED
        spec = {"containers": [container], "terminationGracePeriodSeconds": 1, **ON_REAL_NODE}
        core.create_namespaced_pod(namespace, {"metadata": {"name": name, "labels": labels}, "spec": spec})

    def ready(name):
        pod = core.read_namespaced_pod(name, namespace)
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    def rolled_out():
        d = apps.read_namespaced_deployment("misp-modules", namespace)
        # The first pod (on a kwok node, before the patch) must be gone or going.
        pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=misp-modules").items
        nodes = [p.spec.node_name for p in pods if not p.metadata.deletion_timestamp]
        return nodes == ["rig-node-1"] and d.status.updated_replicas == d.status.ready_replicas == 1

    # Ready means the real service answered the readiness probe (/healthcheck) on the node.
    wait_until(rolled_out, 300, "misp-modules Ready on the real node")
    for name in ("client-frontend", "client-cron"):
        wait_until(lambda n=name: ready(n), 120, f"pod {name} Ready")
    address = core.read_namespaced_service("misp-modules", namespace).spec.cluster_ip

    def fetch(client_pod: str, path: str) -> subprocess.CompletedProcess:
        cmd = [str(rig_binary("kubectl")), "--kubeconfig", k8s_cluster["kubeconfig"], "-n", namespace, "exec"]
        cmd += [client_pod, "--", "curl", "-sS", "--max-time", "5", f"http://{address}:6666{path}"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)

    return fetch


def test_on_the_real_node_a_frontend_gets_the_modules_and_another_pod_is_refused(on_real_node):
    allowed = on_real_node("client-frontend", "/modules")
    assert allowed.returncode == 0, allowed.stderr
    names = {m["name"] for m in json.loads(allowed.stdout) if "expansion" in m["type"]}
    assert names >= ENRICHMENT, sorted(ENRICHMENT - names)
    refused = on_real_node("client-cron", "/modules")
    # curl exit 28: the connection timed out, the policy dropped it (not refused by the service).
    assert refused.returncode == 28, (refused.returncode, refused.stderr)
