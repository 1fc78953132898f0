"""Helpers of the ingress tests: RKE2's chart mechanism on the rig (tests/rig/ingress.sh) and
clients of the Traefik it runs.

tests/rig/ingress.sh runs helm-controller (k3s-io/helm-controller, the controller RKE2's server
runs) against the cluster and applies an RKE2-style HelmChart kube-system/rke2-traefik (the
stand-in chart tests/doubles/charts/rke2-traefik, running real Traefik 3.7); helm-controller's Job
(klipper-helm stand-in, Helm 3) installs it on the real node. Its Jobs prefer control-plane nodes
and select none, so the kwok nodes are cordoned while it works: kwok would mark a Job's pod
complete without running Helm.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from kubernetes import client

from tests.integration.test_rig_nodes import wait_until
from tests.rig import RIG_DIR
from tests.rig.peers._tls import TestCA

PLAYBOOK = Path(__file__).parent / "targets" / "ingress_controller" / "converge.yml"
HOST = "misp.local.test"  # inventories/local: misp_hostname
TRAEFIK = "app.kubernetes.io/name=rke2-traefik"
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
    ca = TestCA("cti ingress test CA")
    cert, key = ca.issue(HOST, dns=(HOST,))
    return ca.cert_pem.decode(), cert.decode(), key.decode()


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


@contextlib.contextmanager
def kwok_cordoned(core):
    """The kwok nodes unschedulable inside the block, so that helm-controller's Jobs run for real."""
    kwok = [n.metadata.name for n in core.list_node(label_selector="type=kwok").items]
    for name in kwok:
        core.patch_node(name, {"spec": {"unschedulable": True}})
    try:
        yield
    finally:
        for name in kwok:
            core.patch_node(name, {"spec": {"unschedulable": False}})


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
