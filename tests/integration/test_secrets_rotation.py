"""MariaDB and Redis as the roles render them, on the real node, reading their secrets from files,
and what a changed Secret does to each (issue 22).

The StatefulSet misp-db and Deployment misp-redis are rendered by the roles' templates
(targets/policy_scan/render.yml, with the rig's MariaDB and Redis images) and applied in a
namespace of this module, placed on rig-node-1 (the volume claim template becomes an emptyDir:
the rig has no provisioner). The server-first rotations of database.password and redis.password
(the roles' account Jobs), with MISP's heartbeat through the Service during them and rotations
stopped after each step, are test_misp_layer.py's test_server_password_rotation_*.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.playbook import ansible_playbook
from tests.rig import rig_binary, rig_image
from tests.rig.peers._base import REPO

pytestmark = pytest.mark.rig

RENDER = REPO / "tests/integration/targets/policy_scan/render.yml"
REAL_KEY = "cti.misp-platform/real-node"
ON_REAL_NODE = {
    "nodeSelector": {REAL_KEY: "true"},
    "tolerations": [{"key": REAL_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}


class Servers:
    def __init__(self, api, kubeconfig: str, namespace: str, tmp: Path):
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.kubeconfig, self.namespace, self.tmp = kubeconfig, namespace, tmp

    def kubectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(rig_binary("kubectl")), "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def secret(self, name: str, data: dict) -> None:
        body = {"metadata": {"name": name}, "stringData": data}
        try:
            self.core.create_namespaced_secret(self.namespace, body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            self.core.replace_namespaced_secret(name, self.namespace, body)

    def apply(self) -> None:
        """Render both roles' workloads and apply them."""
        out = self.tmp / uuid.uuid4().hex
        extravars = {
            "out_dir": str(out),
            "repo_dir": str(REPO),
            "render_roles": ["misp_database", "misp_redis"],
            "misp_database_image": rig_image("mariadb"),
            "misp_redis_image": rig_image("redis"),
            "misp_common_namespace": self.namespace,
        }
        result = ansible_playbook(RENDER, extravars, timeout=600)
        assert result.rc == 0, result.stdout[-4000:]
        db = yaml.safe_load((out / "misp_database/database-statefulset.yaml").read_text())
        db["spec"].pop("volumeClaimTemplates")
        db["spec"]["template"]["spec"]["volumes"].append({"name": "data", "emptyDir": {}})
        redis = yaml.safe_load((out / "misp_redis/redis-deployment.yaml").read_text())
        for obj in (db, redis):
            obj["spec"]["template"]["spec"].update(ON_REAL_NODE)
            obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 2
        manifest = out / "apply.json"
        manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [db, redis]}))
        applied = self.kubectl("apply", "-f", str(manifest))
        assert applied.returncode == 0, applied.stderr

    def ready_pod(self, selector: str, timeout: float = 300) -> str:
        """The name of the only pod of ``selector``, once it is Ready and no other pod is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
            ready = [
                p
                for p in pods
                if p.metadata.deletion_timestamp is None
                and {c.type: c.status for c in p.status.conditions or []}.get("Ready") == "True"
            ]
            if len(pods) == 1 and ready:
                return ready[0].metadata.name
            time.sleep(2)
        pytest.fail(f"no single Ready pod for {selector}: {[p.metadata.name for p in pods]}")

    def exec(self, pod: str, container: str, script: str) -> subprocess.CompletedProcess:
        return self.kubectl("exec", pod, "-c", container, "--", "sh", "-c", script)


DB = "app.kubernetes.io/name=misp-database"
REDIS = "app.kubernetes.io/name=misp-redis"


@pytest.fixture(scope="module")
def servers(api, k8s_cluster, tmp_path_factory):
    namespace = f"secrets-{secrets.token_hex(3)}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    for account in ("misp-database", "misp-redis"):
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    yield Servers(api, k8s_cluster["kubeconfig"], namespace, tmp_path_factory.mktemp("servers"))
    core.delete_namespace(namespace)


def mariadb_login(servers, pod, user, password) -> subprocess.CompletedProcess:
    # The password goes through an option file, never on the client's command line.
    return servers.exec(
        pod,
        "mariadb",
        f"printf '[client]\\nuser=%s\\npassword=%s\\n' '{user}' '{password}' > /tmp/login.cnf && "
        "mariadb --defaults-extra-file=/tmp/login.cnf -N -e 'SELECT CURRENT_USER()'; "
        "rc=$?; rm -f /tmp/login.cnf; exit $rc",
    )


def redis_auth(servers, pod, password) -> str:
    result = servers.exec(pod, "redis", f"REDISCLI_AUTH='{password}' redis-cli --no-auth-warning ping")
    return result.stdout.strip()


def test_servers_read_their_secrets_from_files_and_a_restarted_redis_takes_the_new_one(servers):
    db_pw, root_pw, redis_pw = secrets.token_hex(12), secrets.token_hex(12), secrets.token_hex(12)
    servers.secret("misp-database", {"username": "misp", "password": db_pw, "root-password": root_pw})
    servers.secret("misp-redis", {"password": redis_pw})
    servers.apply()
    db, redis = servers.ready_pod(DB), servers.ready_pod(REDIS)

    # Ready means the probes, which read the same files, log in. The containers' environment (what
    # every process started in them inherits) holds no value. MariaDB's entrypoint exports what
    # it read from *_FILE to mariadbd itself, as the official image's does.
    for pod, container in ((db, "mariadb"), (redis, "redis")):
        environ = servers.exec(pod, container, "env")
        assert environ.returncode == 0, environ.stderr
        assert not [value for value in (db_pw, root_pw, redis_pw) if value in environ.stdout], container
    assert mariadb_login(servers, db, "misp", db_pw).stdout.strip().startswith("misp@")
    assert mariadb_login(servers, db, "root", root_pw).returncode == 0
    assert redis_auth(servers, redis, redis_pw) == "PONG"

    # Redis: a rotation interrupted after the Secret was written, then the rerun: the account Job
    # is refused (the server still runs on the old password) and misp_redis restarts the server,
    # which reads the new file: new password in, old one out.
    new_redis = secrets.token_hex(12)
    servers.secret("misp-redis", {"password": new_redis})
    restarted = servers.kubectl("rollout", "restart", "deployment/misp-redis")
    assert restarted.returncode == 0, restarted.stderr
    time.sleep(3)
    redis2 = servers.ready_pod(REDIS)
    assert redis2 != redis
    assert redis_auth(servers, redis2, new_redis) == "PONG"
    refused = servers.exec(redis2, "redis", f"REDISCLI_AUTH='{redis_pw}' redis-cli --no-auth-warning ping 2>&1")
    assert "WRONGPASS" in refused.stdout, refused.stdout
