"""ansible-playbook for the tests, unit and integration alike: run a playbook, read its recap."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from tests.rig.peers._base import REPO, VENV_BIN

# A PLAY RECAP line: "localhost   : ok=2    changed=1    unreachable=0    failed=0 ...".
_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)
RECAP_KEYS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


class PlaybookResult(NamedTuple):
    """What one ansible-playbook run gave; unpacks as ``rc, stdout, stderr, recap``."""

    rc: int
    stdout: str
    stderr: str
    # The PLAY RECAP summed over all hosts: every key of RECAP_KEYS, 0 when absent.
    recap: dict[str, int]

    @property
    def changed(self) -> int:
        return self.recap["changed"]

    @property
    def failed(self) -> int:
        return self.recap["failed"]


def parse_recap(stdout: str) -> dict[str, int]:
    totals = dict.fromkeys(RECAP_KEYS, 0)
    recap = stdout.rpartition("PLAY RECAP")[2]
    for match in _RECAP_LINE.finditer(recap):
        for pair in match["counts"].split():
            key, value = pair.split("=")
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def ansible_playbook(
    playbook_path: str | os.PathLike,
    extravars: dict,
    check: bool = False,
    env: dict[str, str] | None = None,
    diff: bool = False,
    timeout: float = 900,
) -> PlaybookResult:
    """Run ``.venv/bin/ansible-playbook`` from the repository root and return its result.

    - ``playbook_path``: absolute, or relative to the repository root.
    - ``extravars``: any JSON-serialisable dict, passed as ``-e @file`` through a temporary
      file readable only by this user and deleted afterwards, never on the command line
      (it may hold secrets).
    - ``check``: adds ``--check``.
    - ``diff``: adds ``--diff``.
    - ``env``: variables set on top of this process's environment (``ANSIBLE_*``,
      ``K8S_AUTH_*``...). Colour is always off so the output can be parsed.
    - ``timeout``: seconds before the run is killed (``subprocess.TimeoutExpired`` is raised).

    The repository's ansible.cfg applies (collections from .venv, inventory
    ``inventories/local``). A failing play is not an exception: look at ``rc`` (non-zero) and
    ``recap``; ``stdout``/``stderr`` are the full text output for assertion messages. ``recap``
    is the PLAY RECAP summed over hosts, with every key of ``RECAP_KEYS`` present (all 0 when
    the playbook did not get to run).
    """
    run_env = {**os.environ, **(env or {}), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    with tempfile.TemporaryDirectory(prefix="cti-extravars-") as tmp:
        # TemporaryDirectory is created 0700, so the file inside is private to this user.
        vars_file = Path(tmp) / "extravars.json"
        vars_file.write_text(json.dumps(extravars))
        cmd = [str(VENV_BIN / "ansible-playbook"), str(playbook_path), "-e", f"@{vars_file}"]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, parse_recap(proc.stdout))
