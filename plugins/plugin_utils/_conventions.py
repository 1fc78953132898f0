# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract between the collection's layers (internal to this collection).

The only place the names, labels, Secret keys and pod security settings that one role writes and
another reads are written. Roles read them through the lookup ``cti.misp_platform.conventions``,
tests import this module; docs/development.md describes them.
"""

from __future__ import annotations

import copy

# Every object of the platform carries these; NetworkPolicies and audits select on part-of.
LABELS = {
    "app.kubernetes.io/part-of": "misp",
    "app.kubernetes.io/managed-by": "cti.misp_platform",
}

# Kubernetes Secrets in the MISP namespace: written by the vault role (or misp_common from
# misp_secrets), read by the MISP pods. The first four exist in every deployment; oidc, proxy
# and smtp only with their feature on.
SECRETS = {
    "database": {"name": "misp-database", "data_keys": ["username", "password", "root-password"]},
    "redis": {"name": "misp-redis", "data_keys": ["password"]},
    "app": {"name": "misp-app", "data_keys": ["salt", "encryption-key", "gpg-passphrase", "admin-api-key", "uuid"]},
    "supervisor": {"name": "misp-supervisor", "data_keys": ["username", "password"]},
    "oidc": {"name": "misp-oidc", "data_keys": ["client-secret"]},
    "proxy": {"name": "misp-proxy", "data_keys": ["username", "password"]},
    "smtp": {"name": "misp-smtp", "data_keys": ["username", "password"]},
}
BASE_SECRETS = ("database", "redis", "app", "supervisor")

# Services of the MISP layer; NetworkPolicies name the ports.
SERVICES = {
    "frontend": {"name": "misp-frontend", "port": 80, "port_name": "http", "target_port": 8080},
    "workers": {"name": "misp-workers", "port": 9001, "port_name": "supervisor", "target_port": 9001},
    "database": {"name": "misp-db", "port": 3306, "port_name": "mysql", "target_port": 3306},
    "redis": {"name": "misp-redis", "port": 6379, "port_name": "redis", "target_port": 6379},
}

# Pod Security "restricted" for the pods running the MISP image (www-data, uid/gid 33 there) and
# the backup and restore pods, which write the same files volume.
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 33,
    "runAsGroup": 33,
    "fsGroup": 33,
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}

# What `kubectl rollout restart` patches into a pod template.
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"

CONVENTIONS = {
    "labels": LABELS,
    "part_of_labels": {"app.kubernetes.io/part-of": LABELS["app.kubernetes.io/part-of"]},
    "part_of_selector": "app.kubernetes.io/part-of=" + LABELS["app.kubernetes.io/part-of"],
    "secrets": SECRETS,
    "base_secrets": list(BASE_SECRETS),
    "services": SERVICES,
    "pod_security_context": POD_SECURITY_CONTEXT,
    "container_security_context": CONTAINER_SECURITY_CONTEXT,
    "restart_annotation": RESTART_ANNOTATION,
}


def convention(name: str):
    """A copy of the convention ``name`` (callers may change it); KeyError names the unknown one."""
    if name not in CONVENTIONS:
        raise KeyError(f"unknown convention {name!r}; known: {', '.join(sorted(CONVENTIONS))}")
    return copy.deepcopy(CONVENTIONS[name])
