"""The rig keeps its cluster when a component dies: `cluster.sh up` starts what stopped (control
plane and real node alike) instead of deleting and recreating the cluster, so every object keeps
its UID; pid files a killed run left behind are not taken for its components; a test session
makes a cluster it finds dead anew. Runs on a cluster and state directory of its own, so the
shared cluster is untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.rig import RIG_CACHE, RIG_DIR, cluster_for_tests, rig_binary

pytestmark = pytest.mark.rig


@pytest.fixture(scope="module")
def cluster():
    state = RIG_CACHE / "state-restart-test"
    env = {**os.environ, "CTI_RIG_STATE": str(state), "CTI_RIG_CLUSTER": "cti-misp-restart-test"}

    def sh(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(RIG_DIR / "cluster.sh"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    up = sh("up")
    assert up.returncode == 0, up.stderr[-3000:]
    yield sh, state, up.stdout.strip().splitlines()[-1], env
    down = sh("down", timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]


def kubectl(kubeconfig: str, *args: str) -> str:
    out = subprocess.run(
        [str(rig_binary("kubectl")), "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def kill(pid_file: Path) -> int:
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    for _attempt in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        time.sleep(0.1)
    pytest.fail(f"pid {pid} of {pid_file} did not die")


def test_dead_components_are_restarted_and_objects_keep_their_uids(cluster):
    sh, state, kubeconfig, _env = cluster
    name = f"keep-{uuid.uuid4().hex[:6]}"
    kubectl(kubeconfig, "create", "configmap", name, "--from-literal=k=v")
    uids = {
        ref: kubectl(kubeconfig, "get", *ref.split(), "-o", "jsonpath={.metadata.uid}")
        for ref in (f"configmap {name}", "node rig-node-1", "-n kube-system deployment coredns")
    }
    pids = state / "kwok" / "clusters" / "cti-misp-restart-test" / "pids"
    kill(pids / "kube-apiserver.pid")
    kill(state / "node" / "run" / "kubelet.pid")
    assert (
        subprocess.run(
            [str(rig_binary("kubectl")), "--kubeconfig", kubeconfig, "get", "--raw", "/readyz"],
            capture_output=True,
            check=False,
        ).returncode
        != 0
    ), "the API server still answers after it was killed"

    up = sh("up")
    assert up.returncode == 0, up.stderr[-3000:]
    assert "creating it anew" not in up.stderr
    for ref, uid in uids.items():
        assert kubectl(kubeconfig, "get", *ref.split(), "-o", "jsonpath={.metadata.uid}") == uid, ref
    assert kubectl(kubeconfig, "get", "configmap", name, "-o", "jsonpath={.data.k}") == "v"
    assert sh("status").returncode == 0
    status = subprocess.run(
        ["bash", str(RIG_DIR / "node.sh"), "status"],
        env={**os.environ, "CTI_RIG_STATE": str(state), "CTI_RIG_CLUSTER": "cti-misp-restart-test"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stderr


def test_a_killed_runs_pid_files_naming_other_processes_neither_stop_them_nor_pass_for_components(cluster):
    sh, state, kubeconfig, _env = cluster
    node_uid = kubectl(kubeconfig, "get", "node", "rig-node-1", "-o", "jsonpath={.metadata.uid}")
    # Every process of the run dies (as when a CI machine is stopped); after a reboot, the pids in
    # its pid files may be other processes'. One such process stands for all of them.
    pid_files = [*(state / "node" / "run").glob("*.pid"), *(state / "kwok" / "clusters").glob("*/pids/*.pid")]
    assert {f.stem for f in pid_files} >= {"containerd", "kubelet", "etcd", "kube-apiserver"}, pid_files
    for pid_file in pid_files:
        kill(pid_file)
    subprocess.run(["pkill", "-9", "-f", "--", f"-address {state}/node/run/containerd.sock"], check=False)
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        for pid_file in pid_files:
            pid_file.write_text(str(other.pid))

        up = sh("up")
        assert up.returncode == 0, up.stderr[-3000:]
        assert other.poll() is None, "up stopped a process that is not the rig's"
        assert "creating it anew" not in up.stderr
        assert kubectl(kubeconfig, "get", "node", "rig-node-1", "-o", "jsonpath={.metadata.uid}") == node_uid
        for component in ("containerd", "kubelet"):
            assert f"starting {component}" in up.stderr, up.stderr
            pid = (state / "node" / "run" / f"{component}.pid").read_text().strip()
            assert f"{state}/node/" in Path(f"/proc/{pid}/cmdline").read_text()

        assert sh("down").returncode == 0
        assert other.poll() is None, "down stopped a process that is not the rig's"
        up = sh("up")
        assert up.returncode == 0, up.stderr[-3000:]
    finally:
        other.kill()
        other.wait()


def test_a_test_session_makes_a_cluster_it_finds_dead_anew(cluster):
    _sh, state, kubeconfig, env = cluster
    # What a killed run left: a namespace whose objects would come back with a restart.
    name = f"left-{uuid.uuid4().hex[:6]}"
    kubectl(kubeconfig, "create", "namespace", name)
    kill(state / "kwok" / "clusters" / "cti-misp-restart-test" / "pids" / "kube-apiserver.pid")

    path, started = cluster_for_tests(env)
    assert (path, started) == (kubeconfig, True)
    assert f"namespace/{name}" not in kubectl(kubeconfig, "get", "namespaces", "-o", "name").split()
    # One that answers is used as it is.
    assert cluster_for_tests(env) == (kubeconfig, False)
