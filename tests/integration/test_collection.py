"""The collection as a user gets it: built, installed, documented (inventories: test_inventories.py)."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
MODULES = (
    "k8s_apply",
    "k8s_info",
    "longhorn_volume",
    "misp_settings",
    "misp_worker_status",
    "vault_kv2_get",
    "vault_read",
)


def run(*cmd: str, cwd: Path = REPO, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    run(str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out))
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    tarball = out / f"cti-misp_platform-{version}.tar.gz"
    assert tarball.is_file()
    return tarball


def test_tarball_holds_the_collection_and_nothing_local(built):
    with tarfile.open(built) as tar:
        names = set(tar.getnames())
    for module in MODULES:
        assert f"plugins/modules/{module}.py" in names
    assert "meta/runtime.yml" in names
    assert "roles/misp_frontend/meta/argument_specs.yml" in names
    assert not [n for n in names if n.startswith((".venv", ".git/", "tests/output"))]


def test_tarball_installs_into_an_empty_path_and_documents_its_modules(built, tmp_path):
    dest = tmp_path / "collections"
    # Outside the checkout and its ansible.cfg, so only the installed copy can answer.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(dest), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    run(
        str(BIN / "ansible-galaxy"),
        "collection",
        "install",
        "--no-deps",
        "-p",
        str(dest),
        str(built),
        cwd=tmp_path,
        env=env,
    )
    installed = dest / "ansible_collections" / "cti" / "misp_platform"
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["namespace"] == "cti"
    assert manifest["collection_info"]["name"] == "misp_platform"
    listing = json.loads(
        run(str(BIN / "ansible-doc"), "-t", "module", "-l", "cti.misp_platform", "--json", cwd=tmp_path, env=env)
    )
    assert sorted(listing) == [f"cti.misp_platform.{m}" for m in MODULES]


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_each_module(module):
    text = run(str(BIN / "ansible-doc"), f"cti.misp_platform.{module}")
    assert "EXAMPLES:" in text
    assert "RETURN VALUES:" in text
