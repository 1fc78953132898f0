"""The log_shipping role's Fluent Bit Lua filter, executed for real by Lua 5.4 through a harness
that calls it the way Fluent Bit does, on sample MISP log lines; and the role's ConfigMap, which
must carry that exact file.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
REDACT = REPO / "roles" / "log_shipping" / "files" / "redact.lua"
TARGET = Path(__file__).parent / "targets" / "log_shipping"
LUA = shutil.which("lua5.4")
SAMPLES = yaml.safe_load((TARGET / "samples.yml").read_text())


def run_filter(lines):
    if LUA is None:
        pytest.fail("lua5.4 is not installed (Debian package lua5.4)", pytrace=False)
    proc = subprocess.run(
        [LUA, str(TARGET / "harness.lua"), str(REDACT), "redact"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    records, current = [], None
    for line in proc.stdout.splitlines():
        if line.startswith("code "):
            code, ts = line.split()[1:]
            current = {"code": int(code), "ts": ts, "fields": {}}
        elif line == "end":
            records.append(current)
        else:
            path, _sep, value = line.partition("\t")
            current["fields"][path] = value
    assert len(records) == len(lines), proc.stdout + proc.stderr
    return records


def test_samples():
    records = run_filter([sample["line"] for sample in SAMPLES])
    for sample, record in zip(SAMPLES, records, strict=True):
        line, gone, kept = sample["line"], sample["gone"], sample["kept"]
        log = record["fields"]["log"]
        for secret in gone:
            assert secret not in log, f"{secret!r} survived in {log!r}"
        for text in kept:
            assert text in log, f"{text!r} lost from {log!r}"
        assert record["code"] == (2 if gone else 0), line
        assert ("[REDACTED]" in log) == bool(gone)
        # The timestamp and the rest of the record are passed through.
        assert record["ts"] == "1700000000.25"
        assert record["fields"]["kubernetes.pod_name"] == "misp-frontend-7d9c-x2x"
        assert record["fields"]["kubernetes.labels.app.kubernetes.io/component"] == "frontend"
        assert record["fields"]["stream"] == "stdout"


def test_nested_fields():
    (record,) = run_filter(["FIELDS"])
    fields = record["fields"]
    assert record["code"] == 2
    assert fields["password"] == "[REDACTED]"
    assert fields["request.Authorization"] == "[REDACTED]"
    assert fields["request.body"] == "token=[REDACTED]&name=ok"
    assert fields["request.path"] == "/events/add"
    assert fields["headers.1.value"] == "MISP-abc=[REDACTED]"
    assert fields["log"] == "POST /events/add 200"


@pytest.mark.rig
def test_configmap_carries_the_filter(k8s_cluster, run_playbook):
    core = client.CoreV1Api(config.new_client_from_config(config_file=k8s_cluster["kubeconfig"]))
    agent_ns = f"ls-test-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": agent_ns}})
    env = {"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]}
    extravars = {
        "log_shipping_enabled": True,
        "log_shipping_agent_namespace": agent_ns,
        "log_shipping_misp_namespace": "molecule-misp",
        "log_shipping_output": "syslog",
        "log_shipping_endpoint": {"host": "siem.example.org", "port": 6514},
    }
    try:
        bad = run_playbook(
            TARGET / "shipping.yml", {**extravars, "log_shipping_endpoint": {"host": "", "port": 6514}}, env=env
        )
        assert bad.rc != 0 and bad.changed == 0 and '"host": ""' in bad.stdout
        first = run_playbook(TARGET / "shipping.yml", extravars, env=env)
        assert first.rc == 0 and first.changed == 1, first.stdout
        again = run_playbook(TARGET / "shipping.yml", extravars, env=env)
        assert again.rc == 0 and again.changed == 0, again.stdout
        data = core.read_namespaced_config_map("misp-log-shipping", agent_ns).data
        assert data["redact.lua"].strip() == REDACT.read_text().strip()
        conf = data["fluent-bit.conf"]
        assert "Path              /var/log/containers/*_molecule-misp_*.log" in conf
        assert "script            /fluent-bit/etc/misp/redact.lua" in conf
        assert "Name              syslog" in conf and "Host              siem.example.org" in conf
        assert "Mode              tls" in conf and "tls.verify        On" in conf
        assert "[PARSER]" in data["parsers.conf"]
        off = run_playbook(TARGET / "shipping.yml", {**extravars, "log_shipping_enabled": False}, env=env)
        assert off.rc == 0 and off.changed == 1, off.stdout
        assert not core.list_namespaced_config_map(agent_ns, label_selector="app.kubernetes.io/part-of=misp").items
    finally:
        core.delete_namespace(agent_ns)
