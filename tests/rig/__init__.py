"""The local test rig: where it keeps its builds and which versions it pins (versions.env)."""

from __future__ import annotations

import json
import os
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
