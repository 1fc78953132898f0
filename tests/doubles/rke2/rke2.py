#!/usr/bin/env python
"""STAND-IN for the RKE2 executable (``/usr/local/bin/rke2``); it is not RKE2.

Real RKE2 cannot be downloaded or run on the test machine. ``build-artifacts.sh`` packs this
program as ``bin/rke2`` of an airgap install tarball so the ``rke2`` role runs its real install,
join, restart and upgrade steps against it. It copies the behaviour the role depends on:

* ``rke2 --version`` prints what real RKE2 prints (``rke2 version vX+rke2rN (commit)`` and a
  ``go version`` line); the version is stamped in at build time.
* ``rke2 server`` without ``server:`` in ``/etc/rancher/rke2/config.yaml`` initialises the
  cluster: it writes ``/var/lib/rancher/rke2/server/node-token`` as ``K10<ca hash>::server:<token>``
  and ``/etc/rancher/rke2/rke2.yaml``. Instead of running its own control plane, that kubeconfig
  is a copy of ``/var/lib/rancher/rke2-standin/kubeconfig`` (the test rig's simulated cluster) so
  readiness waits, cordon and drain go to a real Kubernetes API.
* Every server serves the supervisor port 9345 (plain HTTP here, HTTPS in RKE2): ``/cacerts``
  and a join endpoint that accepts a node only if its token matches; joining servers and agents
  refuse to start with a wrong token, as RKE2 does.
* The first server appends every start and join, with a timestamp, node name, role and version,
  to ``/var/lib/rancher/rke2/server/standin-events.log`` (JSON lines) so tests can check order.
* It tells systemd it is ready (``Type=notify`` units) once joined, then runs until SIGTERM.
* In place of RKE2's kubelet running the kube-vip static pod of
  ``/var/lib/rancher/rke2/agent/pod-manifests/kube-vip.yaml``, the server that initialises the
  cluster holds the pod's ``address`` on its ``vip_interface`` (``ip addr add <vip>/32``, as
  kube-vip's ARP mode does; the kernel then answers ARP for it). There is no API server for
  kube-vip's leader election Lease, so the first kube-vip to start, the first server's, keeps it;
  it is not released on a restart, as RKE2 restarts leave static pods running. A missing
  interface fails the way kube-vip does: logged, VIP not held. The supervisor records the
  address a node joined through (the ``Host`` of its request) in the join event (``via``).

Only the top-level scalar keys of config.yaml that it needs are read (stdlib only: the hosts may
have no PyYAML).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# Replaced by build-artifacts.sh with the version the tarball stands for.
VERSION = "@RKE2_VERSION@"
GO_VERSION = "go1.25.9 X:boringcrypto"

CONFIG = Path("/etc/rancher/rke2/config.yaml")
SERVER_DIR = Path("/var/lib/rancher/rke2/server")
CA_FILE = SERVER_DIR / "tls" / "server-ca.crt"
NODE_TOKEN = SERVER_DIR / "node-token"
EVENTS = SERVER_DIR / "standin-events.log"
KUBECONFIG_OUT = Path("/etc/rancher/rke2/rke2.yaml")
KUBECONFIG_SRC = Path("/var/lib/rancher/rke2-standin/kubeconfig")
KUBE_VIP_MANIFEST = Path("/var/lib/rancher/rke2/agent/pod-manifests/kube-vip.yaml")
SUPERVISOR_PORT = 9345
# RKE2 agents keep retrying an unreachable server; bounded here so a broken test fails.
JOIN_RETRY_SECONDS = 120


def log(msg: str) -> None:
    print(f"rke2-standin: {msg}", file=sys.stderr, flush=True)


def read_config(path: Path) -> dict[str, str]:
    """Top-level ``key: value`` scalars of config.yaml; lists and maps are skipped."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        if not line or line[0] in " #-" or ":" not in line:
            continue
        key, _sep, value = line.partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def token_secret(token: str) -> tuple[str, str | None]:
    """Split ``K10<hash>::<user>:<secret>`` into (secret, ca hash); a bare token has no hash."""
    if token.startswith("K10") and "::" in token:
        ca_hash, _sep, rest = token[3:].partition("::")
        return rest.partition(":")[2], ca_hash
    return token, None


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def record(event: str, node: str, role: str, version: str, via: str | None = None) -> None:
    entry = {"time": now(), "event": event, "node": node, "role": role, "version": version}
    if via is not None:
        entry["via"] = via
    with EVENTS.open("a") as fh:
        fh.write(json.dumps(entry) + "\n")


def notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)


def supervisor_url(server: str, path: str) -> str:
    # RKE2's supervisor speaks HTTPS; the stand-in keeps the configured host and port over HTTP.
    host = server.split("://", 1)[-1].rstrip("/")
    return f"http://{host}{path}"


def join(cfg: dict[str, str], node: str, role: str) -> None:
    server, token = cfg.get("server", ""), cfg.get("token", "")
    if not server:
        sys.exit("rke2-standin: --server is required to join a cluster")
    if not token:
        sys.exit("rke2-standin: --token is required to join a cluster")
    secret, ca_hash = token_secret(token)
    body = json.dumps({"node": node, "role": role, "version": VERSION}).encode()
    auth = base64.b64encode(f"{role}:{secret}".encode()).decode()
    deadline = time.monotonic() + JOIN_RETRY_SECONDS
    reason = ""
    while True:
        try:
            with urllib.request.urlopen(supervisor_url(server, "/cacerts"), timeout=5) as resp:  # noqa: S310
                cacerts = resp.read()
            if ca_hash is not None and hashlib.sha256(cacerts).hexdigest() != ca_hash:
                sys.exit(f"rke2-standin: token CA hash does not match the Cluster CA certificate hash at {server}")
            request = urllib.request.Request(  # noqa: S310
                supervisor_url(server, "/v1-rke2/standin/join"),
                data=body,
                headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310
                log(f"joined cluster at {server} as {role} {node}")
                return
        except urllib.error.HTTPError as err:
            if err.code == 401:
                sys.exit(f"rke2-standin: failed to validate connection to cluster at {server}: 401 Unauthorized")
            reason = str(err)
        except OSError as err:
            reason = str(err)
        if time.monotonic() > deadline:
            sys.exit(f"rke2-standin: cannot reach {server}: {reason}")
        log(f"waiting for {server}: {reason}")
        time.sleep(2)


def init_server(cfg: dict[str, str]) -> str:
    """Create the cluster CA, token and kubeconfig the way the first RKE2 server does."""
    CA_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not CA_FILE.exists():
        CA_FILE.write_text(f"STAND-IN CA {secrets.token_hex(32)}\n")
    secret = token_secret(cfg["token"])[0] if cfg.get("token") else None
    if secret is None:
        secret = token_secret(NODE_TOKEN.read_text().strip())[0] if NODE_TOKEN.exists() else secrets.token_hex(16)
    ca_hash = hashlib.sha256(CA_FILE.read_bytes()).hexdigest()
    NODE_TOKEN.write_text(f"K10{ca_hash}::server:{secret}\n")
    NODE_TOKEN.chmod(0o600)
    return secret


def write_kubeconfig(cfg: dict[str, str]) -> None:
    if KUBECONFIG_SRC.exists():
        content = KUBECONFIG_SRC.read_text()
    else:
        content = (
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n"
            "  name: default\ncontexts:\n- context:\n    cluster: default\n    user: default\n"
            "  name: default\ncurrent-context: default\nusers:\n- name: default\n  user: {}\n"
        )
    KUBECONFIG_OUT.parent.mkdir(parents=True, exist_ok=True)
    KUBECONFIG_OUT.write_text(content)
    KUBECONFIG_OUT.chmod(int(cfg.get("write-kubeconfig-mode", "0600"), 8))


def serve_supervisor(secret: str, first: bool) -> None:
    class Supervisor(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/cacerts" or not CA_FILE.exists():
                self.send_error(404)
                return
            data = CA_FILE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != "/v1-rke2/standin/join":
                self.send_error(404)
                return
            header = self.headers.get("Authorization", "")
            given = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")[2] if header else ""
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if not secrets.compare_digest(given, secret):
                log(f"refused {payload.get('node')}: wrong token")
                self.send_error(401)
                return
            if first:
                node, role, version = (payload.get(key, "?") for key in ("node", "role", "version"))
                record("join", node, role, version, via=self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            log(format % args)

    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", SUPERVISOR_PORT), Supervisor)  # noqa: S104
    httpd.daemon_threads = True
    httpd.serve_forever()


def hold_kube_vip() -> None:
    """Hold the VIP of the kube-vip static pod, as its leader does (see the module docstring)."""
    if not KUBE_VIP_MANIFEST.exists():
        return
    # The pod's env entries, in the flow style the rke2 role writes: {name: x, value: "y"}.
    env = dict(re.findall(r'\{name: (\w+), value: "?([^",}]*)"?\}', KUBE_VIP_MANIFEST.read_text()))
    vip, interface = env.get("address", ""), env.get("vip_interface", "")
    held = subprocess.run(["ip", "-o", "addr", "show", "dev", interface], capture_output=True, text=True, check=False)
    if held.returncode != 0:
        log(f"kube-vip: unable to find interface {interface}: {held.stderr.strip()}")
        return
    if f" {vip}/" in held.stdout:
        return
    add = ["ip", "addr", "add", f"{vip}/32", "dev", interface]
    added = subprocess.run(add, capture_output=True, text=True, check=False)
    if added.returncode != 0:
        log(f"kube-vip: cannot add {vip} to {interface}: {added.stderr.strip()}")
        return
    log(f"kube-vip: holding {vip} on {interface}")


def run(role: str) -> None:
    cfg = read_config(CONFIG)
    node = cfg.get("node-name") or socket.gethostname()
    if role == "server" and not cfg.get("server"):
        first_start = not NODE_TOKEN.exists()
        secret = init_server(cfg)
        record("init" if first_start else "start", node, role, VERSION)
        hold_kube_vip()
    else:
        join(cfg, node, role)
        secret = token_secret(cfg["token"])[0]
    if role == "server":
        init_ca_from_first(cfg)
        write_kubeconfig(cfg)
    notify_ready()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if role == "server":
        serve_supervisor(secret, first=not cfg.get("server"))
    else:
        while True:
            time.sleep(3600)


def init_ca_from_first(cfg: dict[str, str]) -> None:
    """Joining servers take the cluster CA from the server they joined, as RKE2 does."""
    if not cfg.get("server") or CA_FILE.exists():
        return
    with urllib.request.urlopen(supervisor_url(cfg["server"], "/cacerts"), timeout=5) as resp:  # noqa: S310
        CA_FILE.parent.mkdir(parents=True, exist_ok=True)
        CA_FILE.write_bytes(resp.read())


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("--version", "-v", "version"):
        print(f"rke2 version {VERSION} ({hashlib.sha1(VERSION.encode()).hexdigest()[:8]})")  # noqa: S324
        print(f"go version {GO_VERSION}")
        return
    if argv[0] in ("server", "agent"):
        run(argv[0])
        return
    sys.exit(f"rke2-standin: command {argv[0]!r} is not part of the stand-in")


if __name__ == "__main__":
    main(sys.argv[1:])
