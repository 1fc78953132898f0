"""The checkout's ansible.cfg, which every run from it reads (AWX's project runs too): how it
connects to hosts and gathers their facts. bench/hosts measures what each setting saves on the
five-host scenario."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from tests.playbook import ansible_playbook
from tests.rig.peers._base import REPO, VENV_BIN

TWO_PLAYS = Path(__file__).parent / "targets" / "ansible_cfg" / "two_plays.yml"


def test_a_run_gathers_a_hosts_facts_once_and_every_play_has_them():
    result = ansible_playbook(TWO_PLAYS, {})
    assert result.rc == 0, result.stdout + result.stderr
    assert result.stdout.count("TASK [Gathering Facts]") == 1, result.stdout
    hostname = socket.gethostname().split(".")[0]
    assert f"first play: {hostname}" in result.stdout
    assert f"second play: {hostname}" in result.stdout


def test_ssh_runs_each_module_through_one_connection_call():
    # ansible-config reads the checkout's ansible.cfg from the working directory, as playbooks do.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    dump = subprocess.run(
        [str(VENV_BIN / "ansible-config"), "dump", "--only-changed", "-t", "connection", "-f", "json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ssh = next(entry["ssh"] for entry in json.loads(dump) if "ssh" in entry)
    assert {"name": "pipelining", "origin": str(REPO / "ansible.cfg"), "value": True} in ssh, ssh
