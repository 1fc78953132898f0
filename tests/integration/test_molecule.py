"""Runs every molecule scenario (`molecule test`: create, converge, idempotence, verify, destroy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))


@pytest.mark.slow
@pytest.mark.rig
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario, k8s_cluster):
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    # Cluster scenarios reach the rig the way plays do (docs/development.md).
    env["K8S_AUTH_KUBECONFIG"] = k8s_cluster["kubeconfig"]
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "molecule"), "test", "-s", scenario],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-20000:])
    assert proc.returncode == 0, f"molecule test -s {scenario} failed (output above)"
