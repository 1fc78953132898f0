"""The controller path: misp_settings and misp_worker_status reach pods through the API server.

Pods on the rig's real node, in a namespace whose NetworkPolicy denies all ingress and egress:
the MISP API stand-in (tests/doubles/misp_api, listening on the pod's loopback only) and a real
supervisord (PyPI supervisor from the project's .venv, mounted read-only) running MISP's
``misp-workers`` group of stand-in workers (tests/doubles/misp_worker.py) with XML-RPC on port
9001 of every address. The modules' ``port_forward`` option carries their connections through
kube-apiserver and the kubelet into the pods' network namespaces; a client pod in the same
namespace cannot reach 9001, and neither the controller nor anything else needs a hole in the
policy. RBAC: a ServiceAccount with get/list on pods and services and get/create on pods/portforward
is enough, one without pods/portforward is refused with a message naming it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.rig import rig_binary, rig_image
from tests.rig.peers._base import REPO

pytestmark = [pytest.mark.rig, pytest.mark.slow]

PLAYBOOK = "tests/integration/targets/port_forward/modules.yml"
REAL_KEY = "cti.misp-platform/real-node"
ON_REAL_NODE = {
    "nodeSelector": {REAL_KEY: "true"},
    "tolerations": [{"key": REAL_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}
API_KEY = "portforward-key-5c1d9e07b3a24f68"
SV_USER, SV_PASSWORD = "supervisor", "pf-sv-3f8a1c5e9b7d2064"
QUEUES = ("default", "email", "cache", "prio", "update")
SITE_PACKAGES = next((REPO / ".venv" / "lib").glob("python3*/site-packages"))
SUPERVISORD_CONF = f"""[supervisord]
nodaemon=true
logfile=/tmp/supervisord.log
pidfile=/tmp/supervisord.pid
childlogdir=/tmp

[inet_http_server]
port=*:9001
username={SV_USER}
password={SV_PASSWORD}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[group:misp-workers]
programs={",".join(QUEUES)}
""" + "".join(
    f"""
[program:{queue}]
command=python3 /repo/tests/doubles/misp_worker.py {queue}
process_name=%(program_name)s_%(process_num)02d
numprocs=1
autostart=true
autorestart=false
startsecs=1
stdout_logfile=/tmp/{queue}.log
redirect_stderr=true
"""
    for queue in QUEUES
)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(1)
    return value


def _ready(core, namespace, name):
    pod = core.read_namespaced_pod(name, namespace)
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class Stand:
    def __init__(self, api, kubeconfig, namespace):
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def kubectl(self, *args, timeout=60):
        cmd = [str(rig_binary("kubectl")), "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def pod(self, name, command, ports=(), volumes=(), env=(), probe_port=None):
        mounts = [{"name": v["name"], "mountPath": v.pop("mountPath"), "readOnly": True} for v in volumes]
        container = {
            "name": "main",
            "image": rig_image("tools"),
            "command": ["sh", "-c", command],
            "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}, *env],
            "ports": [{"name": n, "containerPort": p} for n, p in ports],
            "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"}],
        }
        if probe_port:
            # Over the pod's loopback: the stand-in MISP listens nowhere else.
            check = f"import socket; socket.create_connection(('127.0.0.1', {probe_port}), 2)"
            container["readinessProbe"] = {"exec": {"command": ["python3", "-c", check]}, "periodSeconds": 2}
        body = {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "containers": [container],
                "volumes": [*volumes, {"name": "tmp", "emptyDir": {}}],
                "terminationGracePeriodSeconds": 1,
                **ON_REAL_NODE,
            },
        }
        self.core.create_namespaced_pod(self.namespace, body)

    def service(self, name, port, target):
        self.core.create_namespaced_service(
            self.namespace,
            {
                "metadata": {"name": name},
                "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": target}]},
            },
        )

    def token(self, name, rules):
        """A bearer token of a new ServiceAccount that a Role with ``rules`` binds."""
        meta = {"name": name, "namespace": self.namespace}
        self.core.create_namespaced_service_account(self.namespace, {"metadata": meta})
        self.rbac.create_namespaced_role(self.namespace, {"metadata": meta, "rules": rules})
        self.rbac.create_namespaced_role_binding(
            self.namespace,
            {
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": self.namespace}],
            },
        )
        request = self.core.create_namespaced_service_account_token(
            name, self.namespace, {"spec": {"expirationSeconds": 3600}}
        )
        return request.status.token


@pytest.fixture(scope="module")
def stand(api, k8s_cluster):
    core = client.CoreV1Api(api)
    namespace = f"pf-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    s = Stand(api, k8s_cluster["kubeconfig"], namespace)
    client.NetworkingV1Api(api).create_namespaced_network_policy(
        namespace, {"metadata": {"name": "deny-all"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    )
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "stand"},
            "stringData": {"api-key": API_KEY, "supervisord.conf": SUPERVISORD_CONF},
        },
    )
    repo = {"name": "repo", "hostPath": {"path": str(REPO / "tests"), "type": "Directory"}, "mountPath": "/repo/tests"}
    secret = {"name": "stand", "secret": {"secretName": "stand"}, "mountPath": "/stand"}
    s.pod(
        "misp",
        "cd /repo && exec python3 -m tests.doubles.misp_api --port 8080 --api-key-file /stand/api-key",
        ports=[("http", 8080)],
        volumes=[dict(repo), dict(secret)],
        probe_port=8080,
    )
    pylib = {"name": "pylib", "hostPath": {"path": str(SITE_PACKAGES), "type": "Directory"}, "mountPath": "/pylib"}
    s.pod(
        "workers",
        "exec python3 -m supervisor.supervisord -c /stand/supervisord.conf",
        ports=[("supervisor", 9001)],
        volumes=[dict(repo), dict(secret), pylib],
        env=[{"name": "PYTHONPATH", "value": "/pylib"}],
        probe_port=9001,
    )
    s.pod("outsider", "exec sleep infinity")
    s.service("misp", 80, "http")
    s.service("workers", 9001, "supervisor")
    for name in ("misp", "workers", "outsider"):
        wait_until(lambda name=name: _ready(core, namespace, name), 180, f"pod {name} Ready")
    yield s
    core.delete_namespace(namespace)


def play(run_playbook, env, **extravars):
    """(rc, task result, output) of one module run; the task that ran is the one not skipped."""
    proc = run_playbook(PLAYBOOK, extravars, env={**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    result = next(t["hosts"]["localhost"] for t in tasks if not t["hosts"]["localhost"].get("skipped"))
    return proc.rc, result, proc.stdout + proc.stderr


def settings(stand, wanted, **forward):
    forward = forward or {"namespace": stand.namespace, "service": "misp"}
    return {
        "pf_module": "settings",
        "pf_url": f"http://misp.{stand.namespace}.svc",
        "pf_api_key": API_KEY,
        "pf_settings": wanted,
        "pf_forward": forward,
    }


def workers(stand, state="present", **forward):
    return {
        "pf_module": "workers",
        "pf_url": f"http://workers.{stand.namespace}.svc:9001",
        "pf_user": SV_USER,
        "pf_password": SV_PASSWORD,
        "pf_state": state,
        "pf_forward": forward or {"namespace": stand.namespace, "service": "workers"},
    }


def test_settings_through_the_api_server_then_nothing_to_do(stand, run_playbook, env):
    wanted = {"MISP.live": False, "Session.timeout": 75}
    rc, result, out = play(run_playbook, env, **settings(stand, wanted))
    assert rc == 0, out
    assert result["changed"] is True
    assert sorted(result["changed_settings"]) == ["MISP.live", "Session.timeout"]
    rc, result, out = play(run_playbook, env, **settings(stand, wanted))
    assert rc == 0, out
    assert result["changed"] is False
    assert result["requests"]["post"] == 0
    assert API_KEY not in out


def test_without_port_forward_the_controller_cannot_reach_the_pods(stand, run_playbook, env):
    extravars = settings(stand, {"MISP.live": False})
    del extravars["pf_forward"]
    rc, result, _out = play(run_playbook, env, **extravars)
    assert rc != 0
    assert result["msg"].startswith(f"Cannot reach GET http://misp.{stand.namespace}.svc/")


def test_workers_behind_a_deny_all_policy_reported_and_healed(stand, run_playbook, env):
    # The policy is in force: a pod of the namespace cannot reach supervisord's port.
    outsider = stand.kubectl(
        "exec", "outsider", "--", "curl", "-sS", "--max-time", "3", f"http://workers.{stand.namespace}.svc:9001/"
    )
    assert outsider.returncode != 0, outsider.stdout
    rc, result, out = play(run_playbook, env, **workers(stand))
    assert rc == 0, out
    assert result["healthy"] is True
    assert {q: result["queues"][q]["running"] for q in QUEUES} == dict.fromkeys(QUEUES, 1)

    killed = stand.kubectl("exec", "workers", "--", "pkill", "-f", "misp_worker.py default")
    assert killed.returncode == 0, killed.stderr
    wait_until(
        lambda: play(run_playbook, env, **workers(stand))[1].get("healthy") is False, 60, "the killed worker reported"
    )
    rc, result, out = play(run_playbook, env, **workers(stand, state="running"))
    assert rc == 0, out
    assert result["changed"] is True
    assert result["started"] == ["default_00"]
    assert result["healthy"] is True
    assert SV_PASSWORD not in out


def _auth(stand, token):
    kubeconfig = yaml.safe_load(Path(stand.kubeconfig).read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    ca = cluster.get("certificate-authority")
    if not ca:
        ca_file = Path(stand.kubeconfig).with_name("pf-ca.crt")
        ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        ca = str(ca_file)
    return {"host": cluster["server"], "api_key": token, "ca_cert": ca}


READ = {"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list"]}
# A websocket port-forward is a GET: kube-apiserver checks get, and create too (since 1.35).
FORWARD = {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]}


def test_rbac_pods_portforward_is_what_it_takes(stand, run_playbook, env):
    # No kubeconfig: the ServiceAccount's token is the only credential.
    no_kubeconfig = {k: v for k, v in env.items() if k != "K8S_AUTH_KUBECONFIG"}
    allowed = _auth(stand, stand.token("pf-allowed", [READ, FORWARD]))
    rc, result, out = play(
        run_playbook, no_kubeconfig, **workers(stand, namespace=stand.namespace, service="workers", **allowed)
    )
    assert rc == 0, out
    assert result["healthy"] is True
    assert allowed["api_key"] not in out

    refused = _auth(stand, stand.token("pf-read-only", [READ]))
    rc, result, out = play(
        run_playbook, no_kubeconfig, **workers(stand, namespace=stand.namespace, service="workers", **refused)
    )
    assert rc != 0
    assert result["msg"].startswith(
        f"The Kubernetes API refused the port-forward to pod {stand.namespace}/workers port 9001 (HTTP 403): "
        f"it needs get and create on pods/portforward in namespace {stand.namespace}"
    ), result["msg"]
    assert refused["api_key"] not in out


@pytest.mark.parametrize(
    ("forward", "message"),
    [
        ({"service": "nope"}, "Service {ns}/nope not found"),
        ({"service": "misp", "port": 443}, "Service {ns}/misp has no port 443 (its ports: 80)"),
        ({"pod": "misp", "port": 9999}, "Cannot reach"),
    ],
)
def test_bad_targets_are_named_and_nothing_is_written(stand, run_playbook, env, forward, message):
    # The kubelet's reason for a refused connection comes on the port-forward's error channel, and
    # the API server now and then closes the websocket before relaying it (seen in one full run:
    # the message then lacks the reason, as the module got none): a refused port gets three tries.
    for _attempt in range(3 if "pod" in forward else 1):
        rc, result, _out = play(
            run_playbook, env, **settings(stand, {"MISP.live": True}, namespace=stand.namespace, **forward)
        )
        assert rc != 0
        assert result["msg"].startswith(message.format(ns=stand.namespace)), result["msg"]
        if "connection refused" in result["msg"]:
            break
    if "pod" in forward:
        # The kubelet's reason for the refused connection is part of the message.
        assert "connection refused" in result["msg"], result["msg"]
    # MISP.live is still what the first test wrote: nothing reached MISP's edit API.
    rc, result, out = play(run_playbook, env, **settings(stand, {"MISP.live": False}))
    assert rc == 0 and result["changed"] is False, out
