"""What the benchmarks share: commands run from the repository root, and the median of runs."""

from __future__ import annotations

import datetime
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


def new_logdir(state: Path, name: str) -> tuple[datetime.datetime, Path]:
    """When this run started, and a new directory for its outputs under ``state/name``."""
    started = datetime.datetime.now(datetime.UTC)
    logdir = state / name / started.strftime("%Y%m%dT%H%M%S")
    logdir.mkdir(parents=True)
    return started, logdir


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the first column left-aligned, the others right-aligned (numbers)."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
