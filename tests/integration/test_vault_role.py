"""The vault role and playbooks/rotate_secrets.yml against the real OpenBao dev server and the rig's cluster.

Every run is verbose (-vvv): the module collects the complete output of all of them and, at the
end, checks that no value Vault holds shows in it. Each test module works in its own namespace
and KV mount, removed afterwards.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import uuid
from pathlib import Path

import hvac
import pytest
import yaml
from hvac.exceptions import Forbidden
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.integration._helpers import vault_namespace, vault_role_vars

pytestmark = [pytest.mark.rig, pytest.mark.slow]

TARGET = Path(__file__).parent / "targets" / "vault"
CONVERGE = TARGET / "converge.yml"
ROTATE = Path(__file__).parents[2] / "playbooks" / "rotate_secrets.yml"
MOUNT = "vt-platform"
# Kubernetes Secret -> KV path (under MOUNT), as the conventions and the role define them.
GENERATED = {
    "misp-database": "misp/database",
    "misp-redis": "misp/redis",
    "misp-app": "misp/app",
    "misp-supervisor": "misp/supervisor",
    "misp-oidc": "misp/oidc",
}
# Site-provided: the test writes it into Vault as a site would; the role only delivers it.
SITE = {"misp-proxy": "misp/proxy"}
SITE_SECRETS = [{"name": "proxy", "k8s_secret": "misp-proxy", "keys": ["username", "password"]}]
DELIVERED = {**GENERATED, **SITE}
GENERATED_PATHS = [*GENERATED.values(), "platform/rke2"]
KV_PATHS = [*GENERATED_PATHS, *SITE.values()]
# Fixed account names, not secrets: everything else in Vault must never be printed.
NOT_SECRET = {("misp/database", "username"), ("misp/supervisor", "username")}


@pytest.fixture(scope="module")
def api(k8s_cluster):
    return client.ApiClient(config.new_client_from_config(config_file=k8s_cluster["kubeconfig"]).configuration)


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def ns(core):
    yield from vault_namespace(core, "vault-test")


@pytest.fixture(scope="module")
def bao(openbao):
    return hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])


@pytest.fixture(scope="module")
def outputs():
    """Complete stdout+stderr of every -vvv run of this module."""
    return []


@pytest.fixture(scope="module")
def seen():
    """Every secret value Vault held at some point of this module (rotated ones included)."""
    return set()


@pytest.fixture(scope="module")
def base_vars(openbao, k8s_cluster, ns):
    return {
        **vault_role_vars(openbao, k8s_cluster["kubeconfig"], ns, MOUNT),
        "vault_site_secrets": SITE_SECRETS,
    }


@pytest.fixture(scope="module")
def play(run_playbook, base_vars, outputs):
    def call(playbook=CONVERGE, check=False, **extra):
        result = run_playbook(playbook, {**base_vars, **extra}, check=check, env={"ANSIBLE_VERBOSITY": "3"})
        outputs.append(result.stdout + result.stderr)
        return result

    return call


def vault_values(bao, seen=None):
    values = {
        path: bao.secrets.kv.v2.read_secret_version(path=path, mount_point=MOUNT, raise_on_deleted_version=True)[
            "data"
        ]["data"]
        for path in KV_PATHS
    }
    if seen is not None:
        seen.update(v for p, kv in values.items() for k, v in kv.items() if (p, k) not in NOT_SECRET)
    return values


def changed_tasks(stdout: str) -> list[str]:
    """Headers of the tasks a run reports as changed, for assertion messages."""
    task, changed = "", []
    for line in stdout.splitlines():
        if line.startswith("TASK ["):
            task = line.rstrip("* ")
        elif line.startswith("changed: ["):
            changed.append(task)
    return changed


def k8s_secret(core, ns, name):
    data = core.read_namespaced_secret(name, ns).data
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


@pytest.fixture(scope="module")
def site_values(bao, seen):
    """The proxy credentials, written into Vault by the test the way the site does (mount first)."""
    if f"{MOUNT}/" not in bao.sys.list_mounted_secrets_engines()["data"]:
        bao.sys.enable_secrets_engine("kv", path=MOUNT, options={"version": "2"})
    values = {"username": f"proxy-{secrets.token_hex(8)}", "password": secrets.token_urlsafe(24)}
    bao.secrets.kv.v2.create_or_update_secret(path=SITE["misp-proxy"], secret=values, mount_point=MOUNT)
    seen.update(values.values())
    return values


@pytest.fixture(scope="module")
def converged(play, bao, seen, site_values):
    """Two converges; returns both results and Vault's values after each."""
    first = play()
    assert first.rc == 0, first.stdout[-6000:]
    after_first = vault_values(bao, seen)
    second = play()
    assert second.rc == 0, second.stdout[-6000:]
    return first, second, after_first, vault_values(bao, seen)


def test_second_run_changes_nothing_and_keeps_every_value(converged):
    first, second, after_first, after_second = converged
    assert first.changed > 0
    assert second.changed == 0, changed_tasks(second.stdout)
    assert after_second == after_first


def test_generated_values_have_misp_formats(converged):
    values = converged[3]
    app = values["misp/app"]
    assert len(app["encryption-key"]) == 32
    assert len(app["admin-api-key"]) == 40 and app["admin-api-key"].isalnum()
    assert str(uuid.UUID(app["uuid"])) == app["uuid"]
    assert values["misp/database"]["username"] == "misp"
    assert len(values["platform/rke2"]["token"]) == 64
    generated = [
        v for p, kv in values.items() for k, v in kv.items() if p in GENERATED_PATHS and (p, k) not in NOT_SECRET
    ]
    assert len(set(generated)) == len(generated), "two secrets share a value"
    assert all(len(v) >= 32 for v in generated)


def test_policies_and_kubernetes_auth(converged, bao, ns, base_vars):
    read = bao.sys.read_policy(f"{ns}-read")["data"]["rules"]
    assert re.findall(r'path "([^"]+)"', read) == [f"{MOUNT}/data/misp/*"]
    assert re.findall(r"capabilities = (.*)", read) == ['["read"]']
    assert f'path "{MOUNT}/data/*"' in bao.sys.read_policy(f"{ns}-operator")["data"]["rules"]
    role = bao.read(f"auth/kubernetes/role/{ns}")["data"]
    assert role["bound_service_account_names"] == ["misp-vault"]
    assert role["bound_service_account_namespaces"] == [ns]
    assert role["token_policies"] == [f"{ns}-read"]
    assert bao.read("auth/kubernetes/config")["data"]["kubernetes_host"] == base_vars["vault_k8s_host"]


def test_service_account_logs_in_and_reads_only_misp(converged, core, ns, openbao):
    """A real login: Vault reviews the service account's token with the rig's apiserver."""
    token = core.create_namespaced_service_account_token(
        "misp-vault", ns, {"spec": {"expirationSeconds": 600}}
    ).status.token
    sa = hvac.Client(url=openbao["VAULT_ADDR"])
    sa.auth.kubernetes.login(role=ns, jwt=token)
    redis = sa.secrets.kv.v2.read_secret_version(path="misp/redis", mount_point=MOUNT, raise_on_deleted_version=True)
    assert redis["data"]["data"]["password"] == converged[3]["misp/redis"]["password"]
    proxy = sa.secrets.kv.v2.read_secret_version(path="misp/proxy", mount_point=MOUNT, raise_on_deleted_version=True)
    assert proxy["data"]["data"] == converged[3]["misp/proxy"]
    with pytest.raises(Forbidden):
        sa.secrets.kv.v2.read_secret_version(path="platform/rke2", mount_point=MOUNT, raise_on_deleted_version=True)
    with pytest.raises(Forbidden):
        sa.secrets.kv.v2.create_or_update_secret(path="misp/redis", secret={"password": "x"}, mount_point=MOUNT)


def test_kubernetes_secrets_hold_vaults_values(converged, core, ns):
    values = converged[3]
    for name, path in DELIVERED.items():
        assert k8s_secret(core, ns, name) == values[path], name


def test_site_secret_delivered_as_vault_holds_it_and_never_written(converged, core, ns, bao, site_values):
    assert k8s_secret(core, ns, "misp-proxy") == site_values
    assert converged[2]["misp/proxy"] == converged[3]["misp/proxy"] == site_values
    # Version 1 is the test's own write: two converges wrote nothing there.
    meta = bao.secrets.kv.v2.read_secret_metadata(path="misp/proxy", mount_point=MOUNT)["data"]
    assert meta["current_version"] == 1


@pytest.mark.parametrize(
    ("site", "message"),
    [
        (
            [*SITE_SECRETS, {"name": "absent", "k8s_secret": "misp-absent", "keys": ["token"]}],
            f"{MOUNT}/misp/absent is missing in Vault",
        ),
        (
            [{"name": "proxy", "k8s_secret": "misp-absent", "keys": ["username", "password", "domain"]}],
            f"{MOUNT}/misp/proxy lacks key domain",
        ),
    ],
    ids=["missing-secret", "missing-key"],
)
def test_incomplete_site_secret_fails_before_any_change(converged, play, bao, core, ns, site, message):
    """A rotation is requested too: it must not happen, nor any Secret be written."""
    before = vault_values(bao)
    result = play(vault_site_secrets=site, vault_rotate=["redis.password"])
    assert result.rc != 0
    assert message in result.stdout + result.stderr, result.stdout[-4000:]
    assert result.changed == 0, changed_tasks(result.stdout)
    assert vault_values(bao) == before
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_secret("misp-absent", ns)
    assert exc.value.status == 404


def test_rotating_a_site_secret_is_refused(converged, play, bao):
    before = vault_values(bao)
    result = play(ROTATE, rotate="proxy.password")
    assert result.rc != 0
    assert 'vault_rotate names site-provided secrets ["proxy"]' in result.stdout, result.stdout[-4000:]
    assert "Vault cannot invent their values" in result.stdout
    assert result.changed == 0, changed_tasks(result.stdout)
    assert vault_values(bao) == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("database", "rotate_secrets: database cannot be rotated by this playbook. Only database.password can"),
        ("database.root-password", "rotate_secrets: database.root-password cannot be rotated by this playbook"),
        # This namespace has no MariaDB to set the new password on first.
        ("database.password", "rotate_secrets: the password of misp-db cannot be rotated now: StatefulSet misp-db"),
        ("redis.password", "rotate_secrets: the password of misp-redis cannot be rotated now: Deployment misp-redis"),
    ],
)
def test_what_the_servers_cannot_take_is_refused(converged, play, bao, core, ns, name, message):
    # Issue 22: a server gets its new password first; what it cannot take changes nothing.
    before = vault_values(bao)
    secret = k8s_secret(core, ns, "misp-database")
    result = play(ROTATE, rotate=name)
    assert result.rc != 0
    assert message in result.stdout, result.stdout[-4000:]
    assert "Nothing was changed." in result.stdout
    assert result.changed == 0, changed_tasks(result.stdout)
    assert vault_values(bao) == before
    assert k8s_secret(core, ns, "misp-database") == secret


def test_check_mode_changes_nothing(converged, play):
    checked = play(check=True)
    assert checked.rc == 0, checked.stdout[-6000:]
    assert checked.changed == 0, changed_tasks(checked.stdout)


def test_rotation_changes_only_that_secret_and_restarts_its_users(converged, play, bao, seen, core, api, ns):
    apps = client.AppsV1Api(api)
    before = vault_values(bao, seen)

    def deployment(name, secret):
        return {
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": "registry.invalid/pause:1",
                                "env": [
                                    {"name": "P", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}
                                ],
                            }
                        ]
                    },
                },
            },
        }

    apps.create_namespaced_deployment(ns, deployment("uses-supervisor", "misp-supervisor"))
    apps.create_namespaced_deployment(ns, deployment("uses-database", "misp-database"))

    rotated = play(ROTATE, rotate="supervisor.password")
    assert rotated.rc == 0, rotated.stdout[-6000:]
    after = vault_values(bao, seen)
    assert after["misp/supervisor"]["password"] != before["misp/supervisor"]["password"]
    assert {p: v for p, v in after.items() if p != "misp/supervisor"} == {
        p: v for p, v in before.items() if p != "misp/supervisor"
    }
    for name, path in DELIVERED.items():
        assert k8s_secret(core, ns, name) == after[path], name

    def restarted(name):
        annotations = apps.read_namespaced_deployment(name, ns).spec.template.metadata.annotations or {}
        return annotations.get("kubectl.kubernetes.io/restartedAt")

    # RFC 3339 with its time zone, as kubectl rollout restart writes it.
    stamp = restarted("uses-supervisor")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp or ""), stamp
    assert not restarted("uses-database")
    # The rotated value is the new normal: converging again changes nothing.
    again = play()
    assert again.rc == 0 and again.changed == 0, changed_tasks(again.stdout)


@pytest.fixture(scope="module")
def stand_in_crds(api):
    """Minimal stand-ins for the operators' CRDs (tests/integration/targets/vault/files), removed afterwards."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted((TARGET / "files").glob("*-crds.yaml")):
        for doc in yaml.safe_load(path.read_text())["items"]:
            names.append(doc["metadata"]["name"])
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise
    yield
    for name in names:
        ext.delete_custom_resource_definition(name)


@pytest.mark.parametrize(
    ("operator", "group", "version", "kinds"),
    [
        ("vso", "secrets.hashicorp.com", "v1beta1", {"vaultconnections", "vaultauths", "vaultstaticsecrets"}),
        ("eso", "external-secrets.io", "v1", {"secretstores", "externalsecrets"}),
    ],
)
def test_operator_mode_creates_the_crs(converged, play, stand_in_crds, api, ns, operator, group, version, kinds):
    result = play(
        vault_delivery="operator", vault_operator=operator, vault_operator_vault_url="http://vault.vault:8200"
    )
    assert result.rc == 0, result.stdout[-6000:]
    custom = client.CustomObjectsApi(api)
    objects = {kind: custom.list_namespaced_custom_object(group, version, ns, kind)["items"] for kind in kinds}
    if operator == "vso":
        (auth,) = objects["vaultauths"]
        assert auth["spec"]["kubernetes"] == {"role": ns, "serviceAccount": "misp-vault"}
        assert objects["vaultconnections"][0]["spec"]["address"] == "http://vault.vault:8200"
        synced = {o["spec"]["destination"]["name"]: o["spec"] for o in objects["vaultstaticsecrets"]}
        assert {n: s["path"] for n, s in synced.items()} == DELIVERED
        assert {(s["mount"], s["type"], s["vaultAuthRef"]) for s in synced.values()} == {(MOUNT, "kv-v2", "misp-vault")}
    else:
        (store,) = objects["secretstores"]
        vault = store["spec"]["provider"]["vault"]
        assert (vault["server"], vault["path"], vault["version"]) == ("http://vault.vault:8200", MOUNT, "v2")
        assert vault["auth"]["kubernetes"]["role"] == ns
        synced = {o["spec"]["target"]["name"]: o["spec"] for o in objects["externalsecrets"]}
        assert {n: s["dataFrom"][0]["extract"]["key"] for n, s in synced.items()} == DELIVERED


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"vault_url": f"http://127.0.0.1:{closed_port()}"}, "is unreachable"),
        ({"vault_token": "not-a-token"}, "rejected the token"),
        ({"vault_kv_mount": "absent-mount", "vault_create_mount": False}, "KV mount absent-mount/ is missing"),
        ({"vault_rotate": ["redis.nope"]}, 'vault_rotate names unknown secrets ["redis.nope"]'),
        (
            {"vault_site_secrets": [{"name": "redis", "k8s_secret": "misp-proxy", "keys": ["password"]}]},
            "name 'redis' is that of a generated secret",
        ),
        (
            {"vault_site_secrets": [{"name": "proxy", "k8s_secret": "misp-redis", "keys": ["password"]}]},
            "k8s_secret 'misp-redis' is delivered from a generated secret",
        ),
        (
            {"vault_site_secrets": [{"name": "proxy", "k8s_secret": "Misp_Proxy", "keys": ["password"]}]},
            "k8s_secret 'Misp_Proxy' is not a DNS-1123 Secret name",
        ),
        (
            {"vault_site_secrets": [{"name": "proxy", "k8s_secret": "misp-proxy", "keys": []}]},
            "keys must be a non-empty list of Secret keys (got [])",
        ),
    ],
    ids=[
        "unreachable",
        "wrong-token",
        "missing-mount",
        "unknown-rotation",
        "site-name-clash",
        "site-secret-clash",
        "site-bad-secret-name",
        "site-no-keys",
    ],
)
def test_bad_vault_fails_before_any_change(play, bao, extra, message):
    mounts_before = set(bao.sys.list_mounted_secrets_engines()["data"])
    result = play(**extra)
    assert result.rc != 0
    assert message in result.stdout + result.stderr, result.stdout[-4000:]
    assert result.changed == 0
    assert set(bao.sys.list_mounted_secrets_engines()["data"]) == mounts_before


def test_a_token_without_an_admin_policy_is_told_apart_from_a_rejected_one(play, bao):
    # Valid, but its default policy cannot list the secrets engines: the role checks the token only
    # after sys/mounts refused it, and says which of the two is wrong.
    token = bao.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    result = play(vault_token=token)
    out = result.stdout + result.stderr
    assert result.rc != 0
    assert "cannot read sys/mounts" in out and "rejected the token" not in out, out[-4000:]
    assert result.changed == 0


def test_no_secret_in_outputs_or_configmaps(converged, outputs, seen, core, ns):
    """Runs last in this module: every value Vault held, searched in every -vvv output and ConfigMap."""
    assert len(outputs) >= 2 and len(seen) >= 10
    text = "\n".join(outputs)
    printed = sum(1 for value in seen if value in text)
    assert printed == 0, f"{printed} secret values printed by the -vvv runs"
    for cm in core.list_namespaced_config_map(ns).items:
        blob = f"{cm.data} {cm.binary_data}"
        assert not [v for v in seen if v in blob], f"secret value in ConfigMap {cm.metadata.name}"
