"""Requests and wall time to converge 100 MISP settings: misp_settings versus an ansible.builtin.uri loop.

Runs against the MISP stand-in (tests/doubles/misp_api) on loopback, for 0, 5 and 100 settings
that differ, and prints a Markdown table. Run from the repository root:

    .venv/bin/python -m bench.misp_settings.bench [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Also runnable as a plain script: the stand-in is imported from the repository.
sys.path.insert(0, str(REPO))

from tests.doubles.misp_api import MispApiDouble

HERE = Path(__file__).resolve().parent
KEY = "bench-key-0b1c2d3e4f5a6b7c8d9e"
SETTINGS = 100
DIFFERING = (0, 5, 100)
VARIANTS = [
    ("misp_settings (read_strategy=auto: bulk)", "module.yml", {"misp_read_strategy": "auto"}),
    ("misp_settings (read_strategy=each)", "module.yml", {"misp_read_strategy": "each"}),
    ("ansible.builtin.uri loop", "uri_loop.yml", {}),
]


def plain_settings(misp):
    """SETTINGS writable booleans, numerics and strings without options, and a different value for each."""
    chosen = {}
    for name, definition in misp.definitions.items():
        if definition.get("redacted") or definition.get("cli_only") or definition.get("options"):
            continue
        if definition.get("test") in ("testBoolFalse", "testSalt", "testForEncryptionKey", "testBaseURL"):
            continue
        kind, value = definition["type"], misp.settings[name]
        if kind == "boolean":
            chosen[name] = (bool(value), not value)
        elif kind == "numeric" and isinstance(value, int) and not isinstance(value, bool):
            chosen[name] = (value, value + 1)
        elif kind == "string" and definition.get("test") not in ("testForPath", "testLanguage"):
            chosen[name] = (value or "x", (value or "x") + "-bench")
        if len(chosen) == SETTINGS:
            return chosen
    raise SystemExit(f"the stand-in has fewer than {SETTINGS} plain settings")


def run_once(playbook, extravars, differing, workdir):
    with MispApiDouble(api_key=KEY) as misp:
        chosen = plain_settings(misp)
        names = list(chosen)
        # Wanted = current for all but the first `differing` settings.
        wanted = {name: chosen[name][1] if i < differing else chosen[name][0] for i, name in enumerate(names)}
        misp.set_values({name: chosen[name][0] for name in names})
        varfile = workdir / "vars.json"
        varfile.write_text(
            json.dumps({"misp_url": misp.url, "misp_api_key": KEY, "misp_settings_wanted": wanted, **extravars})
        )
        start = time.monotonic()
        proc = subprocess.run(
            [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(HERE / playbook), "-e", f"@{varfile}"],
            cwd=REPO,
            env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.null"),
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - start
        if proc.returncode:
            raise SystemExit(f"{playbook} failed:\n{proc.stdout}\n{proc.stderr}")
        wrong = [name for name in names if misp.settings[name] != wanted[name]]
        if wrong:
            raise SystemExit(f"{playbook} left {len(wrong)} settings unconverged, e.g. {wrong[:3]}")
        gets = sum(1 for r in misp.requests if r[0] == "GET")
        return gets, len(misp.posts()), elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the median time is shown")
    args = parser.parse_args(argv)
    print(f"| differing of {SETTINGS} | method | GET | POST | wall time (s, median of {args.repeat}) |")
    print("|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for differing in DIFFERING:
            for label, playbook, extravars in VARIANTS:
                runs = [run_once(playbook, extravars, differing, Path(tmp)) for _run in range(args.repeat)]
                gets, posts, _elapsed = runs[0]
                median = statistics.median(r[2] for r in runs)
                print(f"| {differing} | {label} | {gets} | {posts} | {median:.1f} |", flush=True)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
