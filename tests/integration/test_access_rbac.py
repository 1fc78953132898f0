"""access_rbac on the rig: what each OIDC group and each MISP service account may do, asked of
the real RBAC authorizer with SubjectAccessReviews, and the service account audit, on hand-made
objects and on every MISP part converged by its role.

The namespaces follow the MISP molecule scenario's pattern (molecule-misp-...) with a random
suffix; they are deleted afterwards.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration._helpers import static_storage_class, static_volume

pytestmark = pytest.mark.rig

TARGET = Path(__file__).parent / "targets" / "access_rbac"
PREFIX = "oidc:"
GROUPS = {"readonly": "misp-readonly", "operator": "misp-operators", "admin": "misp-admins"}
PARTS = ["frontend", "workers", "cron", "database", "redis", "update", "backup", "restore"]

# (verb, group/resource[/subresource], readonly, operator, admin), in the MISP namespace.
Y, N = True, False
MATRIX = [
    ("get", "pods", Y, Y, Y),
    ("list", "pods", Y, Y, Y),
    ("watch", "pods", Y, Y, Y),
    ("get", "pods/log", Y, Y, Y),
    ("delete", "pods", N, Y, Y),
    ("create", "pods", N, N, Y),
    ("create", "pods/exec", N, N, Y),
    ("get", "secrets", N, N, Y),
    ("list", "secrets", N, N, Y),
    ("watch", "secrets", N, N, Y),
    ("get", "configmaps", N, N, Y),
    ("get", "services", Y, Y, Y),
    ("update", "services", N, N, Y),
    ("list", "persistentvolumeclaims", Y, Y, Y),
    ("list", "events", Y, Y, Y),
    ("get", "apps/deployments", Y, Y, Y),
    ("watch", "apps/deployments", Y, Y, Y),
    ("get", "apps/deployments/scale", N, Y, Y),
    ("patch", "apps/deployments/scale", N, Y, Y),
    ("update", "apps/deployments/scale", N, Y, Y),
    ("patch", "apps/deployments", N, N, Y),
    ("delete", "apps/deployments", N, N, Y),
    ("get", "apps/statefulsets", Y, Y, Y),
    ("update", "apps/statefulsets/scale", N, N, Y),
    ("get", "batch/cronjobs", Y, Y, Y),
    ("update", "batch/cronjobs", N, N, Y),
    ("list", "batch/jobs", Y, Y, Y),
    ("create", "batch/jobs", N, Y, Y),
    ("delete", "batch/jobs", N, N, Y),
    ("get", "autoscaling/horizontalpodautoscalers", Y, Y, Y),
    ("get", "policy/poddisruptionbudgets", Y, Y, Y),
    ("create", "rbac.authorization.k8s.io/rolebindings", N, N, Y),
    ("create", "rbac.authorization.k8s.io/roles", N, N, Y),
]


def split(target):
    """'apps/deployments/scale' -> ('apps', 'deployments', 'scale'); core resources have no group."""
    parts = target.split("/")
    core = ("pods", "secrets", "configmaps", "services", "persistentvolumeclaims", "events", "serviceaccounts")
    if parts[0] in (*core, "namespaces", "nodes"):
        parts.insert(0, "")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else ""


@pytest.fixture(scope="module")
def ns(api):
    name = f"molecule-misp-rbac-{secrets.token_hex(3)}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def allowed(api, namespace, verb, target, user, groups):
    group, resource, sub = split(target)
    attrs = {"namespace": namespace, "verb": verb, "group": group, "resource": resource, "subresource": sub}
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        {"spec": {"user": user, "groups": groups, "resourceAttributes": attrs}}
    )
    return review.status.allowed


@pytest.fixture(scope="module")
def applied(run_playbook, env, ns):
    extravars = {"access_rbac_namespaces": [ns], "access_rbac_groups": GROUPS}
    first = run_playbook(TARGET / "rbac.yml", extravars, env=env)
    assert first.rc == 0, first.stdout + first.stderr
    return extravars, first


def test_idempotent_and_check_mode(run_playbook, env, applied):
    extravars, first = applied
    assert first.changed == 1
    for check in (False, True):
        again = run_playbook(TARGET / "rbac.yml", extravars, check=check, env=env)
        assert again.rc == 0 and again.changed == 0, again.stdout


@pytest.mark.parametrize("level", ["readonly", "operator", "admin"])
def test_group_permissions(api, ns, applied, level):
    column = 2 + ["readonly", "operator", "admin"].index(level)
    groups = ["system:authenticated", PREFIX + GROUPS[level]]
    wrong = [
        (verb, target, expected)
        for verb, target, *row in MATRIX
        if allowed(api, ns, verb, target, f"{PREFIX}someone", groups) != (expected := row[column - 2])
    ]
    assert not wrong, f"{level}: (verb, resource, expected) the authorizer disagrees with: {wrong}"
    # Only in the MISP namespace, and never cluster-wide.
    for verb, target, *row in MATRIX:
        if row[column - 2]:
            assert not allowed(api, "kube-system", verb, target, f"{PREFIX}someone", groups), (verb, target)
    assert not allowed(api, "", "list", "pods", f"{PREFIX}someone", groups)


@pytest.mark.parametrize(
    "groups", [["misp-admins"], [f"{PREFIX}misp-unknown"], []], ids=["unprefixed", "other", "none"]
)
def test_other_groups_get_nothing(api, ns, applied, groups):
    for verb, target, *_expected in MATRIX:
        assert not allowed(api, ns, verb, target, f"{PREFIX}someone", ["system:authenticated", *groups]), (verb, target)


def test_bad_input_fails_before_change(run_playbook, env, ns):
    run = run_playbook(
        TARGET / "rbac.yml", {"access_rbac_namespaces": [ns], "access_rbac_groups": {**GROUPS, "operator": ""}}, env=env
    )
    assert run.rc != 0 and run.changed == 0
    assert '"operator": ""' in run.stdout
    missing = f"{ns}-missing"
    run = run_playbook(TARGET / "rbac.yml", {"access_rbac_namespaces": [missing]}, env=env)
    assert run.rc != 0 and f"namespace(s) {missing} do not exist" in run.stdout


def test_oidc_args(run_playbook, tmp_path):
    out = tmp_path / "args.json"
    run = run_playbook(
        TARGET / "oidc_args.yml",
        {"access_rbac_oidc_issuer_url": "https://keycloak.example.org/realms/misp", "ar_result_path": str(out)},
    )
    assert run.rc == 0, run.stdout
    assert json.loads(out.read_text()) == [
        "oidc-issuer-url=https://keycloak.example.org/realms/misp",
        "oidc-client-id=kubernetes",
        "oidc-username-claim=preferred_username",
        "oidc-username-prefix=oidc:",
        "oidc-groups-claim=groups",
        "oidc-groups-prefix=oidc:",
    ]
    run = run_playbook(
        TARGET / "oidc_args.yml", {"access_rbac_oidc_issuer_url": "http://kc", "ar_result_path": str(out)}
    )
    assert run.rc != 0 and '(got "http://kc")' in run.stdout


# --- service accounts ---------------------------------------------------------------------------


def workload(part, account):
    labels = {
        "app.kubernetes.io/part-of": "misp",
        "app.kubernetes.io/component": part,
        "app.kubernetes.io/name": f"misp-{part}",
    }
    pod = {
        "serviceAccountName": account,
        "automountServiceAccountToken": False,
        "containers": [{"name": "c", "image": "x"}],
    }
    return {
        "metadata": {"name": f"misp-{part}", "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


@pytest.fixture(scope="module")
def accounts(api, ns):
    """One service account per part without token, and a Deployment per Deployment-run part."""
    core = client.CoreV1Api(api)
    for part in PARTS:
        core.create_namespaced_service_account(
            ns, {"metadata": {"name": f"misp-{part}"}, "automountServiceAccountToken": False}
        )
    for part in ("frontend", "workers"):
        client.AppsV1Api(api).create_namespaced_deployment(ns, workload(part, f"misp-{part}"))
    return core


def audit(run_playbook, env, ns, **extra):
    return run_playbook(TARGET / "audit.yml", {"access_rbac_audit_namespace": ns, **extra}, env=env)


def sa_user(ns, part):
    return f"system:serviceaccount:{ns}:misp-{part}", [
        "system:serviceaccounts",
        f"system:serviceaccounts:{ns}",
        "system:authenticated",
    ]


def test_service_accounts(api, run_playbook, env, ns, accounts):
    good = audit(run_playbook, env, ns)
    assert good.rc == 0 and good.changed == 0, good.stdout
    # No part's account can do anything in the namespace.
    for part in PARTS:
        user, groups = sa_user(ns, part)
        granted = [(v, t) for v, t, *_expected in MATRIX if allowed(api, ns, v, t, user, groups)]
        assert not granted, f"misp-{part} may {granted}"

    rbac = client.RbacAuthorizationV1Api(api)
    # Offences: a token mounted, a binding beyond need, a missing account, a workload as default.
    accounts.patch_namespaced_service_account("misp-workers", ns, {"automountServiceAccountToken": True})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "cron-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "misp-cron", "namespace": ns}],
        },
    )
    accounts.delete_namespaced_service_account("misp-redis", ns)
    client.AppsV1Api(api).patch_namespaced_deployment(
        "misp-frontend", ns, {"spec": {"template": {"spec": {"serviceAccountName": "default"}}}}
    )
    user, groups = sa_user(ns, "cron")
    assert allowed(api, ns, "get", "secrets", user, groups), "the authorizer sees the extra binding"

    bad = audit(run_playbook, env, ns)
    assert bad.rc != 0 and bad.changed == 0
    # The YAML callback wraps long messages.
    failure = " ".join(bad.stdout[bad.stdout.index("fatal:") :].split())
    for offence in (
        "service account misp-workers mounts its token",
        "service account misp-redis is missing",
        "RoleBinding cron-edit binds misp-cron to ClusterRole/edit",
        "Deployment misp-frontend (frontend) runs as default, not misp-frontend",
    ):
        assert offence in failure, failure
    assert "misp-database" not in failure

    # A part declared as calling the API may keep its token and its declared binding.
    accounts.create_namespaced_service_account(
        ns, {"metadata": {"name": "misp-redis"}, "automountServiceAccountToken": False}
    )
    client.AppsV1Api(api).patch_namespaced_deployment(
        "misp-frontend", ns, {"spec": {"template": {"spec": {"serviceAccountName": "misp-frontend"}}}}
    )
    declared = audit(run_playbook, env, ns, access_rbac_audit_api_access={"workers": [], "cron": ["ClusterRole/edit"]})
    assert declared.rc == 0, declared.stdout


# --- every MISP part converged by its role ------------------------------------------------------

BACKUP = "misp-20261123T011500Z"
# Beyond MATRIX, in the MISP namespace: what a stolen token would be used for first.
SA_EXTRA = [
    ("create", "secrets"),
    ("delete", "secrets"),
    ("create", "configmaps"),
    ("update", "configmaps"),
    ("create", "events"),
    ("get", "serviceaccounts"),
    ("create", "serviceaccounts/token"),
]
# Cluster-wide (no namespace).
CLUSTER = [
    ("create", "authentication.k8s.io/tokenreviews"),
    ("create", "authorization.k8s.io/subjectaccessreviews"),
    ("list", "namespaces"),
    ("get", "nodes"),
    ("list", "pods"),
    ("list", "secrets"),
    ("create", "serviceaccounts/token"),
    ("list", "rbac.authorization.k8s.io/clusterroles"),
    ("create", "certificates.k8s.io/certificatesigningrequests"),
]
# (verb, resource, namespace or "" for cluster-wide) each account may do; anything else in the
# table is refused. Only misp-vault holds anything: system:auth-delegator, which Vault's
# Kubernetes auth needs to review the operators' logins (no reviewer JWT given).
GRANTED = {
    "misp-vault": {
        ("create", "authentication.k8s.io/tokenreviews", ""),
        ("create", "authorization.k8s.io/subjectaccessreviews", ""),
    }
}
WORKLOADS = [("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "CronJob"), ("batch/v1", "Job")]


@pytest.fixture(scope="module")
def misp(api, k8s_cluster, openbao, run_playbook):
    """A Pod Security restricted namespace where the vault role, the MISP roles and misp_backup
    converged twice, then playbooks/restore.yml ran; static volumes stand in for Longhorn.
    Yields (namespace, [first, second converge, restore])."""
    name = f"molecule-misp-sa-{secrets.token_hex(3)}"
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    claims = {"misp-files": "ReadWriteMany", "data-misp-db-0": "ReadWriteOnce", "misp-backup": "ReadWriteOnce"}
    server = yaml.safe_load(Path(k8s_cluster["kubeconfig"]).read_text())["clusters"][0]["cluster"]["server"]
    extravars = {
        "cti_kubeconfig": k8s_cluster["kubeconfig"],
        "misp_namespace": name,
        "misp_base_url": "https://misp.rbac.test",
        "misp_image": {"repository": "ghcr.io/misp/misp-docker/misp-core", "tag": "v2.5.31", "digest": ""},
        "misp_secrets_source": "vault",
        "vault_url": openbao["VAULT_ADDR"],
        "vault_token": openbao["VAULT_TOKEN"],
        "vault_kv_mount": name,
        "vault_policy_prefix": name,
        "vault_k8s_role": name,
        "vault_k8s_host": server,
        "misp_common_files_storage_class": f"{name}-static",
        "misp_common_files_size": "1Gi",
        "misp_database_storage_class": f"{name}-static",
        "misp_database_size": "1Gi",
        "misp_backup_pvc_storage_class": f"{name}-static",
        "misp_backup_pvc_size": "1Gi",
        "misp_frontend_replicas": 1,
        # On kwok nodes (inventories/local places MISP on the real node): only the accounts matter.
        "misp_common_node_selector": {},
        "misp_common_tolerations": [],
        "misp_workers_processes": {"default": 1, "email": 1, "cache": 1, "prio": 1, "update": 1},
        # Bounded waits: kwok makes pods Ready and completes Jobs within seconds.
        "misp_database_wait_timeout": 180,
        "misp_redis_wait_timeout": 180,
        "misp_update_timeout": 180,
        "misp_frontend_wait_timeout": 180,
        "misp_workers_wait_timeout": 180,
        "misp_restore_timeout": 120,
        "misp_restore_stop_timeout": 120,
    }
    storage.create_storage_class(static_storage_class(f"{name}-static"))
    restricted = {"enforce": "restricted", "enforce-version": "latest"}
    labels = {f"pod-security.kubernetes.io/{key}": value for key, value in restricted.items()}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    try:
        for claim, mode in claims.items():
            core.create_persistent_volume(static_volume(name, claim, mode, f"{name}-static"))
        # The vault role reads the cluster's CA from the ConfigMap the controller-manager publishes.
        for _attempt in range(60):
            if core.list_namespaced_config_map(name, field_selector="metadata.name=kube-root-ca.crt").items:
                break
            time.sleep(1)
        env = {"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]}
        runs = [run_playbook(TARGET / "misp.yml", extravars, env=env, timeout=1200)]
        if runs[0].rc == 0:
            runs.append(run_playbook(TARGET / "misp.yml", extravars, env=env, timeout=1200))
            restore = {**extravars, "misp_restore_backup_name": BACKUP}
            runs.append(run_playbook("playbooks/restore.yml", restore, env=env, timeout=1200))
        yield name, runs
    finally:
        core.delete_namespace(name)
        for claim in claims:
            core.delete_persistent_volume(f"{name}-{claim}")
        storage.delete_storage_class(f"{name}-static")
        try:
            rbac.delete_cluster_role_binding(f"{name}-vault-auth-delegator")
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_misp_parts_converge_idempotent_and_restore(misp):
    _ns, runs = misp
    assert runs[0].rc == 0, runs[0].stdout[-6000:]
    _first, again, restore = runs
    assert again.rc == 0 and again.changed == 0, again.stdout[-6000:]
    # The restore's Jobs run as misp-restore: without the account they would get no pod.
    assert restore.rc == 0, restore.stdout[-6000:]


def test_misp_pods_run_as_their_parts_account(api, run_playbook, env, misp):
    ns, runs = misp
    assert [run.rc for run in runs] == [0, 0, 0], runs[-1].stdout[-6000:]
    core = client.CoreV1Api(api)
    accounts = {sa.metadata.name: sa for sa in core.list_namespaced_service_account(ns).items}
    assert set(accounts) == {"default", "misp-vault", *(f"misp-{part}" for part in PARTS)}
    assert all(accounts[name].automount_service_account_token is False for name in accounts if name != "default")

    # Every pod template names its part's account (its app.kubernetes.io/name label) and mounts no token.
    seen = set()
    for api_version, kind in WORKLOADS:
        group, version = api_version.split("/")
        items = client.CustomObjectsApi(api).list_namespaced_custom_object(
            group, version, ns, kind.lower() + "s", label_selector="app.kubernetes.io/part-of=misp"
        )["items"]
        for item in items:
            spec = item["spec"]
            pod = (spec["jobTemplate"]["spec"] if kind == "CronJob" else spec)["template"]["spec"]
            account = item["metadata"]["labels"]["app.kubernetes.io/name"]
            assert (pod.get("serviceAccountName"), pod.get("automountServiceAccountToken")) == (account, False), (
                kind,
                item["metadata"]["name"],
            )
            seen.add(account)
    assert seen == {f"misp-{part}" for part in PARTS}, "a part's pod template is missing"

    pods = core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/part-of=misp").items
    assert {p.metadata.labels["app.kubernetes.io/name"] for p in pods} >= {
        "misp-frontend",
        "misp-workers",
        "misp-database",
        "misp-redis",
        "misp-update",
        "misp-restore",
    }
    for pod in pods:
        assert pod.spec.service_account_name == pod.metadata.labels["app.kubernetes.io/name"], pod.metadata.name
        volumes = [v.name for v in pod.spec.volumes or []]
        assert not [v for v in volumes if v.startswith("kube-api-access")], (pod.metadata.name, volumes)

    # No Role or RoleBinding in the namespace; the only binding of its accounts is Vault's.
    rbac = client.RbacAuthorizationV1Api(api)
    assert rbac.list_namespaced_role(ns).items == [] and rbac.list_namespaced_role_binding(ns).items == []
    bound = {
        (b.metadata.name, b.role_ref.name, s.name)
        for b in rbac.list_cluster_role_binding().items
        for s in b.subjects or []
        if s.kind == "ServiceAccount" and s.namespace == ns
    }
    assert bound == {(f"{ns}-vault-auth-delegator", "system:auth-delegator", "misp-vault")}

    audited = run_playbook(TARGET / "audit.yml", {"access_rbac_audit_namespace": ns}, env=env)
    assert audited.rc == 0 and audited.changed == 0, audited.stdout


@pytest.mark.parametrize("account", [f"misp-{part}" for part in PARTS] + ["misp-vault"])
def test_misp_account_permissions(api, misp, account):
    ns, runs = misp
    assert runs[0].rc == 0, runs[0].stdout[-6000:]
    user = f"system:serviceaccount:{ns}:{account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    table = [(verb, target, ns) for verb, target, *_levels in MATRIX + SA_EXTRA] + [(v, t, "") for v, t in CLUSTER]
    granted = {
        (verb, target, where) for verb, target, where in table if allowed(api, where, verb, target, user, groups)
    }
    assert granted == GRANTED.get(account, set())
