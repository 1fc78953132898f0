"""Operators' Kubernetes login through Keycloak, end to end (docs/security.md, "Operator access").

1. Cluster layer: ``playbooks/cluster.yml`` on one podman host running the STAND-IN RKE2 of
   tests/doubles/rke2 (as molecule's rke2_ha does) with ``access_rbac_oidc_issuer_url`` set
   writes access_rbac's OIDC flags into ``kube-apiserver-arg`` of /etc/rancher/rke2/config.yaml;
   a missing CA file or a flag set twice fails before the host changes.
2. Identity layer: the keycloak role against the real Keycloak, given an HTTPS listener with a
   certificate of a CA made here (kube-apiserver accepts only https issuers), creates the
   ``kubernetes`` client with its groups mapper, the groups, and test users in them.
3. kube-apiserver: the rig's own build (tests/rig/build.sh) on an etcd of its own, started here
   with exactly the ``kube-apiserver-arg`` entries read back from that config.yaml; only the
   value of oidc-ca-file is replaced by this machine's copy of the file the host holds. The
   rig's shared cluster is left alone: restarting its API server with other flags would break
   every test using it, and tests/rig/cluster.sh takes no extra flags. access_rbac binds the
   groups in a namespace of that API server.
4. Real tokens (password grant of the test users on the ``kubernetes`` client) against it: an
   operator gets exactly the rights of Role misp-operator, a reader those of misp-readonly, a
   user in no group nothing namespaced (403), a token of another client nothing at all (401).
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import hvac
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes import client, config

from tests.integration.conftest import _peer
from tests.integration.test_vault_role import changed_tasks
from tests.playbook import ansible_playbook
from tests.rig import rig_binary
from tests.rig.peers._base import REPO, Peer, PeerError, free_port
from tests.rig.peers._tls import TestCA, key_pem, write_private
from tests.rig.peers.keycloak import Keycloak

pytestmark = [pytest.mark.rig, pytest.mark.slow]

TARGETS = Path(__file__).parent / "targets"
PODMAN_IMAGE = "localhost/cti-misp-rig-debian:bookworm"
RKE2_VERSION = "v1.35.4+rke2r1"
# Where the site has placed Keycloak's CA on the server (access_rbac_oidc_ca_file).
HOST_CA_FILE = "/etc/rancher/oidc/keycloak-ca.crt"
PREFIX = "oidc:"
USERS = {
    "oliver": {"username": "oliver", "roles": ["misp-user"], "groups": ["misp-operators"]},
    "rita": {"username": "rita", "roles": ["misp-read-only"], "groups": ["misp-readonly"]},
    "nora": {"username": "nora", "roles": ["misp-user"]},
}


# --- peers started by this module ---------------------------------------------------------------


class TlsKeycloak(Keycloak):
    """Keycloak's dev server with an HTTPS listener as well. The admin API stays on plain HTTP,
    the way the keycloak role may reach a site's Keycloak on an internal address while browsers,
    kubelogin and kube-apiserver use the public https one (keycloak_public_url)."""

    name = "keycloak-tls"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    def prepare(self) -> None:
        super().prepare()
        self.https_port = free_port()
        self.tls_dir.mkdir(exist_ok=True)
        ca = TestCA("cti-rig keycloak test CA")
        cert, key = ca.issue("keycloak", ips=("127.0.0.1",))
        (self.tls_dir / "ca.crt").write_bytes(ca.cert_pem)
        (self.tls_dir / "tls.crt").write_bytes(cert)
        write_private(self.tls_dir / "tls.key", key)
        self.env.update(
            KEYCLOAK_HTTPS_URL=f"https://127.0.0.1:{self.https_port}", KEYCLOAK_CA_FILE=str(self.tls_dir / "ca.crt")
        )

    def command(self) -> list[str]:
        return [
            *super().command(),
            f"--https-port={self.https_port}",
            f"--https-certificate-file={self.tls_dir / 'tls.crt'}",
            f"--https-certificate-key-file={self.tls_dir / 'tls.key'}",
        ]


class Etcd(Peer):
    """The rig's etcd build, for the API server below only."""

    name = "etcd"

    def prepare(self) -> None:
        self.peer_port = free_port()
        self.env = {"ETCD_URL": f"http://127.0.0.1:{self.port}"}

    def command(self) -> list[str]:
        client_url, peer_url = self.env["ETCD_URL"], f"http://127.0.0.1:{self.peer_port}"
        return [
            str(rig_binary("etcd")),
            "--name=oidc",
            f"--data-dir={self.state_dir / 'data'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=oidc={peer_url}",
        ]


class OidcApiserver(Peer):
    """The rig's kube-apiserver build with RBAC, a cluster CA of its own (serving certificate,
    admin client certificate in system:masters) and the given extra flags."""

    name = "kube-apiserver"
    start_timeout = 240.0

    def __init__(self, state_dir: Path, etcd_url: str, extra_flags: list[str]) -> None:
        super().__init__(state_dir)
        self.etcd_url = etcd_url
        self.extra_flags = extra_flags

    def file(self, name: str) -> Path:
        return self.state_dir / name

    def prepare(self) -> None:
        ca = TestCA("cti-rig oidc apiserver CA")
        serving, serving_key = ca.issue("kube-apiserver", ips=("127.0.0.1",))
        admin, admin_key = ca.issue("oidc-test-admin", organizations=("system:masters",), client=True)
        sa_key = ec.generate_private_key(ec.SECP256R1())
        self.file("ca.crt").write_bytes(ca.cert_pem)
        self.file("serving.crt").write_bytes(serving)
        write_private(self.file("serving.key"), serving_key)
        write_private(self.file("sa.key"), key_pem(sa_key))
        self.file("sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        server = f"https://127.0.0.1:{self.port}"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "oidc", "cluster": {"server": server, "certificate-authority-data": b64(ca.cert_pem)}}
            ],
            "users": [
                {"name": "admin", "user": {"client-certificate-data": b64(admin), "client-key-data": b64(admin_key)}}
            ],
            "contexts": [{"name": "oidc", "context": {"cluster": "oidc", "user": "admin"}}],
            "current-context": "oidc",
        }
        write_private(self.file("kubeconfig"), yaml.safe_dump(kubeconfig).encode())
        self.env = {"SERVER": server, "CA_FILE": str(self.file("ca.crt")), "KUBECONFIG": str(self.file("kubeconfig"))}

    def command(self) -> list[str]:
        return [
            str(rig_binary("kube-apiserver")),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.file('certs')}",
            f"--tls-cert-file={self.file('serving.crt')}",
            f"--tls-private-key-file={self.file('serving.key')}",
            f"--client-ca-file={self.file('ca.crt')}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.file('sa.pub')}",
            f"--service-account-signing-key-file={self.file('sa.key')}",
            "--service-cluster-ip-range=10.255.255.0/24",
            "--authorization-mode=RBAC",
            *self.extra_flags,
        ]

    def ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PeerError(f"kube-apiserver exited with {self.proc.returncode}")
            if request(self.env, "GET", "/readyz")[0] == 200:
                return
            time.sleep(1)
        raise PeerError(f"kube-apiserver was not ready within {self.start_timeout}s")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def request(apiserver: dict, method: str, path: str, token: str | None = None, body: dict | None = None):
    """(status, JSON body) of an API call, anonymous or with a bearer token."""
    context = ssl.create_default_context(cafile=apiserver["CA_FILE"])
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(apiserver["SERVER"] + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, context=context, timeout=30) as resp:  # noqa: S310 - loopback
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    except OSError:
        return 0, {}
    return status, json.loads(text) if text.startswith(b"{") else {"raw": text.decode(errors="replace")}


# --- 1. cluster layer -----------------------------------------------------------------------------


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300, check=check)


@pytest.fixture(scope="module")
def rke2_host(k8s_cluster, api, tmp_path_factory):
    """One Debian systemd host under podman, a kwok Node of its name in the rig's cluster (the
    stand-in RKE2 runs no kubelet) and the stand-in's airgap artifacts; removed afterwards."""
    if podman("image", "exists", PODMAN_IMAGE, check=False).returncode != 0:
        pytest.fail(f"{PODMAN_IMAGE} is missing: run tests/rig/hosts.sh setup", pytrace=False)
    name = f"cti-rig-oidc-{secrets.token_hex(3)}"
    work = tmp_path_factory.mktemp("rke2-oidc")
    artifacts = work / "artifacts" / RKE2_VERSION
    subprocess.run(
        [str(REPO / "tests/doubles/rke2/build-artifacts.sh"), RKE2_VERSION, str(artifacts)],
        check=True,
        capture_output=True,
    )
    core = client.CoreV1Api(api)
    try:
        podman(
            "run", "-d", "--name", name, "--hostname", name, "--systemd=always", "--label=cti.misp.rig=oidc",
            PODMAN_IMAGE, "/sbin/init",
        )  # fmt: skip
        core.create_node(
            {
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {"kubernetes.io/hostname": name, "node-role.kubernetes.io/control-plane": "true"},
                },
                "spec": {"taints": [{"key": "cti.misp/oidc-test", "value": "true", "effect": "NoSchedule"}]},
            }
        )
        podman("exec", name, "systemctl", "is-system-running", "--wait", check=False)
        podman("exec", name, "mkdir", "-p", "/var/lib/rancher/rke2-standin")
        podman("cp", k8s_cluster["kubeconfig"], f"{name}:/var/lib/rancher/rke2-standin/kubeconfig")
        inventory = work / "hosts.yml"
        inventory.write_text(
            f"""\
all:
  children:
    k8s_cluster:
      children:
        rke2_servers:
          hosts:
            {name}: {{ansible_connection: rig_podman}}
        rke2_agents: {{}}
"""
        )
        yield {"name": name, "work": work, "artifacts": artifacts, "inventory": inventory}
    finally:
        podman("rm", "-f", name, check=False)
        try:
            core.delete_node(name)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise


def host_file(rke2_host, path: str) -> str | None:
    """Content of a file on the host, None when it does not exist."""
    result = podman("exec", rke2_host["name"], "cat", path, check=False)
    return result.stdout if result.returncode == 0 else None


@pytest.fixture(scope="module")
def run_cluster(rke2_host, k8s_cluster, keycloak_tls):
    server = yaml.safe_load(Path(k8s_cluster["kubeconfig"]).read_text())["clusters"][0]["cluster"]["server"]

    def run(**extra):
        extravars = {
            # Test-only token, as a real one would come from Vault.
            "rke2_token": "oidc-login-test-5b0d8e2a",
            "rke2_version": RKE2_VERSION,
            "rke2_artifacts_dir": str(rke2_host["artifacts"]),
            "rke2_kubeconfig_dest": str(rke2_host["work"] / "rke2-kubeconfig.yaml"),
            "rke2_kubeconfig_server": server,
            "rke2_ready_timeout": 120,
            "access_rbac_oidc_issuer_url": f"{keycloak_tls['KEYCLOAK_HTTPS_URL']}/realms/misp",
            "access_rbac_oidc_ca_file": HOST_CA_FILE,
            **extra,
        }
        env = {
            "ANSIBLE_INVENTORY": str(rke2_host["inventory"]),
            "ANSIBLE_CONNECTION_PLUGINS": str(REPO / "tests/rig/connection_plugins"),
            "ANSIBLE_PIPELINING": "true",
        }
        return ansible_playbook(REPO / "playbooks/cluster.yml", extravars, env=env, timeout=900)

    return run


@pytest.fixture(scope="module")
def cluster_converged(run_cluster, rke2_host, keycloak_tls):
    """Bad input first (nothing may change), then the CA file in place and two good runs."""
    refused = {"no-ca-file": run_cluster()}
    podman("exec", rke2_host["name"], "mkdir", "-p", str(Path(HOST_CA_FILE).parent))
    podman("cp", keycloak_tls["KEYCLOAK_CA_FILE"], f"{rke2_host['name']}:{HOST_CA_FILE}")
    refused["flag-twice"] = run_cluster(rke2_config={"kube-apiserver-arg": ["oidc-client-id=someone-else"]})
    untouched = host_file(rke2_host, "/etc/rancher/rke2/config.yaml") is None
    first = run_cluster()
    second = run_cluster()
    rendered = host_file(rke2_host, "/etc/rancher/rke2/config.yaml")
    return {"refused": refused, "untouched": untouched, "first": first, "second": second, "config": rendered}


def test_cluster_layer_refuses_bad_input_before_any_change(cluster_converged):
    refused = cluster_converged["refused"]
    run = refused["no-ca-file"]
    assert run.rc != 0 and run.changed == 0, run.stdout[-3000:]
    assert f"access_rbac_oidc_ca_file {HOST_CA_FILE} is not a file on the server" in run.stdout
    run = refused["flag-twice"]
    assert run.rc != 0 and run.changed == 0, run.stdout[-3000:]
    assert "rke2_kube_apiserver_args sets oidc-client-id, which kube-apiserver-arg of rke2_config" in run.stdout
    assert cluster_converged["untouched"], "config.yaml was written by a refused run"


def test_cluster_layer_renders_the_oidc_flags(cluster_converged, keycloak_tls):
    first, second = cluster_converged["first"], cluster_converged["second"]
    assert first.rc == 0, first.stdout[-4000:]
    assert second.rc == 0 and second.changed == 0, changed_tasks(second.stdout)
    rendered = yaml.safe_load(cluster_converged["config"])
    assert rendered["kube-apiserver-arg"] == [
        f"oidc-issuer-url={keycloak_tls['KEYCLOAK_HTTPS_URL']}/realms/misp",
        "oidc-client-id=kubernetes",
        "oidc-username-claim=preferred_username",
        "oidc-username-prefix=oidc:",
        "oidc-groups-claim=groups",
        "oidc-groups-prefix=oidc:",
        f"oidc-ca-file={HOST_CA_FILE}",
    ]


# --- 2. Keycloak ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keycloak_tls(tmp_path_factory):
    """KEYCLOAK_URL (http, admin API), KEYCLOAK_HTTPS_URL, KEYCLOAK_CA_FILE and the admin account."""
    yield from _peer(TlsKeycloak, tmp_path_factory)


@pytest.fixture(scope="module")
def vault_mount(openbao):
    """A KV v2 mount holding the MISP client's secret, which the keycloak role reads (the vault
    role generates it on a site); removed afterwards."""
    mount = f"oidc-login-{secrets.token_hex(3)}"
    bao = hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])
    bao.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    client_secret = secrets.token_urlsafe(24)
    bao.secrets.kv.v2.create_or_update_secret(
        mount_point=mount, path="misp/oidc", secret={"client-secret": client_secret}
    )
    yield {"mount": mount, "client": bao, "client_secret": client_secret}
    bao.sys.disable_secrets_engine(mount)


@pytest.fixture(scope="module")
def keycloak_converged(keycloak_tls, openbao, vault_mount):
    extravars = {
        "keycloak_url": keycloak_tls["KEYCLOAK_URL"],
        "keycloak_public_url": keycloak_tls["KEYCLOAK_HTTPS_URL"],
        "keycloak_admin_username": keycloak_tls["KEYCLOAK_ADMIN_USERNAME"],
        "keycloak_admin_password": keycloak_tls["KEYCLOAK_ADMIN_PASSWORD"],
        "misp_base_url": "https://misp.example.org",
        "keycloak_test_users": list(USERS.values()),
        "vault_url": openbao["VAULT_ADDR"],
        "vault_token": openbao["VAULT_TOKEN"],
        "vault_kv_mount": vault_mount["mount"],
    }
    runs = [ansible_playbook(TARGETS / "keycloak" / "converge.yml", extravars) for _run in range(2)]
    assert runs[0].rc == 0, runs[0].stdout[-6000:]
    passwords = vault_mount["client"].secrets.kv.v2.read_secret_version(
        path="keycloak/test-users", mount_point=vault_mount["mount"], raise_on_deleted_version=True
    )["data"]["data"]
    return {"runs": runs, "passwords": passwords, "extravars": extravars}


def test_keycloak_second_run_changes_nothing(keycloak_converged):
    second = keycloak_converged["runs"][1]
    assert second.rc == 0 and second.changed == 0, changed_tasks(second.stdout)


def token_response(keycloak_tls, client_id: str, username: str, password: str, client_secret: str | None = None):
    """Password grant on the realm's HTTPS endpoint, verified against the test CA."""
    form = {"grant_type": "password", "client_id": client_id, "username": username, "password": password}
    form["scope"] = "openid"
    if client_secret:
        form["client_secret"] = client_secret
    url = f"{keycloak_tls['KEYCLOAK_HTTPS_URL']}/realms/misp/protocol/openid-connect/token"
    context = ssl.create_default_context(cafile=keycloak_tls["KEYCLOAK_CA_FILE"])
    with urllib.request.urlopen(url, urllib.parse.urlencode(form).encode(), timeout=60, context=context) as resp:  # noqa: S310
        return json.load(resp)


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def id_tokens(keycloak_converged, keycloak_tls):
    """The ID token (what kubectl's oidc-login sends) of each test user on the kubernetes client."""
    passwords = keycloak_converged["passwords"]
    return {user: token_response(keycloak_tls, "kubernetes", user, passwords[user])["id_token"] for user in USERS}


def test_id_tokens_carry_audience_and_groups_without_path(id_tokens, keycloak_tls):
    for user, spec in USERS.items():
        got = claims(id_tokens[user])
        assert got["iss"] == f"{keycloak_tls['KEYCLOAK_HTTPS_URL']}/realms/misp"
        assert got["aud"] == "kubernetes" and got["azp"] == "kubernetes"
        assert got["preferred_username"] == user
        assert sorted(got.get("groups", [])) == sorted(spec.get("groups", [])), user


# --- 3. kube-apiserver with the rendered flags ----------------------------------------------------


@pytest.fixture(scope="module")
def apiserver(cluster_converged, keycloak_converged, keycloak_tls, tmp_path_factory):
    """kube-apiserver with the kube-apiserver-arg entries of the host's config.yaml, as
    RKE2 passes them (--name=value); started after the realm exists, so its first fetch of the
    issuer's discovery document succeeds."""
    assert cluster_converged["first"].rc == 0, "the cluster layer did not converge"
    rendered = yaml.safe_load(cluster_converged["config"])["kube-apiserver-arg"]
    # The same CA file, at the path it has here rather than on the host.
    flags = [
        f"--oidc-ca-file={keycloak_tls['KEYCLOAK_CA_FILE']}" if arg.startswith("oidc-ca-file=") else f"--{arg}"
        for arg in rendered
    ]
    etcd = Etcd(tmp_path_factory.mktemp("etcd"))
    try:
        server = OidcApiserver(tmp_path_factory.mktemp("apiserver"), etcd.start()["ETCD_URL"], flags)
        env = server.start()
    except PeerError as exc:
        etcd.stop()
        pytest.fail(str(exc), pytrace=False)
    yield {**env, "flags": flags}
    server.stop()
    etcd.stop()


@pytest.fixture(scope="module")
def admin(apiserver):
    return config.new_client_from_config(config_file=apiserver["KUBECONFIG"])


@pytest.fixture(scope="module")
def rbac(admin, apiserver):
    """access_rbac in a namespace of that API server (twice: the second run changes nothing)."""
    namespace = f"misp-oidc-{secrets.token_hex(3)}"
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": namespace}})
    env = {"K8S_AUTH_KUBECONFIG": apiserver["KUBECONFIG"]}
    runs = [
        ansible_playbook(TARGETS / "access_rbac" / "rbac.yml", {"access_rbac_namespaces": [namespace]}, env=env)
        for _run in range(2)
    ]
    assert runs[0].rc == 0, runs[0].stdout[-4000:]
    return {"namespace": namespace, "runs": runs}


def test_access_rbac_second_run_changes_nothing(rbac):
    second = rbac["runs"][1]
    assert second.rc == 0 and second.changed == 0, changed_tasks(second.stdout)


# --- 4. tokens against the API server -------------------------------------------------------------


def whoami(apiserver, token):
    """(status, userInfo) of a SelfSubjectReview: who the API server takes the token for."""
    status, body = request(
        apiserver,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        token,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return status, body["status"]["userInfo"] if status == 201 else body


def rule_triples(apiserver, token, namespace) -> set[tuple[str, str, str]]:
    """SelfSubjectRulesReview in ``namespace`` as (apiGroup, resource, verb) triples."""
    status, body = request(
        apiserver,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        token,
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}},
    )
    assert status == 201, body
    assert not body["status"].get("incomplete"), body["status"]
    return {
        (group, resource, verb)
        for rule in body["status"]["resourceRules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def role_triples(admin, namespace, name) -> set[tuple[str, str, str]]:
    role = client.RbacAuthorizationV1Api(admin).read_namespaced_role(name, namespace)
    return {
        (group, resource, verb)
        for rule in role.rules
        for group in rule.api_groups
        for resource in rule.resources
        for verb in rule.verbs
    }


def namespaced_list_paths(apiserver, token, namespace) -> list[str]:
    """The list URL in ``namespace`` of every namespaced resource the API server serves."""
    paths = []
    status, core = request(apiserver, "GET", "/api/v1", token)
    assert status == 200, core
    groups = [("/api/v1", core)]
    status, apis = request(apiserver, "GET", "/apis", token)
    for group in apis["groups"]:
        base = f"/apis/{group['preferredVersion']['groupVersion']}"
        groups.append((base, request(apiserver, "GET", base, token)[1]))
    for base, listing in groups:
        for resource in listing["resources"]:
            if resource["namespaced"] and "/" not in resource["name"] and "list" in resource["verbs"]:
                paths.append(f"{base}/namespaces/{namespace}/{resource['name']}")
    return paths


def test_tokens_are_accepted_with_prefixed_names_and_groups(apiserver, id_tokens):
    for user, spec in USERS.items():
        status, info = whoami(apiserver, id_tokens[user])
        assert status == 201, (user, info)
        assert info["username"] == f"{PREFIX}{user}"
        provider_groups = sorted(g for g in info["groups"] if not g.startswith("system:"))
        assert provider_groups == sorted(PREFIX + g for g in spec.get("groups", [])), info
        assert "system:authenticated" in info["groups"]


def test_tokens_of_another_client_or_tampered_are_refused(
    apiserver, id_tokens, keycloak_converged, keycloak_tls, vault_mount
):
    """aud must be the kubernetes client: the MISP client's ID token of the same user is refused."""
    misp_token = token_response(
        keycloak_tls, "misp", "oliver", keycloak_converged["passwords"]["oliver"], vault_mount["client_secret"]
    )["id_token"]
    assert claims(misp_token)["aud"] == "misp"
    assert whoami(apiserver, misp_token)[0] == 401
    header, _payload, signature = id_tokens["oliver"].split(".")
    forged = base64.urlsafe_b64encode(
        json.dumps({**claims(id_tokens["oliver"]), "groups": ["misp-admins"]}).encode()
    ).rstrip(b"=")
    assert whoami(apiserver, f"{header}.{forged.decode()}.{signature}")[0] == 401


@pytest.mark.parametrize(("user", "role"), [("oliver", "misp-operator"), ("rita", "misp-readonly")])
def test_group_members_get_exactly_their_role(apiserver, admin, rbac, id_tokens, user, role):
    """What the authorizer lists for the user = what every authenticated user gets + the Role."""
    namespace = rbac["namespace"]
    baseline = rule_triples(apiserver, id_tokens["nora"], namespace)
    got = rule_triples(apiserver, id_tokens[user], namespace)
    assert got - baseline == role_triples(admin, namespace, role)
    # Elsewhere only the baseline.
    assert rule_triples(apiserver, id_tokens[user], "default") == baseline


def test_operator_requests(apiserver, rbac, id_tokens):
    namespace, token = rbac["namespace"], id_tokens["oliver"]
    assert request(apiserver, "GET", f"/api/v1/namespaces/{namespace}/pods", token)[0] == 200
    assert request(apiserver, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments", token)[0] == 200
    # Allowed, so the answer is "not found", not "forbidden".
    assert request(apiserver, "DELETE", f"/api/v1/namespaces/{namespace}/pods/absent", token)[0] == 404
    assert request(apiserver, "GET", f"/api/v1/namespaces/{namespace}/secrets", token)[0] == 403
    assert request(apiserver, "GET", f"/api/v1/namespaces/{namespace}/configmaps", token)[0] == 403
    assert request(apiserver, "GET", "/api/v1/namespaces/default/pods", token)[0] == 403
    assert request(apiserver, "GET", "/api/v1/nodes", token)[0] == 403


def test_user_in_no_group_gets_nothing_namespaced(apiserver, rbac, id_tokens):
    namespace, token = rbac["namespace"], id_tokens["nora"]
    paths = namespaced_list_paths(apiserver, token, namespace)
    assert len(paths) > 20, paths
    answers = {path: request(apiserver, "GET", path, token)[0] for path in paths}
    assert {path: status for path, status in answers.items() if status != 403} == {}
    # Only the self-reviews every authenticated user may create.
    assert {(g, r) for g, r, _v in rule_triples(apiserver, token, namespace)} <= {
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
    }
