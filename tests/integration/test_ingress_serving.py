"""MISP's Ingress really served (issue 17): RKE2's chart mechanism on the rig's real node.

tests/rig/ingress.sh runs helm-controller (k3s-io/helm-controller, the controller RKE2's server
runs) against the cluster and applies an RKE2-style HelmChart kube-system/rke2-traefik (the
stand-in chart tests/doubles/charts/rke2-traefik, running real Traefik 3.7). The ingress role
then writes its HelmChartConfig, Middlewares, TLS Secret and Ingress; helm-controller's Job
(klipper-helm stand-in, Helm 3) upgrades the release and Traefik restarts with those values.
Clients are two pods on the real node with different addresses; only the first one's /32 is in
the allowlist. The backend is a pod labelled as MISP's frontend behind Service misp-frontend
(port name http), so namespace_baseline's NetworkPolicies are enforced on the way.

helm-controller's Jobs prefer control-plane nodes and select none, so the kwok nodes are
cordoned while this module runs: kwok would mark a Job's pod complete without running Helm.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client
from kubernetes.dynamic.exceptions import NotFoundError

from tests.integration._helpers import RESTRICTED
from tests.integration.test_rig_nodes import ON_REAL_NODE, Node, wait_until
from tests.playbook import ansible_playbook
from tests.rig import RIG_DIR, rig_image

pytestmark = [pytest.mark.rig, pytest.mark.slow]

PLAYBOOK = Path(__file__).parent / "targets" / "ingress_controller" / "converge.yml"
NAMESPACE = "misp"
HOST = "misp.local.test"  # inventories/local: misp_hostname
HEARTBEAT = '{"message": "pong"}'
TRAEFIK = "app.kubernetes.io/name=rke2-traefik"
# The backend answers MISP's heartbeat path only.
BACKEND = """
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (HEARTBEAT_BODY if self.path == "/users/heartbeat" else "not found").encode()
        self.send_response(200 if self.path == "/users/heartbeat" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("", 8080), H).serve_forever()
""".replace("HEARTBEAT_BODY", repr(HEARTBEAT))
# A TLS handshake at exactly one protocol version; SECLEVEL=0 so that the client itself (OpenSSL 3)
# offers TLS 1.1 and only the server can refuse it.
HANDSHAKE = """
import socket, ssl, sys
version = getattr(ssl.TLSVersion, sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations("/ca/ca.pem")
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.minimum_version = ctx.maximum_version = version
try:
    with socket.create_connection((sys.argv[1], 443), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST_NAME) as tls:
            print("accepted", tls.version())
except (ssl.SSLError, OSError) as err:
    print("refused", type(err).__name__, err)
""".replace("HOST_NAME", repr(HOST))


def certificates() -> tuple[str, str, str]:
    """(CA PEM, server certificate PEM for HOST signed by it, server key PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cti ingress test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        ca.public_bytes(pem).decode(),
        cert.public_bytes(pem).decode(),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )


def ingress_sh(action: str, kubeconfig: str) -> None:
    # The cluster's state directory is the one holding its kubeconfig (tests/rig/cluster.sh).
    env = {**os.environ, "CTI_RIG_STATE": str(Path(kubeconfig).parent)}
    result = subprocess.run(
        ["bash", str(RIG_DIR / "ingress.sh"), action], capture_output=True, text=True, timeout=900, check=False, env=env
    )
    assert result.returncode == 0, f"ingress.sh {action}:\n{result.stderr[-4000:]}"


def traefik_pods(core) -> list[client.V1Pod]:
    return [
        p
        for p in core.list_namespaced_pod("kube-system", label_selector=TRAEFIK).items
        if not p.metadata.deletion_timestamp
    ]


def ready_traefik(core, with_arg: str | None = None):
    """The single Ready Traefik pod (carrying ``with_arg`` when given), or None."""
    pods = traefik_pods(core)
    if len(pods) != 1:
        return None
    pod = pods[0]
    ready = {c.type: c.status for c in pod.status.conditions or []}.get("Ready") == "True"
    args = pod.spec.containers[0].args or []
    return pod if ready and (with_arg is None or with_arg in args) else None


@pytest.fixture(scope="module")
def rig(api, dyn, k8s_cluster):
    """helm-controller and the rke2-traefik HelmChart up, kwok nodes cordoned; Traefik Ready
    with the chart's own values (no HelmChartConfig yet)."""
    core = client.CoreV1Api(api)
    kwok = [n.metadata.name for n in core.list_node(label_selector="type=kwok").items]
    configs = dyn.resources.get(api_version="helm.cattle.io/v1", kind="HelmChartConfig")
    with contextlib.suppress(NotFoundError):
        configs.delete(name="rke2-traefik", namespace="kube-system")
    for name in kwok:
        core.patch_node(name, {"spec": {"unschedulable": True}})
    try:
        ingress_sh("up", k8s_cluster["kubeconfig"])
        pod = wait_until(lambda: ready_traefik(core), 300, "Traefik Ready on the real node", interval=2)
        assert pod.spec.node_name == "rig-node-1"
        yield pod
    finally:
        ingress_sh("down", k8s_cluster["kubeconfig"])
        for name in kwok:
            core.patch_node(name, {"spec": {"unschedulable": False}})


@pytest.fixture(scope="module")
def site(api, k8s_cluster, rig):
    """Backend, two clients, then the ingress part of the platform layer converged twice."""
    core = client.CoreV1Api(api)
    clients = Node(api, k8s_cluster["kubeconfig"], f"ic-{uuid.uuid4().hex[:6]}")
    core.create_namespace({"metadata": {"name": clients.namespace}})
    ca, cert, key = certificates()
    env = {"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]}
    try:
        core.create_namespaced_config_map(clients.namespace, {"metadata": {"name": "ca"}, "data": {"ca.pem": ca}})
        for name in ("client-a", "client-b"):
            clients.pod(
                name,
                ["sleep", "infinity"],
                volumes=[{"name": "ca", "configMap": {"name": "ca"}}],
                container={"volumeMounts": [{"name": "ca", "mountPath": "/ca"}]},
            )
        addresses = {name: clients.running(name).status.pod_ip for name in ("client-a", "client-b")}
        variables = {
            "ingress_controller": "traefik",
            "ingress_cert_manager_issuer": "",
            "ingress_tls_certificate": cert,
            "ingress_tls_key": key,
            "misp_ingress_allowed_cidrs": [f"{addresses['client-a']}/32"],
        }
        first = ansible_playbook(PLAYBOOK, variables, env=env, timeout=600)
        assert first.rc == 0, first.stdout[-4000:]
        backend(core)
        redirect = "--entryPoints.web.http.redirections.entryPoint.to=:443"
        configured = wait_until(
            lambda: ready_traefik(core, redirect), 300, "Traefik restarted with the role's values", 2
        )
        second = ansible_playbook(PLAYBOOK, variables, env=env, timeout=600)
        # Time for helm-controller to start a Job, were the second run to give it cause.
        time.sleep(15)
        service = core.read_namespaced_service("rke2-traefik", "kube-system").spec.cluster_ip
        yield {
            "clients": clients,
            "addresses": addresses,
            "service": service,
            "configured": configured,
            "first": first,
            "second": second,
            "core": core,
        }
    finally:
        core.delete_namespace(clients.namespace)
        apps = client.AppsV1Api(api)
        apps.delete_namespaced_deployment("misp-frontend-test", NAMESPACE)
        core.delete_namespaced_service("misp-frontend", NAMESPACE)


def backend(core) -> None:
    """A frontend stand-in answering MISP's heartbeat, in MISP's namespace under its labels."""
    labels = {
        "app.kubernetes.io/part-of": "misp",
        "app.kubernetes.io/component": "frontend",
        "app": "misp-frontend-test",
    }
    client.AppsV1Api(core.api_client).create_namespaced_deployment(
        NAMESPACE,
        {
            "metadata": {"name": "misp-frontend-test", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **ON_REAL_NODE,
                        "automountServiceAccountToken": False,
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "frontend",
                                "image": rig_image("tools"),
                                "command": ["python3", "-c", BACKEND],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "securityContext": RESTRICTED,
                                "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
                            }
                        ],
                    },
                },
            },
        },
    )
    core.create_namespaced_service(
        NAMESPACE,
        {
            "metadata": {"name": "misp-frontend"},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )
    wait_until(
        lambda: (
            client.AppsV1Api(core.api_client)
            .read_namespaced_deployment("misp-frontend-test", NAMESPACE)
            .status.ready_replicas
            or 0
        )
        >= 1,
        180,
        "the frontend stand-in Ready",
    )


def curl(site, pod: str, *args: str) -> subprocess.CompletedProcess:
    resolve = ["--resolve", f"{HOST}:443:{site['service']}", "--resolve", f"{HOST}:80:{site['service']}"]
    return site["clients"].exec(
        pod, "curl", "-sS", "--max-time", "5", "--cacert", "/ca/ca.pem", *resolve, *args, timeout=30
    )


def https_get(site, pod: str) -> tuple[int, dict, str]:
    """Status, headers (lower-case names) and body of GET https://HOST/users/heartbeat, retried
    while Traefik loads the Ingress."""

    def attempt():
        out = curl(site, pod, "-D", "-", f"https://{HOST}/users/heartbeat")
        if out.returncode != 0:
            return None
        head, _sep, body = out.stdout.replace("\r\n", "\n").partition("\n\n")
        lines = head.splitlines()
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _s, v in (line.partition(":") for line in lines[1:])}
        return None if status in (404, 502, 503) else (status, headers, body)

    return wait_until(attempt, 120, f"an answer of {HOST} to {pod}", interval=2)


def test_the_helmchartconfig_is_applied_by_helm_controller_and_traefik_restarts_with_it(site, rig):
    pod = site["configured"]
    assert pod.metadata.uid != rig.metadata.uid, "Traefik did not restart"
    args = pod.spec.containers[0].args
    assert "--global.checkNewVersion=false" in args
    assert "--entryPoints.web.http.redirections.entryPoint.scheme=https" in args
    assert "--entryPoints.web.http.redirections.entryPoint.permanent=true" in args
    # The HelmChartConfig's values reached Helm through helm-controller's Job on the real node.
    jobs = client.BatchV1Api(site["core"].api_client).list_namespaced_job("kube-system").items
    job = next(j for j in jobs if j.metadata.name == "helm-install-rke2-traefik")
    assert job.status.succeeded == 1
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env.get("CONFIG_HASH"), "the Job does not carry the HelmChartConfig's hash"


def test_https_with_the_configured_certificate_returns_the_heartbeat_with_hsts_and_security_headers(site):
    status, headers, body = https_get(site, "client-a")
    assert (status, body) == (200, HEARTBEAT)
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "server" not in headers and "x-powered-by" not in headers


def test_plain_http_redirects_to_https(site):
    out = curl(
        site, "client-a", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", f"http://{HOST}/users/heartbeat"
    )
    code, _sep, target = out.stdout.partition(" ")
    assert code in ("301", "308"), out.stdout + out.stderr
    assert target == f"https://{HOST}/users/heartbeat"


def test_tls_1_1_is_refused_and_tls_1_2_accepted(site):
    def handshake(version: str) -> str:
        return site["clients"].exec("client-a", "python3", "-c", HANDSHAKE, site["service"], version).stdout.strip()

    assert handshake("TLSv1_2").startswith("accepted TLSv1.2")
    assert handshake("TLSv1_1").startswith("refused"), handshake("TLSv1_1")


def test_an_allowed_address_passes_and_another_gets_403(site):
    assert https_get(site, "client-a")[0] == 200
    assert site["addresses"]["client-a"] != site["addresses"]["client-b"]
    out = curl(site, "client-b", "-o", "/dev/null", "-w", "%{http_code}", f"https://{HOST}/users/heartbeat")
    assert out.stdout == "403", out.stdout + out.stderr


def test_a_second_run_changes_nothing_and_does_not_restart_traefik(site):
    second = site["second"]
    assert second.rc == 0, second.stdout[-4000:]
    assert second.recap["changed"] == 0, second.stdout[-4000:]
    # Time for helm-controller to act, were it to.
    assert ready_traefik(site["core"]).metadata.uid == site["configured"].metadata.uid
    jobs = client.BatchV1Api(site["core"].api_client).list_namespaced_job("kube-system").items
    assert json.dumps([j.metadata.name for j in jobs if j.status.active]) == "[]"
