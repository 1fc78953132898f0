"""playbooks/healthcheck.yml on the rig: MISP-named Deployments in a namespace of their own and a
real supervisord running stand-in workers. Each failure case breaks one part, checks that the
report names it (and only it), and repairs it.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.rig.peers.supervisord import Supervisord

PLAYBOOK = "playbooks/healthcheck.yml"
LABELS = {"app.kubernetes.io/part-of": "misp"}
POD = {
    "automountServiceAccountToken": False,
    "containers": [{"name": "stand-in", "image": "stand-in"}],
}


def available(dyn, ns, name, replicas, timeout=120):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deadline = time.monotonic() + timeout
    while (deployments.get(namespace=ns, name=name).status.availableReplicas or 0) != replicas:
        assert time.monotonic() < deadline, f"{name} never had {replicas} available replicas"
        time.sleep(1)


@pytest.fixture(scope="module")
def ns(dyn):
    """A converged MISP stand-in: frontend and workers Deployments available, one CronJob."""
    name = f"ops-health-{secrets.token_hex(3)}"
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"metadata": {"name": name}})
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    for deployment, component in (("misp-frontend-blue", "frontend"), ("misp-workers", "workers")):
        sel = {**LABELS, "app.kubernetes.io/component": component, "app.kubernetes.io/name": deployment}
        deployments.create(
            namespace=name,
            body={
                "metadata": {"name": deployment, "labels": sel},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": sel},
                    "template": {"metadata": {"labels": sel}, "spec": POD},
                },
            },
        )
    dyn.resources.get(api_version="batch/v1", kind="CronJob").create(
        namespace=name,
        body={
            "metadata": {"name": "misp-cron-pullall", "labels": {**LABELS, "app.kubernetes.io/component": "cron"}},
            "spec": {
                "schedule": "0 * * * *",
                "suspend": True,
                "jobTemplate": {"spec": {"template": {"spec": {**POD, "restartPolicy": "Never"}}}},
            },
        },
    )
    for deployment in ("misp-frontend-blue", "misp-workers"):
        available(dyn, name, deployment, 1)
    yield name
    namespaces.delete(name=name)


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory):
    peer = Supervisord(tmp_path_factory.mktemp("supervisord"))
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def check(k8s_cluster, run_playbook, ns, supervisor):
    def call():
        return run_playbook(
            PLAYBOOK,
            {
                "misp_namespace": ns,
                "cti_kubeconfig": k8s_cluster["kubeconfig"],
                "misp_healthcheck_supervisor_url": supervisor.url,
                # supervisord runs on loopback here, not in a pod.
                "misp_healthcheck_port_forward": False,
                "misp_healthcheck_supervisor_user": supervisor.user,
                "misp_healthcheck_supervisor_password": supervisor.password,
                # Longhorn's CRDs exist on the rig; its volumes there belong to other tests.
                "misp_healthcheck_longhorn_namespace": ns,
            },
        )

    return call


def unhealthy(result) -> str:
    """The parts the failure message names (the YAML callback quotes the message)."""
    tail = result.stdout.partition("Unhealthy: ")[2]
    return tail.splitlines()[0].rstrip("'") if tail else ""


def test_healthy(check, supervisor):
    result = check()
    assert result.rc == 0, result.stdout
    for part in ("misp frontend", "misp workers queue default", "cronjob misp-cron-pullall", "node "):
        assert part in result.stdout
    assert supervisor.password not in result.stdout + result.stderr


def test_stopped_worker(check, supervisor):
    supervisor.rpc().supervisor.stopProcess("misp-workers:email_00")
    try:
        result = check()
    finally:
        supervisor.rpc().supervisor.startProcess("misp-workers:email_00")
    assert result.rc != 0
    assert unhealthy(result) == "misp workers queue email: 0 running, 1 wanted", result.stdout


def test_frontend_scaled_to_zero(check, dyn, ns):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.patch(
        namespace=ns,
        name="misp-frontend-blue",
        body={"spec": {"replicas": 0}},
        content_type="application/merge-patch+json",
    )
    try:
        available(dyn, ns, "misp-frontend-blue", 0)
        result = check()
    finally:
        deployments.patch(
            namespace=ns,
            name="misp-frontend-blue",
            body={"spec": {"replicas": 1}},
            content_type="application/merge-patch+json",
        )
        available(dyn, ns, "misp-frontend-blue", 1)
    assert result.rc != 0
    assert unhealthy(result) == "misp frontend: 0 available replicas in misp-frontend-blue", result.stdout


def test_late_cronjob(check, dyn, ns):
    cronjobs = dyn.resources.get(api_version="batch/v1", kind="CronJob")
    now = datetime.now(UTC)
    # Unsuspended, the CronJob controller starts any run it missed, and kwok completes it at once:
    # a fresh success would hide the late one. Recording a schedule of now leaves none missed,
    # unless the hour turns while the check runs.
    until_next_hour = 3600 - (now.minute * 60 + now.second)
    if until_next_hour < 120:
        time.sleep(until_next_hour + 2)
        now = datetime.now(UTC)
    last = (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cronjobs.status.patch(
        namespace=ns,
        name="misp-cron-pullall",
        body={"status": {"lastSuccessfulTime": last, "lastScheduleTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}},
        content_type="application/merge-patch+json",
    )
    cronjobs.patch(
        namespace=ns,
        name="misp-cron-pullall",
        body={"spec": {"suspend": False}},
        content_type="application/merge-patch+json",
    )
    try:
        result = check()
    finally:
        cronjobs.patch(
            namespace=ns,
            name="misp-cron-pullall",
            body={"spec": {"suspend": True}},
            content_type="application/merge-patch+json",
        )
    assert result.rc != 0
    # Hourly schedule: one hour of gap plus the default grace of one hour.
    assert unhealthy(result).startswith(f"cronjob misp-cron-pullall: last success {last}, "), result.stdout
    assert unhealthy(result).endswith("s ago, allowed 7200s"), result.stdout
