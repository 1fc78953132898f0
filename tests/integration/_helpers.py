"""Helpers shared by integration test files (fixtures stay in conftest.py)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client

# A container's securityContext as the MISP roles write it: what Pod Security `restricted` asks.
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 33,
    "runAsGroup": 33,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# The backup role's variables: the S3 client environment its pods get.
BACKUP_ROLE_VARS = Path(__file__).parents[2] / "roles" / "misp_backup" / "vars" / "main.yml"
# Result files of one session never collide, even between test files sharing a tmp_path.
_runs = itertools.count()


@dataclass
class ModuleRun:
    """One run of a playbook that saves a module's result to a JSON file (see run_module_play)."""

    rc: int
    result: dict
    output: str  # stdout and stderr
    recap: dict  # the PLAY RECAP summed over hosts

    @property
    def changed(self):
        """Tasks the recap counts as changed."""
        return self.recap["changed"]

    @property
    def msg(self):
        return self.result.get("msg", "")


def run_module_play(run_playbook, playbook, tmp_path, args_var, result_var, args, check=False, env=None):
    """Run ``playbook`` with the module options ``args`` in ``args_var``; it writes the module's
    result to the path it gets in ``result_var``."""
    out = tmp_path / f"result-{next(_runs)}.json"
    played = run_playbook(playbook, {args_var: args, result_var: str(out)}, check=check, env=env)
    return ModuleRun(played.rc, json.loads(out.read_text()), played.stdout + played.stderr, played.recap)


def temporary_namespace(api, prefix):
    """Generator for a fixture: a new namespace ``<prefix>-<random>``, deleted at teardown."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def static_storage_class(name):
    """A StorageClass with no provisioner: without one of that name the PV controller keeps
    trying to provision the claims of the static volumes."""
    return {
        "metadata": {"name": name},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate",
        "reclaimPolicy": "Retain",
    }


def static_volume(namespace, claim, mode, storage_class):
    """A 1Gi hostPath PersistentVolume bound in advance to ``claim`` in ``namespace`` (the rig
    has no storage provisioner; kwok runs no pod that would use the path)."""
    return {
        "metadata": {"name": f"{namespace}-{claim}"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": [mode],
            "storageClassName": storage_class,
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/{namespace}/{claim}"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }


def vault_role_vars(openbao, kubeconfig, namespace, mount):
    """The vault role's variables for a test of its own: the OpenBao peer, a KV mount, and
    policies, Kubernetes auth role and MISP namespace all named after ``namespace``. OpenBao runs
    beside the simulated apiserver and reaches it at the kubeconfig's address."""
    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    return {
        "vault_url": openbao["VAULT_ADDR"],
        "vault_token": openbao["VAULT_TOKEN"],
        "vault_kv_mount": mount,
        "vault_policy_prefix": namespace,
        "vault_k8s_role": namespace,
        "vault_k8s_host": server,
        "misp_namespace": namespace,
        "cti_kubeconfig": kubeconfig,
    }


def vault_namespace(core, prefix):
    """Generator for a fixture: a namespace for the vault role's tests; at teardown it goes with
    the cluster-wide binding the role gives its service account (system:auth-delegator)."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
    try:
        client.RbacAuthorizationV1Api(core.api_client).delete_cluster_role_binding(f"{name}-vault-auth-delegator")
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise


def rclone_env(s3: dict, **override: str) -> dict:
    """The upload container's RCLONE_CONFIG_S3_*, read from the role's misp_backup_s3_env."""
    values = {"{{ misp_backup_s3_endpoint }}": s3["S3_ENDPOINT"], "{{ misp_backup_s3_region }}": s3["S3_REGION"]}
    secret_keys = {"access-key-id": s3["S3_ACCESS_KEY_ID"], "secret-access-key": s3["S3_SECRET_ACCESS_KEY"]}
    env = {}
    for item in yaml.safe_load(BACKUP_ROLE_VARS.read_text())["misp_backup_s3_env"]:
        if "value" in item:
            env[item["name"]] = values.get(item["value"], item["value"])
        else:
            env[item["name"]] = secret_keys[item["valueFrom"]["secretKeyRef"]["key"]]
    assert not any("{{" in value for value in env.values()), env
    return {**env, **override}


def rclone(s3: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """rclone as an independent client of the peer, to seed and inspect the bucket."""
    env = {"PATH": os.environ["PATH"], "RCLONE_CONFIG": "/dev/null", **rclone_env(s3)}
    result = subprocess.run(["rclone", *args], env=env, capture_output=True, timeout=120, check=False)
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


def bucket_listing(s3: dict) -> list[str]:
    """Every object of every bucket, as bucket/key."""
    return sorted(rclone(s3, "lsf", "-R", "--files-only", "s3:").stdout.decode().splitlines())


@contextlib.contextmanager
def pid_taken_after_stop(*args: str):
    """A stand-in for a rig component, started as ``bash -c SCRIPT *args`` (its command line is then
    the component's), that becomes ``sleep 300`` under the same pid when asked to stop: as if
    another process had taken the pid once the component was gone. Killed when the block ends."""
    script = 'trap "exec sleep 300" TERM; while :; do sleep 0.1; done'
    process = subprocess.Popen(["bash", "-c", script, *args])
    try:
        yield process
    finally:
        process.kill()
        process.wait()
