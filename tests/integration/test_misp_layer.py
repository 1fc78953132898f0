"""The MISP layer runs for real: one converge of inventories/local on the rig's real node.

tests/integration/targets/misp_layer/converge.yml applies the namespace baseline, the Secrets from
Vault (the session's OpenBao), the image admission policy and then playbooks/misp.yml unchanged,
with inventories/local's variables: every MISP pod on rig-node-1 (real kubelet, containerd,
kube-network-policies), every image pinned by digest from the loopback registry (the MISP stand-in
image of tests/rig/images.sh with its PHP double, MariaDB, Redis, tools), misp_config through the
API server's port-forward. The names the rig shares (namespace, KV mount, admission policy and its
namespace selector, the static volumes) are the test's own, so it runs beside the other tests on
the shared cluster.

One converge (module scope), then a second run and a third after a pod is deleted, both changed=0;
every other test reads the pods that converge made. MISP's Ingress is then served for real (issue
17): helm-controller installs the rke2-traefik stand-in chart with real Traefik on the real node
(tests/integration/_ingress.py), the ingress role's HelmChartConfig restarts it, and client pods
reach the layer's frontends over HTTPS. The tests that change the layer come last: a CronJob's runs
on a short schedule with three frontends, a backup to the volume and a restore, a blue/green
upgrade and its rollback, the rotation of the database and Redis passwords (uninterrupted, and
stopped after a step then healed by one run), and a backup to S3Proxy (the S3 target) with a
restore from there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import hvac
import pytest
import yaml
from kubernetes import client

from tests.integration._helpers import rclone
from tests.integration._ingress import (
    HANDSHAKE,
    HOST,
    certificates,
    curl,
    https_get,
    ingress_sh,
    kwok_cordoned,
    ready_traefik,
)
from tests.integration._ingress import (
    PLAYBOOK as INGRESS,
)
from tests.integration.test_rig_nodes import Node
from tests.rig import RIG_CACHE, RIG_DIR, rig_binary, rig_image
from tests.rig.peers._base import REPO

pytestmark = [pytest.mark.rig, pytest.mark.slow]

CONVERGE = "tests/integration/targets/misp_layer/converge.yml"
MODULES = "tests/integration/targets/port_forward/modules.yml"
REAL_NODE = "rig-node-1"
# Owners of the static volumes' host directories: MariaDB and Redis run as 999, MISP's pods and
# the backup Job as www-data (33).
OWNERS = {"data-misp-db-0": 999, "misp-redis": 999}
VOLUMES = REPO / "tests" / "rig" / "static-volumes.yaml"
COUNT_MODULES = REPO / "bench" / "rerun" / "callback_plugins" / "count_modules.py"
# Each converge of the whole layer waits for real pods: minutes on this machine.
CONVERGE_TIMEOUT = 1800
# Roles of the MISP layer that apply Kubernetes objects, and the module processes its idempotent
# re-run may start at most (issue 20, measured; before k8s_apply, one process per object).
APPLYING_ROLES = (
    "misp_common",
    "misp_database",
    "misp_redis",
    "misp_update",
    "misp_frontend",
    "misp_workers",
    "misp_cron",
    "misp_modules",
    "misp_backup",
)
# Module processes of the layer's re-run: none, as k8s_apply, k8s_info, misp_settings and
# misp_worker_status run in the controller (2 while misp_common's read of the Secrets and
# misp_frontend's of its Service were kubernetes.core.k8s_info processes, 4 while misp_config's
# modules were processes too, 18 when k8s_apply was one, 44 with a loop of kubernetes.core.k8s).
MISP_LAYER_MODULE_BUDGET = 0
# Task results of the layer's re-run, skipped ones included: each is a forked worker that loads
# filters and templates the roles' variables again, about 40 ms on the rig. 66 before the checks of
# misp_common and of misp_backup became one task each, the removals part of the applies, the proxy
# credential and extra CA tasks and the update Job's wait includes, and misp_config's reports one.
MISP_LAYER_TASK_BUDGET = 49


def count_modules_env(path):
    """ansible-playbook's environment for bench/rerun's count_modules callback, writing to path."""
    return {
        "ANSIBLE_CALLBACK_PLUGINS": str(COUNT_MODULES.parent),
        "ANSIBLE_CALLBACKS_ENABLED": "count_modules",
        "CTI_BENCH_COUNTS": str(path),
    }


def wait_until(predicate, timeout, what, interval=2.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return value


def static_volumes(core_api, namespace, root):
    """The rig's static volumes (tests/rig/static-volumes.yaml), bound to this namespace's claims
    and backed by host directories of the test's own, owned as a provisioner would make them."""
    storage = client.StorageV1Api(core_api.api_client)
    created = []
    for item in yaml.safe_load(VOLUMES.read_text())["items"]:
        if item["kind"] == "StorageClass":
            if not storage.list_storage_class(field_selector=f"metadata.name={item['metadata']['name']}").items:
                storage.create_storage_class(item)
            continue
        claim = item["spec"]["claimRef"]["name"]
        path = root / claim
        path.mkdir(parents=True)
        uid = OWNERS.get(claim, 33)
        subprocess.run(["chown", f"{uid}:{uid}", str(path)], check=True)
        item["metadata"]["name"] = f"{namespace}-{claim}"
        item["spec"]["claimRef"]["namespace"] = namespace
        item["spec"]["hostPath"] = {"path": str(path), "type": "Directory"}
        core_api.create_persistent_volume(item)
        created.append(item["metadata"]["name"])
    return created


class Layer:
    def __init__(self, api, kubeconfig, namespace, extravars, env):
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.extravars = extravars
        self.env = env
        self.runs = []

    def kubectl(self, *args, timeout=60):
        cmd = [str(rig_binary("kubectl")), "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def exec(self, pod, container, *command, timeout=60):
        return self.kubectl("exec", pod, "-c", container, "--", *command, timeout=timeout)

    def pods(self, component):
        selector = f"app.kubernetes.io/component={component}"
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return sorted((p for p in pods if p.status.phase == "Running"), key=lambda p: p.metadata.name)


def converge(run_playbook, layer, env=None, **options):
    """A run of the layer's converge; ``options`` are run_playbook's (check, diff)."""
    start = time.monotonic()
    result = run_playbook(
        CONVERGE, layer.extravars, env={**layer.env, **(env or {})}, timeout=CONVERGE_TIMEOUT, **options
    )
    layer.runs.append((result, time.monotonic() - start))
    return result


@pytest.fixture(scope="module")
def layer(api, k8s_cluster, openbao, run_playbook, tmp_path_factory):
    suffix = uuid.uuid4().hex[:6]
    namespace = f"misp-layer-{suffix}"
    core = client.CoreV1Api(api)
    vault = hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])
    vault.sys.enable_secrets_engine("kv", path=namespace, options={"version": "2"})
    root = tmp_path_factory.mktemp("volumes")
    volumes = static_volumes(core, namespace, root)
    extravars = {
        "misp_namespace": namespace,
        "vault_kv_mount": namespace,
        "vault_k8s_auth_mount": f"k8s-{namespace}",
        "image_policy_admission_name": namespace,
        # Only this test's namespace: other tests put unpinned images in namespaces labelled for MISP.
        "image_policy_namespace_selector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        # Two frontends (HPA minimum), so that sessions can be checked across replicas.
        "misp_frontend_replicas": 2,
        "misp_frontend_max_replicas": 3,
    }
    env = {
        "K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"],
        "CTI_RIG_STATE": str(Path(k8s_cluster["kubeconfig"]).parent),
        "VAULT_ADDR": openbao["VAULT_ADDR"],
        "VAULT_TOKEN": openbao["VAULT_TOKEN"],
    }
    state = Layer(api, k8s_cluster["kubeconfig"], namespace, extravars, env)
    # The host directories of the static volumes (files, backups), as the node sees them.
    state.volumes = root
    try:
        first = converge(run_playbook, state)
        assert first.rc == 0, first.stdout[-8000:] + first.stderr[-2000:]
        yield state
    finally:
        for (result, seconds), label in zip(state.runs, ("first", "second", "third"), strict=False):
            print(f"converge {label}: {seconds:.0f}s, changed={result.changed}")
        core.delete_namespace(namespace)
        wait_until(
            lambda: not core.list_namespace(field_selector=f"metadata.name={namespace}").items, 300, "namespace gone"
        )
        for name in volumes:
            core.delete_persistent_volume(name)
        client.AdmissionregistrationV1Api(api).delete_validating_admission_policy_binding(namespace)
        client.AdmissionregistrationV1Api(api).delete_validating_admission_policy(namespace)
        vault.sys.disable_secrets_engine(namespace)
        vault.sys.disable_auth_method(f"k8s-{namespace}")


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_every_misp_pod_runs_on_the_real_node_and_is_ready_through_its_probes(layer):
    def settled():
        # The HPA may be adding a frontend under the machine's load: wait until every pod is Ready.
        pods = layer.core.list_namespaced_pod(layer.namespace).items
        running = [p for p in pods if p.status.phase == "Running"]
        return pods if all(_ready(p) for p in running) else None

    # A new frontend Deployment starts with one pod (the HPA owns its replicas, the template sets
    # none) and the HPA brings it to its minimum of two at its next sync (15 s).
    wait_until(lambda: len(layer.pods("frontend")) >= 2, 120, "the HPA's two frontends")
    pods = wait_until(settled, 300, "every running MISP pod Ready")
    # misp-modules has no rig image yet: it keeps no placement and stays on a kwok node.
    running = [
        p
        for p in pods
        if p.status.phase == "Running" and p.metadata.labels.get("app.kubernetes.io/component") != "modules"
    ]
    components = {p.metadata.labels.get("app.kubernetes.io/component") for p in running}
    assert {"frontend", "workers", "database", "redis"} <= components, components
    for pod in running:
        assert pod.spec.node_name == REAL_NODE, (pod.metadata.name, pod.spec.node_name)
        assert _ready(pod), pod.metadata.name
        for container in pod.spec.containers:
            # Pulled by digest from the loopback registry.
            assert container.image.startswith("127.0.0.1:5050/cti-rig/"), container.image
            assert "@sha256:" in container.image, container.image
        # Real probes: the kubelet ran them (a started container counts only after its probes).
        assert all(s.started and s.ready for s in pod.status.container_statuses), pod.metadata.name
        # No liveness probe failed: a probe that cannot reach its process restarts the container.
        restarts = {s.name: s.restart_count for s in pod.status.container_statuses if s.restart_count}
        assert not restarts, (pod.metadata.name, restarts)
    assert len(layer.pods("frontend")) == 2
    # The update Job of this image ran to completion in a pod on the real node.
    jobs = client.BatchV1Api(layer.core.api_client).list_namespaced_job(layer.namespace).items
    update = [j for j in jobs if j.metadata.name.startswith("misp-update-")]
    assert update and update[0].status.succeeded == 1, [j.metadata.name for j in jobs]
    # So did the Jobs that set the servers' passwords on the running servers.
    for prefix in ("misp-db-account-", "misp-redis-account-"):
        (account,) = [j for j in jobs if j.metadata.name.startswith(prefix)]
        assert account.status.succeeded == 1, account.status
    images = {c.image for p in running for c in p.spec.containers}
    assert rig_image("mariadb").split("@")[1] in " ".join(images)


def test_nginx_and_php_fpm_accept_the_pods_own_configuration(layer):
    pod = layer.pods("frontend")[0].metadata.name
    nginx = layer.exec(pod, "nginx", "nginx", "-t", "-c", "/etc/misp-k8s/nginx.conf")
    assert nginx.returncode == 0, nginx.stderr
    assert "syntax is ok" in nginx.stderr and "test is successful" in nginx.stderr, nginx.stderr
    fpm_binary = layer.core.read_namespaced_pod(pod, layer.namespace).spec.containers[1].command[0]
    fpm = layer.exec(pod, "php-fpm", fpm_binary, "-t", "--fpm-config", "/etc/misp-k8s/php-fpm.conf")
    assert fpm.returncode == 0, fpm.stderr
    assert "test is successful" in fpm.stderr, fpm.stderr


def _api_key(layer):
    secret = layer.core.read_namespaced_secret("misp-app", layer.namespace)
    return base64.b64decode(secret.data["admin-api-key"]).decode()


def _curl(layer, pod, *args):
    """curl inside a frontend pod's nginx container, to its own nginx (port 8080)."""
    return layer.exec(pod, "nginx", "curl", "-sS", "--max-time", "10", *args)


def _sql(layer, query):
    """Rows (tab-separated lines) of a query to MISP's database, as root inside the MariaDB pod."""
    db = layer.pods("database")[0].metadata.name
    rows = layer.exec(
        db,
        "mariadb",
        "sh",
        "-c",
        'mariadb -uroot -p"$(cat /run/secrets/misp-database/root-password 2>/dev/null'
        ' || echo "$MARIADB_ROOT_PASSWORD")" -N misp -e "$0"',
        query,
    )
    assert rows.returncode == 0, rows.stderr
    return rows.stdout.splitlines()


def test_misp_config_settings_are_served_from_the_database(layer):
    key = _api_key(layer)
    wanted = {"Security.password_policy_length": 16, "Security.advanced_authkeys": True}
    for pod in layer.pods("frontend"):
        for name, value in wanted.items():
            answer = _curl(
                layer,
                pod.metadata.name,
                "-H",
                f"Authorization: {key}",
                "-H",
                "Accept: application/json",
                f"http://127.0.0.1:8080/servers/getSetting/{name}",
            )
            assert answer.returncode == 0, answer.stderr
            assert json.loads(answer.stdout)["value"] == value, answer.stdout
    # Stored in MISP's database (system_setting_db), where every replica reads it.
    rows = _sql(layer, "SELECT setting, value FROM system_settings WHERE setting LIKE 'Security.%'")
    stored = dict(line.split("\t", 1) for line in rows)
    assert stored.get("Security.password_policy_length") == "16", stored


def _changed_tasks(result):
    """The names of the tasks that reported a change ("role : task")."""
    return re.findall(r"^TASK \[(.*)\] \**\n(?:(?!TASK ).*\n)*?changed: ", result.stdout, re.MULTILINE)


def _diffs(result):
    """The objects --diff showed, each as (its header, the lines it removed or added)."""
    blocks = re.findall(r"^--- before: (.*)\n\+\+\+ after: .*\n((?:[-+@ ].*\n)*)", result.stdout, re.MULTILINE)
    return [(name, [line for line in body.splitlines() if line[:1] in "-+"]) for name, body in blocks]


def _redacted_written(result):
    """What misp_config's report lists as the redacted settings written, e.g. "[]" (the output masks
    the parts of their names that equal a secret, such as the supervisor's user name)."""
    found = re.findall(r"redacted written: (\[[^\]]*\])", result.stdout)
    assert len(found) == 1, result.stdout[-6000:]
    return found[0]


def test_second_run_and_a_run_after_a_pod_is_deleted_change_nothing(run_playbook, layer, tmp_path):
    counts = tmp_path / "counts.jsonl"
    second = converge(run_playbook, layer, env=count_modules_env(counts))
    assert second.rc == 0, second.stdout[-6000:]
    assert second.changed == 0, _changed_tasks(second)
    # Issue 20: each role applies its objects with one k8s_apply run, not one process per object,
    # and the re-run of the MISP layer stays within its count of module processes.
    report = json.loads(counts.read_text().splitlines()[-1])
    for role in APPLYING_ROLES:
        ran = report["per_role"][f"cti.misp_platform.{role}"]
        # The second of misp_database and misp_redis: the Secret of the servers' passwords, under
        # no_log (misp_common's apply deletes the extra CA ConfigMap itself, none being configured).
        twice = role in ("misp_database", "misp_redis")
        assert ran.get("cti.misp_platform.k8s_apply") == 1 + twice, (role, ran)
        assert ran.get("kubernetes.core.k8s", 0) == 0, (role, ran)
    invocations = report["module_invocations_per_play"]["MISP on the cluster"]
    assert invocations <= MISP_LAYER_MODULE_BUDGET, report["per_play"]["MISP on the cluster"]
    tasks = report["tasks_per_play"]["MISP on the cluster"]
    assert tasks <= MISP_LAYER_TASK_BUDGET, (tasks, report["outcomes"])
    # The passwords went to MISP once, in the first run; unchanged since, they are not sent again.
    assert _redacted_written(layer.runs[0][0]).count("_password") == 3, layer.runs[0][0].stdout[-6000:]
    assert _redacted_written(second) == "[]", second.stdout[-6000:]
    worker = layer.pods("workers")[0].metadata.name
    layer.core.delete_namespaced_pod(worker, layer.namespace)
    third = converge(run_playbook, layer)
    assert third.rc == 0, third.stdout[-6000:]
    assert third.changed == 0, _changed_tasks(third)
    replaced = layer.pods("workers")
    assert replaced and replaced[0].metadata.name != worker and _ready(replaced[0])


def test_redacted_settings_are_written_again_once_their_record_is_gone(run_playbook, layer):
    """What a restore leaves: the database holds other passwords and the record of the last write is
    gone (misp_restore removes it). The next run writes the passwords and records them; the run
    after that sends none."""
    names = ("SimpleBackgroundJobs.supervisor_password", "SimpleBackgroundJobs.redis_password", "MISP.redis_password")
    listed = ", ".join(f"'{name}'" for name in names)
    query = f"SELECT setting, value FROM system_settings WHERE setting IN ({listed})"  # noqa: S608
    written = dict(line.split("\t", 1) for line in _sql(layer, query))
    assert sorted(written) == sorted(names), written
    # Other passwords (values are stored as JSON), as a backup made before a rotation holds.
    _sql(layer, f"UPDATE system_settings SET value = '\"stale\"' WHERE setting IN ({listed})")  # noqa: S608
    record = layer.core.read_namespaced_config_map("misp-redacted-settings", layer.namespace)
    layer.core.delete_namespaced_config_map("misp-redacted-settings", layer.namespace)
    again = converge(run_playbook, layer)
    assert again.rc == 0, again.stdout[-6000:]
    assert _redacted_written(again).count("_password") == 3, again.stdout[-6000:]
    assert dict(line.split("\t", 1) for line in _sql(layer, query)) == written
    # The same passwords: the same fingerprint, recorded again.
    assert layer.core.read_namespaced_config_map("misp-redacted-settings", layer.namespace).data == record.data
    assert again.changed == 1, again.stdout[-6000:]
    after = converge(run_playbook, layer)
    assert after.rc == 0 and after.changed == 0, after.stdout[-6000:]
    assert _redacted_written(after) == "[]", after.stdout[-6000:]


def test_check_diff_shows_a_hand_edit_alone_and_changes_nothing(run_playbook, layer):
    """Issue 20: the run operators schedule to find drift, or run before a change. --check --diff of
    the converged layer shows no diff. After a hand edit of one CronJob's schedule it reports
    misp_cron's apply alone as changed, and the edited field alone as its diff (not the
    managedFields and generation the edit moved), and leaves the edit in place. The next run puts
    the schedule back."""
    name = "misp-cron-cachefeed"
    batch = client.BatchV1Api(layer.core.api_client)
    schedule = batch.read_namespaced_cron_job(name, layer.namespace).spec.schedule
    quiet = converge(run_playbook, layer, check=True, diff=True)
    assert quiet.rc == 0 and quiet.changed == 0, quiet.stdout[-6000:]
    assert _diffs(quiet) == [], quiet.stdout[-6000:]
    batch.patch_namespaced_cron_job(name, layer.namespace, {"spec": {"schedule": "7 7 * * *"}})
    try:
        checked = converge(run_playbook, layer, check=True, diff=True)
        assert checked.rc == 0, checked.stdout[-6000:]
        assert _changed_tasks(checked) == [
            "cti.misp_platform.misp_cron : Apply the CronJobs of the enabled tasks and remove the others"
        ]
        assert checked.changed == 1, checked.stdout[-6000:]
        assert _diffs(checked) == [
            (f"CronJob {layer.namespace}/{name}", ["-        schedule: 7 7 * * *", f"+        schedule: {schedule}"])
        ], checked.stdout[-6000:]
        assert batch.read_namespaced_cron_job(name, layer.namespace).spec.schedule == "7 7 * * *"
    finally:
        healed = converge(run_playbook, layer)
    assert healed.rc == 0 and healed.changed == 1, healed.stdout[-6000:]
    assert batch.read_namespaced_cron_job(name, layer.namespace).spec.schedule == schedule


def test_a_session_from_one_frontend_is_valid_on_the_other(layer):
    key = _api_key(layer)
    # Two of the replicas (the HPA may have added more under the machine's load).
    first, second = (p.metadata.name for p in layer.pods("frontend")[:2])
    login = _curl(
        layer,
        first,
        "-i",
        "-X",
        "POST",
        "-H",
        f"Authorization: {key}",
        "-H",
        "Accept: application/json",
        "http://127.0.0.1:8080/users/login",
    )
    assert login.returncode == 0, login.stderr
    cookie = next(
        line.split(":", 1)[1].split(";")[0].strip()
        for line in login.stdout.splitlines()
        if line.lower().startswith("set-cookie:")
    )
    me = _curl(
        layer,
        second,
        "-H",
        f"Cookie: {cookie}",
        "-H",
        "Accept: application/json",
        "http://127.0.0.1:8080/users/view/me",
    )
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["User"]["id"] == 1, me.stdout
    # Without the cookie, the other replica knows no session.
    anonymous = _curl(layer, second, "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8080/users/view/me")
    assert anonymous.stdout in ("401", "403"), anonymous.stdout


def test_a_job_queued_through_a_frontend_is_processed_by_the_workers(layer):
    key = _api_key(layer)
    pod = layer.pods("frontend")[0].metadata.name
    queued = _curl(
        layer,
        pod,
        "-X",
        "POST",
        "-H",
        f"Authorization: {key}",
        "-H",
        "Accept: application/json",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"job_type": "test"}',
        "http://127.0.0.1:8080/jobs/enqueue/default",
    )
    assert queued.returncode == 0, queued.stderr
    job = json.loads(queued.stdout)
    job_id = job.get("id") or job.get("Job", {}).get("id")

    def done():
        view = _curl(
            layer,
            pod,
            "-H",
            f"Authorization: {key}",
            "-H",
            "Accept: application/json",
            f"http://127.0.0.1:8080/jobs/view/{job_id}",
        )
        row = json.loads(view.stdout) if view.returncode == 0 else {}
        row = row.get("Job", row)
        return row if str(row.get("status")) == "4" else None

    row = wait_until(done, 60, f"job {job_id} done")
    assert row["process_id"].startswith("default_"), row


def test_a_stopped_worker_is_reported_and_started_through_the_api_server(run_playbook, layer):
    secret = layer.core.read_namespaced_secret("misp-supervisor", layer.namespace)
    user, password = (base64.b64decode(secret.data[k]).decode() for k in ("username", "password"))
    extravars = {
        "pf_module": "workers",
        "pf_url": f"http://misp-workers.{layer.namespace}.svc:9001",
        "pf_user": user,
        "pf_password": password,
        "pf_forward": {"namespace": layer.namespace, "service": "misp-workers"},
    }
    env = {**layer.env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}

    def outcome(state="present"):
        proc = run_playbook(MODULES, {**extravars, "pf_state": state}, env=env)
        tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
        return proc.rc, next(t["hosts"]["localhost"] for t in tasks if not t["hosts"]["localhost"].get("skipped"))

    rc, result = outcome()
    assert rc == 0 and result["healthy"] is True, result
    # supervisord's autorestart brings back a killed worker by itself; one stopped through its
    # XML-RPC API (as an operator or a crash loop's FATAL leaves it) stays down until started.
    pod = layer.pods("workers")[0]
    call = (
        "<?xml version='1.0'?><methodCall><methodName>supervisor.stopProcess</methodName><params>"
        "<param><value><string>misp-workers:default_00</string></value></param></params></methodCall>"
    )
    stopped = layer.exec(
        pod.metadata.name,
        pod.spec.containers[0].name,
        "curl",
        "-sS",
        "-u",
        f"{user}:{password}",
        "-H",
        "Content-Type: text/xml",
        "-d",
        call,
        "http://127.0.0.1:9001/RPC2",
    )
    assert stopped.returncode == 0 and "<boolean>1</boolean>" in stopped.stdout, stopped.stdout + stopped.stderr
    rc, reported = outcome()
    assert reported["healthy"] is False, reported
    assert reported["queues"]["default"]["running"] == 0, reported["queues"]["default"]
    rc, healed = outcome("running")
    assert rc == 0, healed
    assert healed["started"] == ["default_00"] and healed["healthy"] is True, healed
    assert password not in json.dumps(healed)


def _reach(layer, pod, container, host, port):
    probe = f"import socket; socket.create_connection(('{host}', {port}), 3)"
    return layer.exec(pod, container, "python3", "-c", probe).returncode == 0


def test_database_redis_and_supervisord_only_from_the_allowed_pods(layer):
    ns = layer.namespace
    layer.core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "outsider", "labels": {"app": "outsider"}},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": rig_image("tools"),
                        "command": ["sleep", "infinity"],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                    }
                ],
                "terminationGracePeriodSeconds": 1,
                "nodeSelector": {"cti.misp-platform/real-node": "true"},
                "tolerations": [{"key": "cti.misp-platform/real-node", "operator": "Exists", "effect": "NoSchedule"}],
            },
        },
    )
    wait_until(lambda: _ready(layer.core.read_namespaced_pod("outsider", ns)), 120, "outsider Ready")
    targets = [(f"misp-db.{ns}.svc", 3306), (f"misp-redis.{ns}.svc", 6379), (f"misp-workers.{ns}.svc", 9001)]
    frontend = layer.pods("frontend")[0].metadata.name
    for host, port in targets:
        assert not _reach(layer, "outsider", "main", host, port), f"outsider reached {host}:{port}"
        check = layer.exec(frontend, "php-fpm", "php", "-r", f"exit(@fsockopen('{host}', {port}, $e, $s, 3) ? 0 : 1);")
        assert check.returncode == 0, f"frontend could not reach {host}:{port}: {check.stderr}"


def _serving(layer):
    """The colour the Service selects and the names and images of that colour's pods that it
    routes to: Ready and not terminating (a pod being deleted stays Ready while its containers
    shut down, but the Service's endpoints leave it out)."""
    selector = layer.core.read_namespaced_service("misp-frontend", layer.namespace).spec.selector
    color = selector["misp-platform.cti/color"]
    pods = [
        p
        for p in layer.pods("frontend")
        if _ready(p) and p.metadata.deletion_timestamp is None and p.metadata.labels["misp-platform.cti/color"] == color
    ]
    return color, {p.metadata.name: {c.image for c in p.spec.containers} for p in pods}


def _images(pods):
    return set().union(*pods.values())


# A task whose cake command needs no outbound proxy: its runs are rows of table jobs.
CRON_TASK = "updateGalaxies"
CRON_ROWS = "SELECT message, COUNT(*) FROM jobs WHERE job_type = 'Admin updateGalaxies' GROUP BY message"


def _cron_runs(layer, cronjob):
    """{Job name: its pod's name} of the CronJob's finished runs, and the rows its task recorded,
    {the pod that ran it: count}."""
    batch = client.BatchV1Api(layer.core.api_client)
    jobs = [
        j
        for j in batch.list_namespaced_job(layer.namespace).items
        if any(o.kind == "CronJob" and o.name == cronjob for o in j.metadata.owner_references or [])
    ]
    pods = {}
    for job in jobs:
        selector = f"job-name={job.metadata.name}"
        if job.status.failed:
            failed = layer.kubectl("logs", "-l", selector, "--all-containers", "--prefix", "--tail", "20")
            pytest.fail(f"{job.metadata.name} failed: {failed.stdout}{failed.stderr}")
        if job.status.succeeded:
            (pod,) = layer.core.list_namespaced_pod(layer.namespace, label_selector=selector).items
            assert pod.spec.node_name == REAL_NODE, (pod.metadata.name, pod.spec.node_name)
            pods[job.metadata.name] = pod.metadata.name
    rows = _sql(layer, CRON_ROWS)
    # The double's message names the host, which is the pod's name.
    runs = (line.split("\t") for line in rows)
    return pods, {message.removeprefix("Job done on ").removesuffix("."): int(count) for message, count in runs}


@pytest.fixture(scope="module")
def served(layer, run_playbook):
    """MISP's Ingress really served: RKE2's chart mechanism (tests/rig/ingress.sh: helm-controller,
    the rke2-traefik HelmChart with real Traefik) on the real node, then the ingress part of the
    platform layer converged twice for the layer's namespace, with a certificate of the test's own
    and an allowlist holding only the first of two client pods."""
    core = layer.core
    configs = client.CustomObjectsApi(core.api_client)
    with contextlib.suppress(client.exceptions.ApiException):
        configs.delete_namespaced_custom_object(
            "helm.cattle.io", "v1", "kube-system", "helmchartconfigs", "rke2-traefik"
        )
    clients = Node(core.api_client, layer.kubeconfig, f"ic-{layer.namespace}")
    core.create_namespace({"metadata": {"name": clients.namespace}})
    ca, cert, key = certificates()
    try:
        with kwok_cordoned(core):
            ingress_sh("up", layer.kubeconfig)
            chart = wait_until(lambda: ready_traefik(core), 300, "Traefik Ready on the real node")
            assert chart.spec.node_name == REAL_NODE
            core.create_namespaced_config_map(clients.namespace, {"metadata": {"name": "ca"}, "data": {"ca.pem": ca}})
            for name in ("client-a", "client-b"):
                clients.pod(
                    name,
                    ["sleep", "infinity"],
                    volumes=[{"name": "ca", "configMap": {"name": "ca"}}],
                    container={"volumeMounts": [{"name": "ca", "mountPath": "/ca"}]},
                )
            addresses = {name: clients.running(name).status.pod_ip for name in ("client-a", "client-b")}
            variables = {
                **layer.extravars,
                "ingress_controller": "traefik",
                "ingress_cert_manager_issuer": "",
                "ingress_tls_certificate": cert,
                "ingress_tls_key": key,
                "misp_ingress_allowed_cidrs": [f"{addresses['client-a']}/32"],
            }
            first = run_playbook(INGRESS, variables, env=layer.env, timeout=600)
            assert first.rc == 0, first.stdout[-4000:]
            redirect = "--entryPoints.web.http.redirections.entryPoint.to=:443"
            configured = wait_until(
                lambda: ready_traefik(core, redirect), 300, "Traefik restarted with the role's values"
            )
            second = run_playbook(INGRESS, variables, env=layer.env, timeout=600)
            # Time for helm-controller to start a Job, were the second run to give it cause.
            time.sleep(15)
            service = core.read_namespaced_service("rke2-traefik", "kube-system").spec.cluster_ip
            site = {"clients": clients, "addresses": addresses, "service": service, "chart": chart}
            site.update(configured=configured, first=first, second=second, core=core)
        yield site
    finally:
        core.delete_namespace(clients.namespace)
        with kwok_cordoned(core):
            ingress_sh("down", layer.kubeconfig)


def test_the_helmchartconfig_is_applied_by_helm_controller_and_traefik_restarts_with_it(served):
    pod = served["configured"]
    assert pod.metadata.uid != served["chart"].metadata.uid, "Traefik did not restart"
    args = pod.spec.containers[0].args
    assert "--global.checkNewVersion=false" in args
    assert "--entryPoints.web.http.redirections.entryPoint.scheme=https" in args
    assert "--entryPoints.web.http.redirections.entryPoint.permanent=true" in args
    # The HelmChartConfig's values reached Helm through helm-controller's Job on the real node.
    jobs = client.BatchV1Api(served["core"].api_client).list_namespaced_job("kube-system").items
    job = next(j for j in jobs if j.metadata.name == "helm-install-rke2-traefik")
    assert job.status.succeeded == 1
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env.get("CONFIG_HASH"), "the Job does not carry the HelmChartConfig's hash"


def test_https_with_the_configured_certificate_reaches_misps_heartbeat_with_hsts_and_security_headers(served, layer):
    status, headers, body = https_get(served, "client-a")
    # MISP's own heartbeat, answered by one of the layer's frontend pods through the Ingress.
    assert status == 200, body
    answer = json.loads(body)
    assert answer["message"] == "OK" and answer["host"] in {p.metadata.name for p in layer.pods("frontend")}, answer
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "server" not in headers and "x-powered-by" not in headers


def test_plain_http_redirects_to_https(served):
    out = curl(
        served, "client-a", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", f"http://{HOST}/users/heartbeat"
    )
    code, _sep, target = out.stdout.partition(" ")
    assert code in ("301", "308"), out.stdout + out.stderr
    assert target == f"https://{HOST}/users/heartbeat"


def test_tls_1_1_is_refused_and_tls_1_2_accepted(served):
    def handshake(version: str) -> str:
        return served["clients"].exec("client-a", "python3", "-c", HANDSHAKE, served["service"], version).stdout.strip()

    assert handshake("TLSv1_2").startswith("accepted TLSv1.2")
    assert handshake("TLSv1_1").startswith("refused"), handshake("TLSv1_1")


def test_an_allowed_address_passes_and_another_gets_403(served):
    assert https_get(served, "client-a")[0] == 200
    assert served["addresses"]["client-a"] != served["addresses"]["client-b"]
    out = curl(served, "client-b", "-o", "/dev/null", "-w", "%{http_code}", f"https://{HOST}/users/heartbeat")
    assert out.stdout == "403", out.stdout + out.stderr


def test_a_second_ingress_run_changes_nothing_and_does_not_restart_traefik(served):
    second = served["second"]
    assert second.rc == 0, second.stdout[-4000:]
    assert second.recap["changed"] == 0, second.stdout[-4000:]
    assert ready_traefik(served["core"]).metadata.uid == served["configured"].metadata.uid
    jobs = client.BatchV1Api(served["core"].api_client).list_namespaced_job("kube-system").items
    assert json.dumps([j.metadata.name for j in jobs if j.status.active]) == "[]"


def test_a_cronjob_runs_its_cake_task_once_per_schedule_with_three_frontends(layer):
    ns = layer.namespace
    autoscaling = client.AutoscalingV2Api(layer.core.api_client)
    batch = client.BatchV1Api(layer.core.api_client)
    # Three frontends: a task run by every replica (the image's own cron) would record three rows.
    color = layer.core.read_namespaced_service("misp-frontend", ns).spec.selector["misp-platform.cti/color"]
    autoscaling.patch_namespaced_horizontal_pod_autoscaler(
        f"misp-frontend-{color}", ns, {"spec": {"minReplicas": 3, "maxReplicas": 3}}
    )
    wait_until(lambda: len(_serving(layer)[1]) == 3, 300, "three Ready frontends", interval=5)
    # The role's CronJob with its own job template, due every minute for the test.
    cronjob = f"misp-cron-{CRON_TASK.lower()}"
    schedule = batch.read_namespaced_cron_job(cronjob, ns).spec.schedule
    batch.patch_namespaced_cron_job(cronjob, ns, {"spec": {"schedule": "* * * * *"}})
    try:
        wait_until(lambda: len(_cron_runs(layer, cronjob)[0]) >= 2, 300, "two runs", interval=5)
    finally:
        batch.patch_namespaced_cron_job(cronjob, ns, {"spec": {"schedule": schedule, "suspend": True}})
    # A run that started before the suspension finishes; then every run has its row, and only one.
    wait_until(lambda: not batch.read_namespaced_cron_job(cronjob, ns).status.active, 180, "no active run")
    pods, rows = _cron_runs(layer, cronjob)
    assert len(pods) >= 2, pods
    assert rows == dict.fromkeys(pods.values(), 1), (pods, rows)
    # Once per schedule: each Job is named after its own scheduled minute (the CronJob controller's
    # name suffix), and no minute ran twice.
    minutes = [name.rsplit("-", 1)[1] for name in pods]
    assert len(set(minutes)) == len(minutes), minutes
    assert len(_serving(layer)[1]) == 3
    batch.patch_namespaced_cron_job(cronjob, ns, {"spec": {"suspend": False}})


BACKUP = "playbooks/backup.yml"
RESTORE = "playbooks/restore.yml"


def _checksums(layer):
    """{table: (rows, CHECKSUM TABLE)} of every table of MISP's database."""
    tables = _sql(layer, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'misp'")
    sums = dict(line.split("\t") for line in _sql(layer, "CHECKSUM TABLE " + ", ".join(tables)))
    counts = {t: _sql(layer, f"SELECT COUNT(*) FROM `{t}`")[0] for t in tables}  # noqa: S608
    return {t: (counts[t], sums[f"misp.{t}"]) for t in tables}


@pytest.fixture
def no_scheduled_task(layer):
    """The scheduled tasks' CronJobs suspended, and none of their runs unfinished, for the test;
    then as they were: pullAll and pushAll record a row of table jobs at :00 and :30
    (misp_cron's defaults), and a run between a test's checksums and the dump changes them."""
    ns = layer.namespace
    batch = client.BatchV1Api(layer.core.api_client)
    cronjobs = {
        c.metadata.name: bool(c.spec.suspend)
        for c in batch.list_namespaced_cron_job(ns).items
        if c.metadata.name.startswith("misp-cron-")
    }
    assert cronjobs, "no misp-cron-* CronJob"
    for name in cronjobs:
        batch.patch_namespaced_cron_job(name, ns, {"spec": {"suspend": True}})

    def running():
        return [
            j.metadata.name
            for j in batch.list_namespaced_job(ns).items
            if not any(c.type in ("Complete", "Failed") and c.status == "True" for c in j.status.conditions or [])
            and any(o.kind == "CronJob" and o.name in cronjobs for o in j.metadata.owner_references or [])
        ]

    try:
        wait_until(lambda: not running(), 180, "no scheduled task running")
        yield
    finally:
        for name, suspend in cronjobs.items():
            batch.patch_namespaced_cron_job(name, ns, {"spec": {"suspend": suspend}})


@pytest.mark.usefixtures("no_scheduled_task")
def test_the_backup_cronjobs_pod_dumps_to_the_pvc_and_the_restore_brings_back_every_row(run_playbook, layer):
    ns = layer.namespace
    # Rows and a file of the test's own beside what the converge and the earlier tests wrote.
    marker = uuid.uuid4().hex
    values = f"(1, 'md5', '{marker}'), (2, 'ip-dst', '10.0.0.1')"
    _sql(layer, "INSERT INTO attributes (event_id, type, value1) VALUES " + values)  # noqa: S608
    files = layer.volumes / "misp-files"
    (files / "restore-marker").write_text(marker)
    before = _checksums(layer)
    assert before["attributes"][0] != "0" and before["users"][0] != "0", before
    backup = run_playbook(BACKUP, layer.extravars, env=layer.env)
    assert backup.rc == 0, backup.stdout[-6000:]
    # The Job (the CronJob's template) ran in a pod on the real node and wrote to the backup volume.
    batch = client.BatchV1Api(layer.core.api_client)
    (job,) = [j for j in batch.list_namespaced_job(ns).items if j.metadata.name.startswith("misp-backup-manual-")]
    (pod,) = layer.core.list_namespaced_pod(ns, label_selector=f"job-name={job.metadata.name}").items
    assert pod.spec.node_name == REAL_NODE, pod.spec.node_name
    assert pod.spec.containers[0].image.endswith(rig_image("tools").split("@")[1]), pod.spec.containers[0].image
    (saved,) = sorted((layer.volumes / "misp-backup").glob("misp-*"))
    assert sorted(p.name for p in saved.iterdir()) == ["SHA256SUMS", "database.sql.gz", "files.tar.gz"]
    assert (
        marker.encode() in subprocess.run(["zcat", saved / "database.sql.gz"], capture_output=True, check=True).stdout
    )
    # The data is gone: a table dropped, rows deleted, the file removed.
    _sql(layer, "DROP TABLE attributes")
    _sql(layer, "DELETE FROM users")
    (files / "restore-marker").unlink()
    assert "attributes" not in _checksums(layer)
    assert layer.core.read_namespaced_config_map("misp-redacted-settings", ns).data["fingerprint"]
    restore = run_playbook(RESTORE, {**layer.extravars, "misp_restore_backup_name": saved.name}, env=layer.env)
    assert restore.rc == 0, restore.stdout[-6000:]
    assert _checksums(layer) == before
    # The database holds the passwords of the backup's day: the record of the last write is gone,
    # so that the next run writes the current ones.
    with pytest.raises(client.ApiException) as gone:
        layer.core.read_namespaced_config_map("misp-redacted-settings", ns)
    assert gone.value.status == 404
    assert (files / "restore-marker").read_text() == marker
    # MISP is back: the writers at their replicas, Ready, and no CronJob left suspended by the restore.
    wait_until(lambda: len([p for p in layer.pods("frontend") if _ready(p)]) >= 2, 300, "frontends back", interval=5)
    wait_until(lambda: [p for p in layer.pods("workers") if _ready(p)], 300, "workers back", interval=5)


UPGRADE = "playbooks/misp_upgrade.yml"
ROLLBACK = "playbooks/misp_rollback.yml"
# A client of the Service polls the heartbeat continuously: one line "<unix time> <HTTP status>
# <curl's exit code>" per request (status 000 and a non-zero exit code when no answer came).
POLL = (
    'while :; do out=$(curl -s -o /dev/null --max-time 10 -w "%{http_code}" "$0"); rc=$?; '
    'echo "$(date +%s) $out $rc"; sleep 0.2; done'
)


def _misp_image(name):
    """misp_image (repository, tag, digest) of a rig image, from images.sh's list."""
    built = json.loads((RIG_CACHE / "images" / "images.json").read_text())[name]
    return {key: built[key] for key in ("repository", "tag", "digest")}


@contextlib.contextmanager
def _polling(layer):
    """A client polling MISP's heartbeat through the frontends' Service until the block ends; yields
    a function that returns its answers so far, [unix time, HTTP status, curl's exit code] each."""
    ns = layer.namespace
    # The client: a pod where the frontends' NetworkPolicy lets traffic in (the ingress
    # controller's labels in kube-system), on the real node, polling through the Service.
    # A name of its own each time: the previous poller may still be going away.
    poller = f"poller-{ns}-{uuid.uuid4().hex[:4]}"
    layer.core.create_namespaced_pod(
        "kube-system",
        {
            "metadata": {"name": poller, "labels": {"app.kubernetes.io/name": "rke2-traefik"}},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": rig_image("tools"),
                        "command": ["sh", "-c", POLL, f"http://misp-frontend.{ns}.svc/users/heartbeat"],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                    }
                ],
                "terminationGracePeriodSeconds": 1,
                "nodeSelector": {"cti.misp-platform/real-node": "true"},
                "tolerations": [{"key": "cti.misp-platform/real-node", "operator": "Exists", "effect": "NoSchedule"}],
            },
        },
    )

    try:
        wait_until(lambda: _ready(layer.core.read_namespaced_pod(poller, "kube-system")), 120, "the poller Ready")

        def answers():
            log = layer.core.read_namespaced_pod_log(poller, "kube-system", container="main")
            return [line.split() for line in log.splitlines()]

        wait_until(lambda: any(status == "200" for _t, status, _rc in answers()), 120, "the poller's first answer")
        yield answers
    finally:
        layer.core.delete_namespaced_pod(poller, "kube-system")


def test_blue_green_upgrade_and_rollback_fail_no_request_of_a_polling_client(run_playbook, layer):
    first, second = rig_image("misp"), rig_image("misp-v2")
    assert first.split("@")[1] != second.split("@")[1]
    color, pods_before = _serving(layer)
    assert _images(pods_before) == {first}, pods_before
    with _polling(layer) as answers:
        started = time.time()
        upgrade = run_playbook(UPGRADE, {**layer.extravars, "misp_image": _misp_image("misp-v2")}, env=layer.env)
        assert upgrade.rc == 0, upgrade.stdout[-6000:]
        upgraded, pods = _serving(layer)
        assert upgraded != color and _images(pods) == {second}, (upgraded, pods)
        workers = {c.image for p in layer.pods("workers") for c in p.spec.containers}
        assert workers == {second}, workers
        upgraded_at = time.time()
        during_upgrade = len(answers())
        rollback = run_playbook(ROLLBACK, layer.extravars, env=layer.env)
        assert rollback.rc == 0, rollback.stdout[-6000:]
        back, back_pods = _serving(layer)
        assert back == color and _images(back_pods) == {first}, (back, back_pods)
        # Restarted before the switch, so that they read today's Secrets, not those they started with.
        assert not set(back_pods) & set(pods_before), (pods_before, back_pods)
        workers = {c.image for p in layer.pods("workers") for c in p.spec.containers}
        assert workers == {first}, workers
        codes = answers()
        rolled_back_at = time.time()
    # Requests all along both switches, every one answered 200.
    assert len(codes) > during_upgrade > 10, (during_upgrade, len(codes))
    failed = [line for line in codes if line[1] != "200"]
    times = f"upgrade {started:.0f}-{upgraded_at:.0f}, rollback until {rolled_back_at:.0f}"
    assert not failed, f"{len(failed)} of {len(codes)} requests failed ({times}): {failed}"


ROTATE = "playbooks/rotate_secrets.yml"
# rotate_secrets.yml's steps for database.password, in order (each run with --tags stops after one).
ROTATION_STEPS = ("rotate_vault", "rotate_server", "rotate_secret", "rotate_clients", "rotate_finish")


def _password(layer, secret):
    data = layer.core.read_namespaced_secret(secret, layer.namespace).data
    return base64.b64decode(data["password"]).decode()


def _mariadb_takes(layer, password):
    """Whether MISP's account logs in to misp-db with password (through an option file, from
    inside the database pod)."""
    db = layer.pods("database")[0].metadata.name
    script = (
        "umask 077; printf '[client]\\nuser=misp\\npassword=%s\\n' \"$0\" > /tmp/try.cnf; "
        "mariadb --defaults-extra-file=/tmp/try.cnf -h 127.0.0.1 -N -e 'SELECT 1'; rc=$?; rm -f /tmp/try.cnf; exit $rc"
    )
    result = layer.exec(db, "mariadb", "sh", "-c", script, password)
    assert result.returncode == 0 or "Access denied" in result.stderr, result.stderr
    return result.returncode == 0


def _redis_takes(layer, password):
    redis = layer.pods("redis")[0].metadata.name
    result = layer.exec(redis, "redis", "sh", "-c", 'REDISCLI_AUTH="$0" redis-cli --no-auth-warning ping', password)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "PONG"


# The rotated names, each with its Secret and what asks the server whether it takes a password.
SERVERS = {
    "database.password": ("misp-database", _mariadb_takes),
    "redis.password": ("misp-redis", _redis_takes),
}


def _passwords(layer):
    return {name: _password(layer, secret) for name, (secret, _takes) in SERVERS.items()}


def _servers_take(layer, passwords):
    """{rotated name: whether its server takes that password}."""
    return {name: SERVERS[name][1](layer, password) for name, password in passwords.items()}


def _heartbeat_ok(layer):
    frontend = next(p for p in layer.pods("frontend") if _ready(p)).metadata.name
    probe = "$r = @file_get_contents('http://127.0.0.1:8080/users/heartbeat'); echo $r === false ? '{}' : $r;"
    result = layer.exec(frontend, "php-fpm", "php", "-r", probe)
    return result.returncode == 0 and json.loads(result.stdout or "{}").get("message") == "OK"


def test_server_password_rotation_fails_no_request_and_site_heals_it_after_any_step(run_playbook, layer):
    """database.password and redis.password rotated together (each step does both servers)."""
    rotate = {**layer.extravars, "rotate": list(SERVERS)}
    accepted, refused = dict.fromkeys(SERVERS, True), dict.fromkeys(SERVERS, False)
    first = _passwords(layer)
    assert _servers_take(layer, first) == accepted
    with _polling(layer) as answers:
        rotated = run_playbook(ROTATE, rotate, env=layer.env, timeout=CONVERGE_TIMEOUT)
        assert rotated.rc == 0, rotated.stdout[-8000:]
        codes = answers()
    # Server first: no request through the Service failed while the clients switched.
    failed = [line for line in codes if line[1] != "200"]
    assert len(codes) > 10 and not failed, f"{len(failed)} of {len(codes)} requests failed: {failed}"
    second = _passwords(layer)
    assert all(second[name] != first[name] for name in SERVERS), "a password did not change"
    assert _servers_take(layer, second) == accepted
    assert _servers_take(layer, first) == refused
    again = run_playbook(CONVERGE, layer.extravars, env=layer.env, timeout=CONVERGE_TIMEOUT)
    assert again.rc == 0 and again.changed == 0, again.stdout[-8000:]

    # Stopped after Vault; after the Secrets and the first restart (the workers rolled by hand onto
    # the new Secrets); then one run of the layer each time: MISP answers on the new passwords, the
    # old ones are refused.
    for steps, first_restart in ((ROTATION_STEPS[:1], False), (ROTATION_STEPS[:3], True)):
        old = _passwords(layer)
        part = run_playbook(
            ROTATE, rotate, env={**layer.env, "ANSIBLE_RUN_TAGS": ",".join(steps)}, timeout=CONVERGE_TIMEOUT
        )
        assert part.rc == 0, part.stdout[-8000:]
        if first_restart:
            assert layer.kubectl("rollout", "restart", "deployment/misp-workers").returncode == 0
        healed = run_playbook(CONVERGE, layer.extravars, env=layer.env, timeout=CONVERGE_TIMEOUT)
        assert healed.rc == 0, (steps, healed.stdout[-8000:])
        new = _passwords(layer)
        assert all(new[name] != old[name] for name in SERVERS), steps
        assert _servers_take(layer, new) == accepted, steps
        assert _servers_take(layer, old) == refused, steps
        wait_until(lambda: _heartbeat_ok(layer), 120, f"MISP's heartbeat after {steps} and a site run")
    healed_again = run_playbook(CONVERGE, layer.extravars, env=layer.env, timeout=CONVERGE_TIMEOUT)
    assert healed_again.rc == 0 and healed_again.changed == 0, healed_again.stdout[-8000:]


def test_a_rotated_app_secret_rolls_the_pods_once_and_site_then_changes_nothing(run_playbook, layer):
    """A secret only MISP's pods read: the rotation's run of the layer rolls them by their
    fingerprint, so the next run has nothing left to roll (no restartedAt stamp for it to undo)."""

    # What the layer runs: the colour in service (a previous one takes the Secrets when
    # misp_rollback.yml restarts it) and the workers.
    color = _serving(layer)[0]

    def stamps():
        return {
            d.metadata.name: (d.spec.template.metadata.annotations or {}).get("kubectl.kubernetes.io/restartedAt")
            for d in layer.apps.list_namespaced_deployment(layer.namespace).items
        }

    def pods():
        return {
            p.metadata.name
            for p in layer.pods("workers") + layer.pods("frontend")
            if p.metadata.labels.get("misp-platform.cti/color", color) == color
        }

    before, stamped = pods(), stamps()
    rotated = run_playbook(ROTATE, {**layer.extravars, "rotate": "app.gpg-passphrase"}, env=layer.env)
    assert rotated.rc == 0, rotated.stdout[-8000:]
    wait_until(lambda: not before & pods(), 120, "the frontends and workers replaced")
    assert stamps() == stamped
    again = run_playbook(CONVERGE, layer.extravars, env=layer.env, timeout=CONVERGE_TIMEOUT)
    assert again.rc == 0 and again.changed == 0, again.stdout[-8000:]


@pytest.fixture
def s3_from_the_node(s3, layer):
    """S3Proxy's address as the real node's pods reach it: the peer listens on the host's loopback
    only, so tests/rig/node.sh forwards the node's address and that port to it."""
    port = str(urlsplit(s3["S3_ENDPOINT"]).port)
    node = ["bash", str(RIG_DIR / "node.sh")]
    env = {**os.environ, **layer.env}
    forward = subprocess.run([*node, "forward", port], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert forward.returncode == 0, forward.stderr
    yield f"http://{forward.stdout.strip()}"
    subprocess.run([*node, "unforward", port], env=env, capture_output=True, timeout=60, check=True)


def _manual_backup_jobs(layer):
    batch = client.BatchV1Api(layer.core.api_client)
    return {j.metadata.name for j in batch.list_namespaced_job(layer.namespace).items if "-manual-" in j.metadata.name}


@pytest.mark.usefixtures("no_scheduled_task")
def test_the_backup_goes_to_s3_from_the_real_node_and_the_restore_fetches_it(run_playbook, layer, s3, s3_from_the_node):
    ns = layer.namespace
    store = urlsplit(s3_from_the_node)
    platform = yaml.safe_load((REPO / "inventories" / "local" / "group_vars" / "all" / "platform.yml").read_text())
    target = {
        "misp_backup_target": "s3",
        "misp_backup_s3_endpoint": s3_from_the_node,
        "misp_backup_s3_region": s3["S3_REGION"],
        "misp_backup_s3_bucket": s3["S3_BUCKET"],
        "misp_backup_s3_prefix": ns,
        "misp_backup_s3_credentials": {
            "access_key_id": s3["S3_ACCESS_KEY_ID"],
            "secret_access_key": s3["S3_SECRET_ACCESS_KEY"],
        },
        # The store is outside the cluster: only the backup pods (backup and restore Jobs) may reach it.
        "namespace_baseline_egress_allowlist": [
            *platform["namespace_baseline_egress_allowlist"],
            {"name": "backup-store", "cidr": f"{store.hostname}/32", "ports": [store.port], "components": ["backup"]},
        ],
    }
    variables = {**layer.extravars, **target}
    switched = run_playbook(CONVERGE, variables, env=layer.env, timeout=CONVERGE_TIMEOUT)
    assert switched.rc == 0, switched.stdout[-8000:]
    marker = uuid.uuid4().hex
    _sql(layer, f"INSERT INTO attributes (event_id, type, value1) VALUES (3, 'sha256', '{marker}')")  # noqa: S608
    files = layer.volumes / "misp-files"
    (files / "s3-restore-marker").write_text(marker)
    before, on_volume = _checksums(layer), sorted((layer.volumes / "misp-backup").iterdir())
    jobs = _manual_backup_jobs(layer)
    backup = run_playbook(BACKUP, variables, env=layer.env)
    assert backup.rc == 0, backup.stdout[-6000:]
    (job,) = _manual_backup_jobs(layer) - jobs
    (pod,) = layer.core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items
    assert pod.spec.node_name == REAL_NODE, pod.spec.node_name
    # In the bucket under the prefix, read back through S3Proxy's API; nothing new on the volume.
    remote = f"s3:{s3['S3_BUCKET']}/{ns}"
    listing = rclone(s3, "lsf", "-R", "--files-only", remote).stdout.decode().split()
    (name,) = {path.split("/")[0] for path in listing}
    assert sorted(listing) == [f"{name}/{part}" for part in ("SHA256SUMS", "database.sql.gz", "files.tar.gz")]
    dump = subprocess.run(
        ["zcat"], input=rclone(s3, "cat", f"{remote}/{name}/database.sql.gz").stdout, capture_output=True, check=True
    )
    assert marker.encode() in dump.stdout
    assert sorted((layer.volumes / "misp-backup").iterdir()) == on_volume
    _sql(layer, "DROP TABLE attributes")
    (files / "s3-restore-marker").unlink()
    restore = run_playbook(RESTORE, {**variables, "misp_restore_backup_name": name}, env=layer.env)
    assert restore.rc == 0, restore.stdout[-6000:]
    assert _checksums(layer) == before
    assert (files / "s3-restore-marker").read_text() == marker
    wait_until(lambda: len([p for p in layer.pods("frontend") if _ready(p)]) >= 2, 300, "frontends back", interval=5)
