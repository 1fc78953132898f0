"""Which Deployments and StatefulSets a rotation of Secrets restarts."""

from __future__ import annotations

from ansible_collections.cti.misp_platform.plugins.filter.workloads_using_secrets import (
    FilterModule,
    workloads_using_secrets,
)


def workload(name, **pod):
    return {"metadata": {"name": name}, "spec": {"template": {"spec": {"containers": [], **pod}}}}


def container(**fields):
    return {"name": "c", **fields}


READ = [
    {
        "item": "Deployment",
        "resources": [
            workload(
                "env",
                containers=[
                    container(
                        env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "misp-redis", "key": "password"}}}]
                    )
                ],
            ),
            workload(
                "plain",
                containers=[
                    container(env=[{"name": "A", "value": "misp-redis"}, {"name": "B", "valueFrom": {"fieldRef": {}}}])
                ],
            ),
            workload(
                "init-env-from",
                containers=[container()],
                initContainers=[container(envFrom=[{"secretRef": {"name": "misp-app"}}])],
            ),
            workload("config-only", containers=[container(envFrom=[{"configMapRef": {"name": "misp-redis"}}])]),
        ],
    },
    {
        "item": "StatefulSet",
        "resources": [
            workload("volume", volumes=[{"name": "v", "secret": {"secretName": "misp-database"}}]),
            workload(
                "projected",
                volumes=[
                    {
                        "name": "p",
                        "projected": {"sources": [{"configMap": {"name": "x"}}, {"secret": {"name": "misp-oidc"}}]},
                    }
                ],
            ),
            workload("empty-dir", volumes=[{"name": "e", "emptyDir": {}}]),
        ],
    },
]


def test_every_way_a_pod_uses_a_secret():
    secrets = ["misp-redis", "misp-app", "misp-database", "misp-oidc"]
    assert workloads_using_secrets(READ, secrets) == [
        {"kind": "Deployment", "name": "env"},
        {"kind": "Deployment", "name": "init-env-from"},
        {"kind": "StatefulSet", "name": "volume"},
        {"kind": "StatefulSet", "name": "projected"},
    ]


def test_only_the_workloads_of_the_rotated_secrets():
    assert workloads_using_secrets(READ, ["misp-database"]) == [{"kind": "StatefulSet", "name": "volume"}]
    assert workloads_using_secrets(READ, ["misp-other"]) == []
    assert workloads_using_secrets(READ, []) == []


def test_no_workloads():
    assert workloads_using_secrets([{"item": "Deployment", "resources": []}], ["misp-redis"]) == []


def test_registered():
    assert FilterModule().filters() == {"workloads_using_secrets": workloads_using_secrets}
