"""The keycloak role against the real Keycloak dev server, with its client secret from the real OpenBao.

The vault role runs first (its own namespace and mount) to generate the OIDC client secret, as
playbooks/identity.yml does. Every run is verbose (-vvv) and searched for the secret values.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from pathlib import Path

import hvac
import pytest
from kubernetes import client, config

from tests.integration._helpers import vault_namespace, vault_role_vars
from tests.integration.test_vault_role import changed_tasks
from tests.unit.roles.misp_common.test_oidc_config import parse_php_config

pytestmark = [pytest.mark.rig, pytest.mark.slow]

TARGETS = Path(__file__).parent / "targets"
MOUNT = "kc-platform"
TEST_USERS = [
    {"username": "alice", "roles": ["misp-site-admin"]},
    {"username": "olga", "roles": ["misp-org-admin"]},
    {"username": "bob", "roles": ["misp-user", "misp-read-only"]},
]


@pytest.fixture(scope="module")
def core(k8s_cluster):
    return client.CoreV1Api(config.new_client_from_config(config_file=k8s_cluster["kubeconfig"]))


@pytest.fixture(scope="module")
def ns(core):
    yield from vault_namespace(core, "kc-test")


@pytest.fixture(scope="module")
def outputs():
    return []


@pytest.fixture(scope="module")
def extravars(openbao, keycloak, k8s_cluster, ns, tmp_path_factory):
    return {
        **vault_role_vars(openbao, k8s_cluster["kubeconfig"], ns, MOUNT),
        "keycloak_url": keycloak["KEYCLOAK_URL"],
        "keycloak_admin_username": keycloak["KEYCLOAK_ADMIN_USERNAME"],
        "keycloak_admin_password": keycloak["KEYCLOAK_ADMIN_PASSWORD"],
        "misp_base_url": "https://misp.example.org",
        "keycloak_test_users": TEST_USERS,
        "keycloak_test_facts_path": str(tmp_path_factory.mktemp("kc") / "facts.json"),
    }


@pytest.fixture(scope="module")
def play(run_playbook, extravars, outputs):
    def call(name, **extra):
        result = run_playbook(TARGETS / name / "converge.yml", {**extravars, **extra}, env={"ANSIBLE_VERBOSITY": "3"})
        outputs.append(result.stdout + result.stderr)
        assert result.rc == 0, result.stdout[-6000:]
        return result

    return call


@pytest.fixture(scope="module")
def converged(play, extravars):
    play("vault")
    first = play("keycloak")
    second = play("keycloak")
    return first, second, json.loads(Path(extravars["keycloak_test_facts_path"]).read_text())


@pytest.fixture(scope="module")
def misp_converged(converged, play, core, ns):
    """keycloak, misp_common and misp_frontend in one play (twice), with the Secrets the vault role wrote."""
    extra = {"misp_secrets_source": "vault", "misp_frontend_wait": False}
    first = play("keycloak_misp", **extra)
    second = play("keycloak_misp", **extra)
    return first, second, core.read_namespaced_config_map("misp-config", ns).data


@pytest.fixture(scope="module")
def vault_secrets(openbao):
    bao = hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])

    def read(path):
        return bao.secrets.kv.v2.read_secret_version(path=path, mount_point=MOUNT, raise_on_deleted_version=True)[
            "data"
        ]["data"]

    return {"client": read("misp/oidc")["client-secret"], "users": read("keycloak/test-users")}


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def tokens_for(keycloak, user: dict, password: str, client_secret: str) -> dict:
    """Tokens of the password grant for a test user of client misp."""
    form = {
        "grant_type": "password",
        "client_id": "misp",
        "client_secret": client_secret,
        "username": user["username"],
        "password": password,
        "scope": "openid",
    }
    url = f"{keycloak['KEYCLOAK_URL']}/realms/misp/protocol/openid-connect/token"
    with urllib.request.urlopen(url, urllib.parse.urlencode(form).encode(), timeout=60) as resp:  # noqa: S310 - loopback
        return json.load(resp)


def test_second_run_changes_nothing(converged):
    first, second = converged[:2]
    assert first.changed > 0
    assert second.changed == 0, changed_tasks(second.stdout)


def test_published_facts(converged, keycloak):
    facts = converged[2]
    provider = f"{keycloak['KEYCLOAK_URL']}/realms/misp"
    assert facts["provider_url"] == facts["issuer"] == provider
    assert facts["client_id"] == "misp"
    assert facts["roles_property"] == "roles"
    assert facts["role_mapper"] == {"misp-site-admin": 1, "misp-org-admin": 2, "misp-user": 3, "misp-read-only": 6}
    assert facts["client_secret_secret"] == {"name": "misp-oidc", "key": "client-secret"}


@pytest.mark.parametrize("user", TEST_USERS, ids=[u["username"] for u in TEST_USERS])
def test_token_carries_roles_and_issuer(converged, keycloak, vault_secrets, user):
    tokens = tokens_for(keycloak, user, vault_secrets["users"][user["username"]], vault_secrets["client"])
    for name in ("access_token", "id_token"):
        got = claims(tokens[name])
        assert got["iss"] == converged[2]["provider_url"]
        mapped = [role for role in got["roles"] if role in converged[2]["role_mapper"]]
        assert sorted(mapped) == sorted(user["roles"]), name


def test_client_redirect_uris(converged, keycloak):
    """The redirect URIs derive from misp_base_url (read through the admin API)."""
    form = {
        "grant_type": "password",
        "client_id": "admin-cli",
        "username": keycloak["KEYCLOAK_ADMIN_USERNAME"],
        "password": keycloak["KEYCLOAK_ADMIN_PASSWORD"],
    }
    base = keycloak["KEYCLOAK_URL"]
    token_url = f"{base}/realms/master/protocol/openid-connect/token"
    with urllib.request.urlopen(token_url, urllib.parse.urlencode(form).encode(), timeout=60) as resp:  # noqa: S310
        token = json.load(resp)["access_token"]
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base}/admin/realms/misp/clients?clientId=misp", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
        (misp,) = json.load(resp)
    assert set(misp["redirectUris"]) == {"https://misp.example.org/users/login", "https://misp.example.org/*"}
    assert misp["attributes"]["post.logout.redirect.uris"] == "https://misp.example.org/*"
    assert misp["publicClient"] is False
    assert [m["config"]["claim.name"] for m in misp["protocolMappers"] if m["name"] == "misp-roles"] == ["roles"]


def test_misp_oidc_second_run_changes_nothing(misp_converged):
    assert misp_converged[1].changed == 0, changed_tasks(misp_converged[1].stdout)


@pytest.mark.parametrize("user", TEST_USERS, ids=[u["username"] for u in TEST_USERS])
def test_misp_config_matches_the_tokens(misp_converged, converged, keycloak, vault_secrets, core, ns, user):
    """The issuer MISP checks is the `iss` of real tokens, got with the secret MISP's pods receive."""
    config = parse_php_config(misp_converged[2]["config.php"])
    assert config["Security"]["auth"] == ["OidcAuth.Oidc"]
    oidc = config["OidcAuth"]
    assert oidc["client_id"] == "misp"
    assert oidc["client_secret"] == {"env": "MISP_OIDC_CLIENT_SECRET"}
    assert oidc["role_mapper"] == converged[2]["role_mapper"]
    secret = core.read_namespaced_secret("misp-oidc", ns).data["client-secret"]
    tokens = tokens_for(keycloak, user, vault_secrets["users"][user["username"]], base64.b64decode(secret).decode())
    for name in ("access_token", "id_token"):
        got = claims(tokens[name])
        assert got["iss"] == oidc["issuer"] == oidc["provider_url"], name
        assert got["azp"] == oidc["client_id"], name
        assert [role for role in got[oidc["roles_property"]] if role in oidc["role_mapper"]], name


def test_misp_config_has_no_client_secret(misp_converged, vault_secrets):
    assert "'client_secret' => getenv('MISP_OIDC_CLIENT_SECRET')" in misp_converged[2]["config.php"]
    assert not [key for key, text in misp_converged[2].items() if vault_secrets["client"] in text]
    assert "CakePlugin::load('OidcAuth');" in misp_converged[2]["bootstrap.php"]


def test_frontend_takes_client_secret_from_secret(misp_converged, core, ns):
    apps = client.AppsV1Api(core.api_client)
    (deployment,) = apps.list_namespaced_deployment(ns, label_selector="app.kubernetes.io/component=frontend").items
    refs = {
        container.name: [
            (env.value_from.secret_key_ref.name, env.value_from.secret_key_ref.key)
            for env in container.env or []
            if env.name == "MISP_OIDC_CLIENT_SECRET"
        ]
        for container in deployment.spec.template.spec.containers
    }
    # php-fpm runs config.php; the value is never inlined in the pod template.
    assert refs["php-fpm"] == [("misp-oidc", "client-secret")], refs
    inlined = [e.name for c in deployment.spec.template.spec.containers for e in c.env or [] if e.value is not None]
    assert "MISP_OIDC_CLIENT_SECRET" not in inlined


def test_no_secret_in_outputs_or_configmaps(converged, misp_converged, outputs, vault_secrets, extravars, core, ns):
    values = [
        vault_secrets["client"],
        *vault_secrets["users"].values(),
        extravars["keycloak_admin_password"],
        extravars["vault_token"],
    ]
    text = "\n".join(outputs)
    assert not [v for v in values if v in text], "a secret value was printed"
    for cm in core.list_namespaced_config_map(ns).items:
        assert not [v for v in values if v in f"{cm.data} {cm.binary_data}"], cm.metadata.name
