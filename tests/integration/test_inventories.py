"""The per-environment inventories: their graphs, and a ``--check`` run of site.yml on each.

What the check runs cover. ``local`` runs as it is, against the rig's simulated cluster and the
``openbao`` fixture as Vault (like scripts/site.sh). ``test`` and ``prod`` describe hosts that do
not exist here, so they run with the overlay inventories of ``inventory_overlays/``: ``rig.yml``
points their controller plays at the same cluster and OpenBao (keeping every other value of the
inventory, the Vault lookups of the S3 and Longhorn credentials included) and
``rig_digests.yml`` gives their images fake digests. Every run goes through the image check, the
platform, identity, hardening and MISP layers in check mode, and must change nothing: the
objects in MISP's namespace, the cluster-scoped objects the run would create, and Vault are
compared before and after.

What they cannot cover. The host plays (``hosts``, ``cluster``, Longhorn's node part) are left
out with ``--limit controller``: RKE2's airgap artifacts are not available here and booting
four to six systemd containers for a check run is more than the rig's two cores carry
(molecule's rke2_* and platform_nodes scenarios test those roles on podman hosts). Keycloak is
left out (the overlay empties ``keycloak_url``; test_keycloak_role.py covers the role), and so
is MISP's runtime settings step (``misp_config``), which needs a running MISP. A check run on
a brand-new cluster stops at the MISP layer, because the Secrets the identity layer delivers
are only dry-run; so each run starts from a site whose namespace and Secrets exist, as on any
site where ``--check`` previews a change. Objects get test-unique names (namespace, KV mount,
Longhorn namespace, StorageClass, admission policy), passed as extra variables, because the
cluster and OpenBao are shared with other tests.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import hvac
import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from tests.playbook import PlaybookResult, parse_recap
from tests.rig.peers._base import REPO, VENV_BIN

OVERLAYS = Path(__file__).parent / "inventory_overlays"
GROUPS = {"controller", "k8s_cluster", "rke2_servers", "rke2_agents"}
IMAGES = (
    "ghcr.io/misp/misp-docker/misp-core:v2.5.31",
    "docker.io/library/mariadb:11.4",
    "docker.io/library/redis:7.4",
    "docker.io/rclone/rclone:1.71",
    "ghcr.io/kube-vip/kube-vip:v1.0.1",
    "ghcr.io/misp/misp-docker/misp-modules:v3.1.1",
)
# What site.yml may create in MISP's namespace, as (apiVersion, kind).
NAMESPACED = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
)
# The conventions' Secrets, as the identity layer would have delivered them (test values).
SECRETS = {
    "misp-database": {"username": "misp", "password": "db-pass", "root-password": "db-root"},
    "misp-redis": {"password": "redis-pass"},
    "misp-app": {
        "salt": "s",
        "encryption-key": "e" * 32,
        "gpg-passphrase": "g",
        "admin-api-key": "a" * 40,
        "uuid": "u",
    },
    "misp-supervisor": {"username": "supervisor", "password": "sup-pass"},
    "misp-oidc": {"client-secret": "oidc-secret"},
}


def run_site(inventories: list[str | Path], extravars: dict, env: dict, limit: str | None = None) -> PlaybookResult:
    """``ansible-playbook site.yml --check`` with several inventory sources (in order)."""
    with tempfile.TemporaryDirectory(prefix="cti-extravars-") as tmp:
        vars_file = Path(tmp) / "extravars.yml"
        vars_file.write_text(yaml.safe_dump(extravars))
        cmd = [str(VENV_BIN / "ansible-playbook"), "site.yml", "--check", "--skip-tags", "misp_config"]
        for inventory in inventories:
            cmd += ["-i", str(inventory)]
        if limit:
            cmd += ["--limit", limit]
        cmd += ["-e", f"@{vars_file}"]
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("KEYCLOAK_")}
        run_env.update(env, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        proc = subprocess.run(cmd, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=2400, check=False)
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, parse_recap(proc.stdout))


# --- ansible-inventory --------------------------------------------------------------------------


def graph(*sources: str) -> dict[str, set[str]]:
    """``ansible-inventory --graph`` as {group: hosts directly or indirectly in it}."""
    cmd = [str(VENV_BIN / "ansible-inventory"), "--graph"]
    for source in sources:
        cmd += ["-i", source]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    groups: dict[str, set[str]] = {}
    stack: list[tuple[int, str]] = []
    for line in proc.stdout.splitlines():
        depth = line.find("--") if "--" in line else 0
        name = line.split("--", 1)[-1].strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if name.startswith("@"):
            group = name[1:].rstrip(":")
            groups.setdefault(group, set())
            stack.append((depth, group))
        else:
            for _depth, group in stack:
                groups[group].add(name)
    return groups


@pytest.mark.parametrize("name", ["local", "test", "prod"])
def test_inventory_graph_has_the_same_groups_everywhere(name):
    groups = graph(f"inventories/{name}")
    assert set(groups) >= GROUPS, groups
    assert groups["controller"] == {"localhost"}


def test_inventory_graph_matches_each_topology():
    assert graph("inventories/local")["k8s_cluster"] == set()
    test = graph("inventories/test")
    assert test["rke2_servers"] == {"misp-test-server-1"}
    assert test["rke2_agents"] == set()
    prod = graph("inventories/prod")
    assert prod["rke2_servers"] == {f"misp-prod-server-{i}" for i in (1, 2, 3)}
    assert prod["rke2_agents"] == {f"misp-prod-agent-{i}" for i in (1, 2, 3)}
    assert prod["k8s_cluster"] == prod["rke2_servers"] | prod["rke2_agents"]


# --- site.yml --check ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(k8s_cluster, api, openbao):
    """An existing site on the rig: MISP's namespace with its Secrets, and the credentials the
    prod inventory reads from Vault, all under test-unique names; removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    namespace = f"misp-check-{suffix}"
    extravars = {
        "misp_namespace": namespace,
        "log_shipping_agent_namespace": namespace,
        "vault_kv_mount": f"misp-check-{suffix}",
        "longhorn_namespace": f"longhorn-check-{suffix}",
        "longhorn_misp_storage_class_name": f"misp-check-{suffix}",
        "image_policy_admission_name": f"misp-check-{suffix}",
    }
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    vault = hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])
    mount = extravars["vault_kv_mount"]
    try:
        for name, data in SECRETS.items():
            core.create_namespaced_secret(
                namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
            )
        vault.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
        vault.secrets.kv.v2.create_or_update_secret(
            mount_point=mount, path="platform/backup-s3", secret={"access_key_id": "AKIA", "secret_access_key": "s3"}
        )
        vault.secrets.kv.v2.create_or_update_secret(
            mount_point=mount,
            path="platform/longhorn-backup",
            secret={
                "AWS_ACCESS_KEY_ID": "AKIA",
                "AWS_SECRET_ACCESS_KEY": "s3",
                "AWS_ENDPOINTS": "https://s3.example.org",
            },
        )
        # The vault role reads the cluster's CA from the namespace (kube-controller-manager's copy),
        # and the default service account appears with it: wait, so neither counts as a change.
        deadline = time.monotonic() + 120
        while not {"kube-root-ca.crt"} <= {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}:
            assert time.monotonic() < deadline, f"no kube-root-ca.crt in {namespace}"
            time.sleep(1)
        env = {
            "K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"],
            "CTI_RIG_STATE": str(Path(k8s_cluster["kubeconfig"]).parent),
            "VAULT_ADDR": openbao["VAULT_ADDR"],
            "VAULT_TOKEN": openbao["VAULT_TOKEN"],
        }
        yield {"namespace": namespace, "extravars": extravars, "env": env, "vault": vault, "mount": mount}
    finally:
        core.delete_namespace(namespace)
        vault.sys.disable_secrets_engine(mount)


def cluster_state(api, site) -> dict:
    """resourceVersion of every object site.yml may create in MISP's namespace, and whether the
    cluster-scoped objects with the test's names exist."""
    dyn = DynamicClient(api)
    state = {}
    for api_version, kind in NAMESPACED:
        for item in dyn.resources.get(api_version=api_version, kind=kind).get(namespace=site["namespace"]).items:
            state[(kind, item.metadata.name)] = item.metadata.resourceVersion
    extra = site["extravars"]
    for api_version, kind, name in (
        ("v1", "Namespace", site["namespace"]),
        ("v1", "Namespace", extra["longhorn_namespace"]),
        ("storage.k8s.io/v1", "StorageClass", extra["longhorn_misp_storage_class_name"]),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", extra["image_policy_admission_name"]),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", extra["image_policy_admission_name"]),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", f"{site['namespace']}-vault-auth-delegator"),
    ):
        try:
            state[(kind, name)] = (
                dyn.resources.get(api_version=api_version, kind=kind).get(name=name).metadata.resourceVersion
            )
        except NotFoundError:
            state[(kind, name)] = None
    return state


def vault_state(site) -> dict:
    """Mounts, auth methods, policies and every secret's version in the test's KV mount."""
    vault, mount = site["vault"], site["mount"]
    versions = {}
    folders = [""]
    while folders:
        folder = folders.pop()
        for key in vault.secrets.kv.v2.list_secrets(path=folder, mount_point=mount)["data"]["keys"]:
            if key.endswith("/"):
                folders.append(folder + key)
            else:
                meta = vault.secrets.kv.v2.read_secret_metadata(path=folder + key, mount_point=mount)
                versions[folder + key] = meta["data"]["current_version"]
    return {
        "mounts": sorted(vault.sys.list_mounted_secrets_engines()["data"]),
        "auth": sorted(vault.sys.list_auth_methods()["data"]),
        "policies": sorted(vault.sys.list_acl_policies()["data"]["keys"]),
        "secrets": versions,
    }


SOURCES = {
    "local": ["inventories/local"],
    "test": ["inventories/test", OVERLAYS / "rig.yml", OVERLAYS / "rig_digests.yml"],
    "prod": ["inventories/prod", OVERLAYS / "rig.yml", OVERLAYS / "rig_digests.yml"],
}


@pytest.mark.rig
def test_prod_without_pinned_digests_stops_at_the_image_check(site, api):
    """prod as shipped (digests left for the site to pin): the first play refuses every image,
    naming it, and the run ends there, before any host play or cluster change (no --limit: the
    prod hosts would be contacted if the run went on)."""
    before = cluster_state(api, site)
    result = run_site(["inventories/prod", OVERLAYS / "rig.yml"], site["extravars"], site["env"])
    out = result.stdout + result.stderr
    assert result.rc != 0, out
    assert result.recap["failed"] == 1 and result.changed == 0, out
    assert "not pinned by digest" in out, out
    for image in IMAGES:
        assert image in out, f"{image} not named:\n{out}"
    plays = [line for line in result.stdout.splitlines() if line.startswith("PLAY [")]
    assert len(plays) == 1 and plays[0].startswith("PLAY [Check MISP's images before anything is deployed]"), plays
    assert cluster_state(api, site) == before


@pytest.mark.rig
@pytest.mark.slow
@pytest.mark.parametrize("name", ["local", "test", "prod"])
def test_site_check_run_changes_nothing(name, site, api):
    before_cluster, before_vault = cluster_state(api, site), vault_state(site)
    result = run_site(SOURCES[name], site["extravars"], site["env"], limit="controller" if name != "local" else None)
    out = result.stdout + result.stderr
    assert result.rc == 0 and result.failed == 0 and result.recap["unreachable"] == 0, out[-6000:]
    # Every layer was reached and would change something: the check is not vacuous.
    for task in (
        "TASK [cti.misp_platform.image_policy : Check that every image is pinned by digest",
        "TASK [cti.misp_platform.namespace_baseline : Apply the namespace",
        "TASK [cti.misp_platform.vault : Write the Secrets with Vault's values]",
        "TASK [cti.misp_platform.image_policy : Apply or remove the admission policy]",
        "TASK [cti.misp_platform.misp_frontend : Apply the frontend objects]",
        "TASK [cti.misp_platform.misp_backup : Apply the backup objects]",
    ):
        assert task in result.stdout, f"{task} did not run:\n{out[-6000:]}"
    assert result.changed > 0, out[-6000:]
    assert cluster_state(api, site) == before_cluster
    assert vault_state(site) == before_vault
    if name == "prod":
        # S3 backups with credentials from Vault: the lookup ran and the Secret would be written.
        assert "TASK [cti.misp_platform.misp_backup : Write the S3 credentials Secret]" in result.stdout
