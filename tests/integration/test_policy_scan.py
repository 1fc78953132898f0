"""Policy scan and least privilege over what the roles render (issue 22).

One render of every role's Kubernetes object templates (targets/policy_scan/render.yml: each
role's defaults and vars, every optional secret on, no cluster) is shared by all tests here:

- checkov 3.3.30's Kubernetes checks (its own venv, .venv/checkov, see scripts/bootstrap.sh) run
  with no network at all (a network namespace of their own), and every failed check must be
  accepted by targets/policy_scan/checkov-skips.yml, each entry with its reason; an entry that
  no longer matches a finding fails too, so the list never outlives its reasons;
- each container's environment and mounts hold exactly the secrets docs/identity.md lists for it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.playbook import ansible_playbook
from tests.rig.peers._base import REPO

TARGET = REPO / "tests/integration/targets/policy_scan"
CHECKOV = REPO / ".venv/checkov/bin/checkov"
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    result = ansible_playbook(TARGET / "render.yml", {"out_dir": str(out), "repo_dir": str(REPO)}, timeout=600)
    assert result.rc == 0, result.stdout[-4000:]
    return out


def objects(directory: Path) -> list[dict]:
    return [obj for f in sorted(directory.rglob("*.yaml")) for obj in yaml.safe_load_all(f.read_text()) if obj]


def checkov(directory: Path) -> dict:
    """checkov's JSON report of ``directory``, run in a network namespace with no interface up."""
    assert CHECKOV.exists(), f"{CHECKOV} missing: run scripts/bootstrap.sh"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
    cmd = [str(CHECKOV), "-d", str(directory), "--framework", "kubernetes", "--skip-download", "-o", "json", "--quiet"]
    if shutil.which("unshare"):
        cmd = ["unshare", "--net", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    # rc 1 means findings; anything else is a failure of checkov itself.
    assert result.returncode in (0, 1), result.stderr[-4000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def unaccepted(report: dict, skips: list[dict]) -> tuple[list[str], list[str]]:
    """Findings no skip accepts, and skip patterns that accept nothing."""
    failed = [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]]
    used: set[tuple[str, str]] = set()
    new = []
    for check, resource in failed:
        patterns = [(s["check"], p) for s in skips if s["check"] == check for p in s["resources"]]
        match = [(c, p) for c, p in patterns if fnmatch.fnmatch(resource, p)]
        used.update(match)
        if not match:
            new.append(f"{check} {resource}")
    stale = [f"{s['check']} {p}" for s in skips for p in s["resources"] if (s["check"], p) not in used]
    return new, stale


@pytest.fixture(scope="module")
def skips() -> list[dict]:
    entries = yaml.safe_load((TARGET / "checkov-skips.yml").read_text())
    for entry in entries:
        assert re.fullmatch(r"CKV_K8S_\d+", entry["check"]), entry
        assert len(entry["reason"].split()) >= 10, f"{entry['check']}: give the reason"
        assert entry["resources"], entry
    return entries


def test_checkov_finds_nothing_beyond_the_reasoned_skips(rendered, skips):
    report = checkov(rendered)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, summary
    workloads = [o for o in objects(rendered) if o["kind"] in WORKLOADS]
    assert summary["resource_count"] >= len(workloads) > 15, summary
    assert summary["passed"] > 1000, summary
    new, stale = unaccepted(report, skips)
    assert new == [], f"new checkov findings (fix them, or add a reasoned skip): {new}"
    assert stale == [], f"skips that match no finding any more (remove them): {stale}"


def test_a_new_finding_fails_the_scan(rendered, skips, tmp_path):
    # The same objects plus a frontend that shares the host's network: checkov reports it and
    # no skip accepts it.
    shutil.copytree(rendered, tmp_path / "objects")
    deployment = next(o for o in objects(rendered) if o["metadata"]["name"].startswith("misp-frontend-"))
    deployment["metadata"]["name"] = "misp-frontend-green"
    deployment["spec"]["template"]["spec"]["hostNetwork"] = True
    (tmp_path / "objects" / "extra.yaml").write_text(yaml.safe_dump(deployment))
    new, _stale = unaccepted(checkov(tmp_path / "objects"), skips)
    assert "CKV_K8S_19 Deployment.misp.misp-frontend-green" in new, new


def documented_secrets() -> dict[tuple[str, str], set[str]]:
    """(workload pattern, container) -> secret/key, from docs/identity.md's table."""
    text = (REPO / "docs/identity.md").read_text()
    section = text.split("## Which container gets which secret", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            keys = set(re.findall(r"`(misp-[a-z0-9-]+/[a-z0-9-]+)`", cells[2]))
            assert keys or cells[2] == "none", line
            table[(cells[0].strip("`"), cells[1].strip("`"))] = keys
    assert len(table) > 20, section
    return table


def pod_spec(obj: dict) -> dict:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec if obj["kind"] == "Pod" else spec["template"]["spec"]


def container_secrets(spec: dict, container: dict) -> set[str]:
    """Every Secret key the container can read: env, envFrom (whole Secret: name/*), mounts."""
    keys = set()
    for entry in container.get("env") or []:
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            keys.add(f"{ref['name']}/{ref['key']}")
    keys |= {f"{e['secretRef']['name']}/*" for e in container.get("envFrom") or [] if "secretRef" in e}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})  # a volumeClaimTemplate otherwise
        sources = [{**volume["secret"], "name": volume["secret"]["secretName"]}] if "secret" in volume else []
        sources += [s["secret"] for s in (volume.get("projected") or {}).get("sources", []) if "secret" in s]
        for source in sources:
            items = source.get("items")
            keys |= {f"{source['name']}/{i['key']}" for i in items} if items else {f"{source['name']}/*"}
    return keys


def test_each_container_holds_exactly_its_documented_secrets(rendered):
    documented = documented_secrets()
    seen, wrong = set(), []
    for obj in objects(rendered):
        if obj["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(obj)
        for container in (spec.get("initContainers") or []) + spec["containers"]:
            name = obj["metadata"]["name"]
            rows = [k for k in documented if fnmatch.fnmatch(name, k[0]) and k[1] == container["name"]]
            assert len(rows) == 1, f"{obj['kind']} {name} container {container['name']}: documented as {rows}"
            seen.add(rows[0])
            got = container_secrets(spec, container)
            if got != documented[rows[0]]:
                wrong.append(
                    f"{name}/{container['name']}: extra {sorted(got - documented[rows[0]])}, "
                    f"missing {sorted(documented[rows[0]] - got)}"
                )
    assert wrong == [], wrong
    assert set(documented) - seen == set(), "documented containers that were not rendered"


def test_default_service_account_mounts_no_token(rendered):
    accounts = [o for o in objects(rendered) if o["kind"] == "ServiceAccount"]
    default = [a for a in accounts if a["metadata"]["name"] == "default"]
    assert [a["metadata"]["namespace"] for a in default] == ["misp"], default
    assert all(a.get("automountServiceAccountToken") is False for a in accounts), [
        a["metadata"]["name"] for a in accounts if a.get("automountServiceAccountToken") is not False
    ]
