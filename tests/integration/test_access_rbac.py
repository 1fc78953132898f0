"""access_rbac on the rig: what each OIDC group and each MISP service account may do, asked of
the real RBAC authorizer with SubjectAccessReviews, and the service account audit.

The namespace follows the MISP molecule scenario's pattern (molecule-misp-...) with a random
suffix; it is deleted afterwards.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from kubernetes import client

pytestmark = pytest.mark.rig

TARGET = Path(__file__).parent / "targets" / "access_rbac"
PREFIX = "oidc:"
GROUPS = {"readonly": "misp-readonly", "operator": "misp-operators", "admin": "misp-admins"}
PARTS = ["frontend", "workers", "cron", "database", "redis", "backup"]

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
    if parts[0] in ("pods", "secrets", "configmaps", "services", "persistentvolumeclaims", "events"):
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
    labels = {"app.kubernetes.io/part-of": "misp", "app.kubernetes.io/component": part}
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
