"""monitoring on the rig: nothing without the Prometheus Operator's CRDs, the PrometheusRule and
a PodMonitor with the stand-in CRDs (targets/monitoring/files), and promtool (built by
tests/rig/build-promtool.sh) checking and unit-testing the alert rules taken from the cluster.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from tests.integration._helpers import temporary_namespace

pytestmark = pytest.mark.rig

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(__file__).parent / "targets" / "monitoring"
CRDS = yaml.safe_load((TARGET / "files" / "prometheus-operator-crds.yaml").read_text())["items"]
CRON_JOB = "misp-cron-fetchfeed-29000000"
ALERTS = ["MispFrontendDown", "MispWorkersUnavailable", "MispCronJobFailed", "MispBackupLate"]


@pytest.fixture(scope="module")
def ns(api):
    yield from temporary_namespace(api, "mon-test")


def crds_present(ext):
    names = {crd["metadata"]["name"] for crd in CRDS}
    return names & {crd.metadata.name for crd in ext.list_custom_resource_definition().items}


@pytest.fixture
def stand_in_crds(api):
    ext = client.ApiextensionsV1Api(api)
    for crd in CRDS:
        ext.create_custom_resource_definition(crd)
    deadline = time.monotonic() + 60
    for crd in CRDS:
        name = crd["metadata"]["name"]
        while not any(
            c.type == "Established" and c.status == "True"
            for c in ext.read_custom_resource_definition(name).status.conditions or []
        ):
            assert time.monotonic() < deadline, f"{name} never became established"
            time.sleep(0.5)
    yield
    for crd in CRDS:
        ext.delete_custom_resource_definition(crd["metadata"]["name"])
    # The API server removes a CRD only after its cleanup has deleted every object of it: alone
    # seconds, but once more than 120 s while the other worker loaded both cores (session 10).
    deadline = time.monotonic() + 300
    while crds_present(ext):
        assert time.monotonic() < deadline, "stand-in CRDs not removed"
        time.sleep(1)


def test_nothing_without_crds(api, run_playbook, env, ns):
    ext = client.ApiextensionsV1Api(api)
    if crds_present(ext):
        pytest.fail("Prometheus Operator CRDs are installed on the rig; this test needs them absent", pytrace=False)
    for check in (False, True):
        run = run_playbook(TARGET / "monitoring.yml", {"monitoring_namespace": ns}, check=check, env=env)
        assert run.rc == 0 and run.changed == 0, run.stdout
        assert "Apply the PrometheusRule and PodMonitors" in run.stdout
    assert not crds_present(ext)


@pytest.fixture(scope="module")
def promtool():
    proc = subprocess.run(
        ["bash", str(REPO / "tests" / "rig" / "build-promtool.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_objects_with_crds(api, run_playbook, env, ns, stand_in_crds, promtool, tmp_path):
    extravars = {
        "monitoring_namespace": ns,
        "monitoring_labels": {"release": "rancher-monitoring"},
        "monitoring_exporters": [{"component": "database", "port": "metrics"}],
    }
    first = run_playbook(TARGET / "monitoring.yml", extravars, env=env)
    assert first.rc == 0 and first.changed == 1, first.stdout + first.stderr
    for check in (False, True):
        again = run_playbook(TARGET / "monitoring.yml", extravars, check=check, env=env)
        assert again.rc == 0 and again.changed == 0, again.stdout

    dyn = DynamicClient(api)
    rule = dyn.resources.get(api_version="monitoring.coreos.com/v1", kind="PrometheusRule").get(
        name="misp", namespace=ns
    )
    assert rule.metadata.labels["release"] == "rancher-monitoring"
    groups = rule.to_dict()["spec"]["groups"]
    assert [r["alert"] for r in groups[0]["rules"]] == ALERTS
    monitor = dyn.resources.get(api_version="monitoring.coreos.com/v1", kind="PodMonitor").get(
        name="misp-database", namespace=ns
    )
    assert monitor.spec.selector.matchLabels["app.kubernetes.io/component"] == "database"
    assert monitor.spec.podMetricsEndpoints[0].port == "metrics"

    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    check = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 4 rules found" in check.stdout

    tests_file = tmp_path / "rules_test.yml"
    tests_file.write_text(yaml.safe_dump(unit_tests(ns)))
    unit = subprocess.run([promtool, "test", "rules", str(tests_file)], capture_output=True, text=True, check=False)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def unit_tests(ns):
    """promtool unit tests: each alert fires on the series of a failure and stays quiet otherwise."""

    def series(name, values, **labels):
        matchers = ",".join(f'{key}="{value}"' for key, value in {"namespace": ns, **labels}.items())
        return {"series": f"{name}{{{matchers}}}", "values": values}

    def alert(name, severity, annotations, **labels):
        return {"exp_labels": {"severity": severity, "namespace": ns, **labels}, "exp_annotations": annotations}

    frontend = {
        "summary": f"MISP is down: no frontend replica is available in {ns}",
        "description": "No available replica of the MISP frontend Deployments for 5m.",
    }
    backup_late = alert(
        "MispBackupLate",
        "critical",
        {
            "summary": f"MISP backup is late in {ns}",
            "description": "No successful run of CronJob misp-backup in the last 26 hours.",
        },
        cronjob="misp-backup",
    )
    return {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("kube_deployment_status_replicas_available", "2 2 0x20", deployment="misp-frontend-blue"),
                    series("kube_deployment_status_replicas_available", "0x22", deployment="misp-frontend-green"),
                    series("kube_deployment_status_replicas_unavailable", "0 0 1x20", deployment="misp-workers"),
                    series("kube_job_status_failed", "0 1x21", job_name=CRON_JOB),
                    series("kube_job_status_failed", "1x22", job_name="misp-update-1"),
                    series(
                        "kube_job_owner",
                        "1x22",
                        job_name=CRON_JOB,
                        owner_kind="CronJob",
                        owner_name="misp-cron-fetchfeed",
                        owner_is_controller="true",
                    ),
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "MispFrontendDown", "exp_alerts": []},
                    {"eval_time": "6m", "alertname": "MispFrontendDown", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "MispFrontendDown",
                        "exp_alerts": [{"exp_labels": {"severity": "critical"}, "exp_annotations": frontend}],
                    },
                    {"eval_time": "10m", "alertname": "MispWorkersUnavailable", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "MispWorkersUnavailable",
                        "exp_alerts": [
                            alert(
                                "MispWorkersUnavailable",
                                "warning",
                                {
                                    "summary": f"MISP background workers are short in {ns}",
                                    "description": "1 replica(s) of misp-workers unavailable for 15m: jobs queue up.",
                                },
                                deployment="misp-workers",
                            )
                        ],
                    },
                    {
                        "eval_time": "5m",
                        "alertname": "MispCronJobFailed",
                        "exp_alerts": [
                            alert(
                                "MispCronJobFailed",
                                "warning",
                                {
                                    "summary": "MISP scheduled task misp-cron-fetchfeed failed",
                                    "description": f"Job {CRON_JOB} of CronJob misp-cron-fetchfeed in {ns} has failed"
                                    " pods.",
                                },
                                job_name=CRON_JOB,
                                owner_name="misp-cron-fetchfeed",
                            )
                        ],
                    },
                ],
            },
            {
                # Backups: one succeeded at 0h and nothing since; a CronJob created at 0h never succeeded.
                "interval": "1h",
                "input_series": [
                    series("kube_cronjob_status_last_successful_time", "0x30", cronjob="misp-backup"),
                ],
                "alert_rule_test": [
                    {"eval_time": "25h", "alertname": "MispBackupLate", "exp_alerts": []},
                    {
                        "eval_time": "27h",
                        "alertname": "MispBackupLate",
                        "exp_alerts": [backup_late],
                    },
                ],
            },
            {
                "interval": "1h",
                "input_series": [series("kube_cronjob_created", "0x30", cronjob="misp-backup")],
                "alert_rule_test": [
                    {"eval_time": "20h", "alertname": "MispBackupLate", "exp_alerts": []},
                    {
                        "eval_time": "27h",
                        "alertname": "MispBackupLate",
                        "exp_alerts": [backup_late],
                    },
                ],
            },
        ],
    }
