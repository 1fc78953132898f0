"""Runs a role-rendering playbook of these unit tests into a fresh output directory."""

from __future__ import annotations

from pathlib import Path

from tests.playbook import PlaybookResult, ansible_playbook

INVENTORY = Path(__file__).parent / "inventory.yml"


def render_playbook(playbook: Path, out: Path, **variables) -> PlaybookResult:
    """Run ``playbook`` with ``out_dir`` set to ``out`` (created here) and MISP's base URL set."""
    out.mkdir()
    extravars = {"misp_base_url": "https://misp.example.org", "out_dir": str(out), **variables}
    return ansible_playbook(playbook, extravars, env={"ANSIBLE_INVENTORY": str(INVENTORY)}, timeout=300)
