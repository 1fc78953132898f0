"""The local test rig: where it keeps its builds and which versions it pins (versions.env)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

RIG_DIR = Path(__file__).resolve().parent
RIG_CACHE = Path(os.environ.get("CTI_RIG_CACHE", Path.home() / ".cache" / "cti-misp-rig"))

_BINARY_VERSIONS = {
    "kube-apiserver": "K8S_VERSION",
    "kubectl": "K8S_VERSION",
    "etcd": "ETCD_VERSION",
    "kwok": "KWOK_VERSION",
    "kwokctl": "KWOK_VERSION",
    "helm": "HELM_VERSION",
}


def versions() -> dict[str, str]:
    """The pins of versions.env, the single source the shell scripts read too."""
    pins = {}
    for line in (RIG_DIR / "versions.env").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip()
    return pins


def rig_binary(name: str) -> Path:
    """Path of a binary built by build.sh, e.g. ``rig_binary("helm")``."""
    return RIG_CACHE / "bin" / f"{name}-{versions()[_BINARY_VERSIONS[name]]}"


def rig_image(name: str) -> str:
    """Digest-pinned reference of an image that images.sh built and pushed, e.g. ``rig_image("tools")``."""
    built = json.loads((RIG_CACHE / "images" / "images.json").read_text())
    return f"{built[name]['repository']}@{built[name]['digest']}"


class RigError(RuntimeError):
    """A rig script failed; the message holds the end of its output."""


def cluster_sh(action: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``cluster.sh ACTION`` for the cluster that ``env`` (CTI_RIG_CLUSTER, CTI_RIG_STATE) names."""
    return subprocess.run(
        ["bash", str(RIG_DIR / "cluster.sh"), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cluster_for_tests(env: dict[str, str] | None = None) -> tuple[str, bool]:
    """The cluster of a test session, up: its kubeconfig path, and whether this call started it.

    A cluster that answers is used as it is. One that does not is made anew rather than
    restarted: a killed run's namespaces would come back with etcd's data, and what they hold
    would still be served (a second Ingress for the host under test, say).
    """
    started = cluster_sh("status", env, timeout=60).returncode != 0
    for action in ("down", "up") if started else ("up",):
        done = cluster_sh(action, env, timeout=1800)
        if done.returncode != 0:
            raise RigError(f"tests/rig/cluster.sh {action} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    kubeconfig = lines[-1] if lines else ""
    if not Path(kubeconfig).is_file():
        raise RigError(f"tests/rig/cluster.sh printed no kubeconfig path:\n{done.stdout}{done.stderr}")
    return kubeconfig, started
