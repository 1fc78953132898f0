"""What the benchmarks share: commands run from the repository root, and the median of runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(argv, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False, **kwargs)


def must(argv, env=None, **kwargs) -> str:
    result = run(argv, env=env, **kwargs)
    if result.returncode:
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def median_sample(samples: list[dict]) -> dict:
    """The run of median wall time, with every wall time kept."""
    ordered = sorted(samples, key=lambda s: s["wall_s"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["wall_s_all"] = [s["wall_s"] for s in samples]
    return chosen
