"""access_rbac's audit of MISP's service accounts, on objects shaped like k8s_info's."""

from __future__ import annotations

from ansible_collections.cti.misp_platform.plugins.filter.service_account_audit_problems import (
    FilterModule,
    service_account_audit_problems,
)

NS = "misp"
COMPONENTS = ["frontend", "workers", "backup", "update"]
API_ACCESS = {"backup": ["Role/misp-backup"]}


def account(name, automount=False):
    return {"metadata": {"name": name}, "automountServiceAccountToken": automount}


def binding(name, role, *subjects, kind="Role"):
    return {"metadata": {"name": name}, "roleRef": {"kind": kind, "name": role}, "subjects": list(subjects)}


def sa(name, namespace=NS):
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def pod(account_name=None, automount=None):
    spec = {"containers": []}
    if account_name:
        spec["serviceAccountName"] = account_name
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    return {"template": {"spec": spec}}


def workload(name, labels, spec):
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


def name_label(part):
    return {"app.kubernetes.io/name": f"misp-{part}", "app.kubernetes.io/component": part}


def clean():
    """A namespace that keeps to the rules."""
    return {
        "ServiceAccount": [
            account("misp-frontend"),
            account("misp-workers"),
            account("misp-backup", automount=True),
            account("misp-update"),
            account("default", automount=True),
        ],
        "RoleBinding": [
            binding("backup", "misp-backup", sa("misp-backup")),
            binding("other-ns", "edit", sa("misp-workers", namespace="elsewhere")),
            binding("groups", "misp-readonly", {"kind": "Group", "name": "oidc:readers"}),
            {"metadata": {"name": "no-subjects"}, "roleRef": {"kind": "Role", "name": "x"}, "subjects": None},
        ],
        "ClusterRoleBinding": [binding("system", "system:auth-delegator", sa("vault-auth"), kind="ClusterRole")],
        "Deployment": [workload("misp-frontend-blue", name_label("frontend"), pod("misp-frontend"))],
        "StatefulSet": [],
        "CronJob": [
            workload("misp-backup", name_label("backup"), {"jobTemplate": {"spec": pod("misp-backup", automount=True)}})
        ],
        # The update Job shares cron's component but is named misp-update.
        "Job": [
            workload(
                "misp-update-1",
                {"app.kubernetes.io/name": "misp-update", "app.kubernetes.io/component": "cron"},
                pod("misp-update"),
            )
        ],
    }


def test_a_clean_namespace_has_no_offender():
    assert service_account_audit_problems(clean(), COMPONENTS, API_ACCESS, NS) == []


def test_every_offence_is_named():
    objects = clean()
    objects["ServiceAccount"] = [
        account("misp-frontend"),
        account("misp-workers", automount=True),
        account("misp-backup", automount=True),
    ]
    objects["RoleBinding"].append(
        binding("workers-edit", "edit", sa("misp-workers"), sa("default"), kind="ClusterRole")
    )
    objects["ClusterRoleBinding"].append(
        binding("backup-admin", "cluster-admin", sa("misp-backup"), kind="ClusterRole")
    )
    objects["Deployment"].append(workload("misp-frontend-green", name_label("frontend"), pod()))
    objects["StatefulSet"].append(workload("misp-db", {"app.kubernetes.io/component": "database"}, pod("misp-db")))
    objects["Job"].append(workload("stray", None, pod("misp-workers")))
    objects["Deployment"].append(workload("misp-workers", name_label("workers"), pod("misp-workers", automount=True)))
    assert service_account_audit_problems(objects, COMPONENTS, API_ACCESS, NS) == [
        "service account misp-workers mounts its token (automountServiceAccountToken is not false)",
        "service account misp-update is missing",
        "RoleBinding workers-edit binds misp-workers to ClusterRole/edit",
        "RoleBinding workers-edit binds default to ClusterRole/edit",
        "ClusterRoleBinding backup-admin binds misp-backup to ClusterRole/cluster-admin",
        "Deployment misp-frontend-green (frontend) runs as default, not misp-frontend",
        "Deployment misp-workers mounts the token of misp-workers",
        "StatefulSet misp-db (database) runs as misp-db, not misp-database",
        "Job stray (no name label) runs as misp-workers, not misp-",
    ]


def test_an_account_without_the_automount_field_mounts_its_token():
    objects = clean()
    objects["ServiceAccount"][0] = {"metadata": {"name": "misp-frontend"}}
    assert service_account_audit_problems(objects, COMPONENTS, API_ACCESS, NS) == [
        "service account misp-frontend mounts its token (automountServiceAccountToken is not false)"
    ]


def test_registered():
    assert FilterModule().filters() == {"service_account_audit_problems": service_account_audit_problems}
