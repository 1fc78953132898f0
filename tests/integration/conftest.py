"""Fixtures of the integration tests: real peers, the simulated cluster, and ansible-playbook.

Each peer fixture is session-scoped: it starts the real server once (Keycloak takes minutes on a
busy machine), yields its env dict (address and generated credentials, see tests/rig/peers/) and
stops it at the end of the session, checking that nothing of it is left running. A peer that
cannot start fails the tests that need it.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kubernetes import config
from kubernetes.dynamic import DynamicClient

from tests.playbook import ansible_playbook
from tests.rig import RigError, cluster_for_tests, cluster_sh
from tests.rig.peers._base import Peer, PeerError
from tests.rig.peers.keycloak import Keycloak
from tests.rig.peers.mariadb import MariaDB
from tests.rig.peers.openbao import OpenBao
from tests.rig.peers.redis import Redis
from tests.rig.peers.s3 import S3

# --- ansible-playbook ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def run_playbook():
    """The function ``ansible_playbook`` (see its docstring for the contract)."""
    return ansible_playbook


# --- real peers ---------------------------------------------------------------------------------


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def session_alive(sid: int) -> list[int]:
    """Pids of processes still in session ``sid`` (a launcher starts each peer in its own)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after the parenthesised command: state ppid pgrp session ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def check_gone(name: str, sid: int, port: int) -> None:
    """Fail if a process of session ``sid`` still runs or ``port`` still accepts connections."""
    left = session_alive(sid)
    assert not left, f"{name}: processes {left} still running after stop"
    assert not port_open(port), f"{name}: port {port} still open after stop"


@pytest.fixture(scope="session")
def assert_gone():
    """The function ``check_gone(name, sid, port)``, for tests that stop peers themselves."""
    return check_gone


def _peer(peer_cls: type[Peer], tmp_path_factory: pytest.TempPathFactory):
    peer = peer_cls(tmp_path_factory.mktemp(peer_cls.name))
    try:
        env = peer.start()
    except PeerError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield env
    sid = peer.proc.pid
    peer.stop()
    check_gone(peer.name, sid, peer.port)


@pytest.fixture(scope="session")
def openbao(tmp_path_factory):
    """OpenBao dev server: VAULT_ADDR, VAULT_TOKEN (and BAO_ADDR, BAO_TOKEN)."""
    yield from _peer(OpenBao, tmp_path_factory)


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory):
    """Keycloak dev server: KEYCLOAK_URL, KEYCLOAK_ADMIN_USERNAME, KEYCLOAK_ADMIN_PASSWORD (realm master)."""
    yield from _peer(Keycloak, tmp_path_factory)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    """MariaDB: MARIADB_HOST, MARIADB_PORT, MARIADB_USER (root), MARIADB_PASSWORD, MARIADB_SOCKET."""
    yield from _peer(MariaDB, tmp_path_factory)


@pytest.fixture(scope="session")
def redis(tmp_path_factory):
    """Redis without persistence: REDIS_HOST, REDIS_PORT, REDIS_PASSWORD."""
    yield from _peer(Redis, tmp_path_factory)


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """S3Proxy (real S3 API, filesystem store): S3_ENDPOINT, S3_REGION, S3_BUCKET (created empty at start),
    S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY."""
    yield from _peer(S3, tmp_path_factory)


# --- simulated cluster --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def k8s_cluster():
    """The simulated cluster of tests/rig/cluster.sh: ``{"kubeconfig": path}``.

    A cluster that is already up is used and left running at the end; otherwise this fixture
    makes it anew (see ``cluster_for_tests``) and takes it down at the end of the session.
    ``up`` runs either way: it restarts what stopped (a real node's kubelet, say) while the API
    still answers.
    """
    try:
        kubeconfig, started = cluster_for_tests()
    except RigError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield {"kubeconfig": kubeconfig}
    if started:
        down = cluster_sh("down")
        assert down.returncode == 0, f"tests/rig/cluster.sh down failed:\n{down.stderr[-4000:]}"


@pytest.fixture(scope="module")
def api(k8s_cluster):
    """A kubernetes API client for the simulated cluster."""
    return config.new_client_from_config(config_file=k8s_cluster["kubeconfig"])


@pytest.fixture(scope="module")
def dyn(api):
    """A dynamic client (any kind, CRDs included) for the simulated cluster."""
    return DynamicClient(api)


@pytest.fixture(scope="module")
def env(k8s_cluster):
    """Environment that points kubernetes.core (and the plays) at the simulated cluster."""
    return {"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]}
