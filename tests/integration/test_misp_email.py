"""MISP's e-mail through a real SMTP server: the settings email.php holds, the credentials from
Vault, and delivery with STARTTLS or implicit TLS and SMTP AUTH (docs/security.md, "E-mail").

The SMTP server is aiosmtpd (tests/rig/peers/smtp.py) on loopback, with a certificate of a CA
made at its start and AUTH required. The vault role delivers the account the site wrote into
Vault (vault_site_secrets) as Secret misp-smtp; misp_common and misp_workers render email.php
into ConfigMap misp-config and the workers' environment.

MISP's PHP cannot run here, so ``send_like_cakephp`` stands for CakePHP 2's SmtpTransport and
CakeSocket (lib/Cake/Network/Email/SmtpTransport.php, lib/Cake/Network/CakeSocket.php), which
MISP's SendEmail uses with email.php's ``default`` profile: it takes exactly the rendered profile,
parsed back from the ConfigMap, and resolves each ``getenv('X')`` from the workers' pod
environment as Kubernetes fills it (secretKeyRef -> the Secret's value).
"""

from __future__ import annotations

import base64
import json
import secrets
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

import certifi
import hvac
import pytest
from kubernetes import client

from tests.integration._helpers import static_storage_class, static_volume, vault_namespace, vault_role_vars
from tests.integration.conftest import _peer
from tests.integration.test_vault_role import changed_tasks
from tests.rig.peers.smtp import SMTP
from tests.unit.roles.misp_common.test_email_config import load_email_php
from tests.unit.roles.misp_common.test_email_config import render as render_email

pytestmark = [pytest.mark.rig, pytest.mark.slow]

TARGET = Path(__file__).parent / "targets" / "misp_email" / "converge.yml"
# Where the init container writes the image's CA bundle plus misp_common_ca_certificates.
POD_BUNDLE = "/etc/misp-ca/ca-certificates.crt"
SENDER = "misp-alerts@example.org"


class CakeSmtpError(Exception):
    """CakePHP's SocketException: its message, with the server's reply when there was one."""


def send_like_cakephp(profile: dict, files: dict, to: str, subject: str, body: str) -> None:
    """One message the way CakePHP 2 sends it with an email.php profile:

    - host ``ssl://<name>``: TLS from the first byte (CakeSocket passes the scheme to
      stream_socket_client), otherwise plain TCP; the certificate is verified for <name> against
      ``context.ssl.cafile``, else CakePHP's own Mozilla bundle (certifi is the same bundle);
    - ``EHLO <client or localhost>``; with ``'tls' => true`` STARTTLS (220), then EHLO again;
    - with username and password: ``AUTH LOGIN`` (334), username (334), password (235), failing
      with CakePHP's own messages;
    - MAIL FROM the profile's ``from``, RCPT TO, DATA, QUIT.

    ``profile`` is as PHP built it in the pod (credentials already read from its environment),
    ``files`` maps paths in the pod to local files with the same content.
    """
    scheme, _sep, host = profile["host"].rpartition("://")
    cafile = profile.get("context", {}).get("ssl", {}).get("cafile")
    context = ssl.create_default_context(cafile=files[cafile] if cafile else certifi.where())
    client_name = profile.get("client") or "localhost"
    try:
        if scheme in ("ssl", "tls"):
            conn = smtplib.SMTP_SSL(host, profile["port"], client_name, timeout=profile["timeout"], context=context)
        else:
            conn = smtplib.SMTP(host, profile["port"], client_name, timeout=profile["timeout"])
    except (OSError, smtplib.SMTPException) as exc:
        raise CakeSmtpError(f"Unable to connect to SMTP server. ({exc})") from exc
    with conn:
        if conn.ehlo(client_name)[0] != 250:
            raise CakeSmtpError("SMTP server did not accept the connection.")
        if profile.get("tls"):
            try:
                conn.starttls(context=context)
            except (OSError, smtplib.SMTPException) as exc:
                raise CakeSmtpError(
                    "SMTP server did not accept the connection or trying to connect to non TLS SMTP server using TLS."
                ) from exc
            conn.ehlo(client_name)
        username, password = profile.get("username"), profile.get("password")
        if username is not None and password is not None:
            code, reply = conn.docmd("AUTH", "LOGIN")
            if code not in (334, 500, 502, 504):
                raise CakeSmtpError(f"SMTP Error: {code} {reply.decode()}")
            if code == 504:
                raise CakeSmtpError("SMTP authentication method not allowed, check if SMTP server requires TLS.")
            if code != 334:
                raise CakeSmtpError(
                    "AUTH command not recognized or not implemented, SMTP server may not require authentication."
                )
            for item, expected, refusal in ((username, 334, "username"), (password, 235, "password")):
                code, reply = conn.docmd(base64.b64encode(item.encode()).decode())
                if code != expected:
                    raise CakeSmtpError(f"SMTP server did not accept the {refusal}. ({code} {reply.decode()})")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = profile["from"], to, subject
        message.set_content(body)
        try:
            conn.sendmail(profile["from"], [to], message.as_bytes())
        except smtplib.SMTPException as exc:
            raise CakeSmtpError(f"SMTP Error: {exc}") from exc


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    """SMTP_HOST, SMTP_PORT (STARTTLS required), SMTPS_PORT, SMTP_USERNAME, SMTP_PASSWORD,
    SMTP_CA_FILE, SMTP_MAIL_DIR."""
    yield from _peer(SMTP, tmp_path_factory)


def delivered(smtp, listener: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((Path(smtp["SMTP_MAIL_DIR"]) / listener).glob("*.json"))]


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def ns(core):
    yield from vault_namespace(core, "misp-email")


@pytest.fixture(scope="module")
def pod_bundle(smtp, tmp_path_factory):
    """This machine's copy of the bundle the init container builds: image bundle + the site CA."""
    path = tmp_path_factory.mktemp("bundle") / "ca-certificates.crt"
    path.write_text(Path(certifi.where()).read_text() + "\n" + Path(smtp["SMTP_CA_FILE"]).read_text())
    return {POD_BUNDLE: str(path)}


@pytest.fixture(scope="module")
def site(openbao, k8s_cluster, ns, smtp, core):
    """Vault with the SMTP account at <mount>/misp/smtp (as the site writes it), a static volume
    for misp-files, and the roles' variables."""
    mount = f"{ns}-kv"
    bao = hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])
    bao.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    account = {"username": smtp["SMTP_USERNAME"], "password": smtp["SMTP_PASSWORD"]}
    bao.secrets.kv.v2.create_or_update_secret(mount_point=mount, path="misp/smtp", secret=account)
    storage = client.StorageV1Api(core.api_client)
    storage.create_storage_class(static_storage_class(f"{ns}-static"))
    core.create_persistent_volume(static_volume(ns, "misp-files", "ReadWriteMany", f"{ns}-static"))
    extravars = {
        **vault_role_vars(openbao, k8s_cluster["kubeconfig"], ns, mount),
        "vault_site_secrets": [{"name": "smtp", "k8s_secret": "misp-smtp", "keys": ["username", "password"]}],
        "misp_secrets_source": "vault",
        "misp_base_url": "https://misp.example.org",
        "misp_image": {"repository": "ghcr.io/misp/misp-docker/misp-core", "tag": "v2.5.31", "digest": ""},
        # Only the rendered settings and the pod environment matter here: the workers pod stays on
        # a kwok node, not on the real node inventories/local places MISP on.
        "misp_common_node_selector": {},
        "misp_common_tolerations": [],
        "misp_common_files_storage_class": f"{ns}-static",
        "misp_common_files_size": "1Gi",
        "misp_workers_processes": {"default": 1, "email": 1, "cache": 1, "prio": 1, "update": 1},
        "misp_workers_wait_timeout": 180,
        "misp_common_smtp_host": smtp["SMTP_HOST"],
        "misp_common_smtp_port": smtp["SMTP_PORT"],
        "misp_common_smtp_tls": "starttls",
        "misp_common_smtp_auth": True,
        "misp_common_email_from": SENDER,
        "misp_common_ca_certificates": [Path(smtp["SMTP_CA_FILE"]).read_text()],
    }
    never = [account["password"], extravars["vault_token"]]
    yield {"extravars": extravars, "vault": bao, "mount": mount, "account": account, "printed_never": never}
    core.delete_persistent_volume(f"{ns}-misp-files")
    storage.delete_storage_class(f"{ns}-static")
    bao.sys.disable_secrets_engine(mount)


@pytest.fixture(scope="module")
def outputs():
    return []


@pytest.fixture(scope="module")
def converge(run_playbook, site, outputs):
    def run(**extra):
        env = {"K8S_AUTH_KUBECONFIG": site["extravars"]["cti_kubeconfig"], "ANSIBLE_VERBOSITY": "3"}
        result = run_playbook(TARGET, {**site["extravars"], **extra}, env=env, timeout=1200)
        outputs.append(result.stdout + result.stderr)
        # -vvv prints whole objects: show the failed task, not only the output's tail.
        failed = max(result.stdout.rfind("fatal: "), result.stdout.rfind("failed: ["))
        assert result.rc == 0, result.stdout[failed - 2000 : failed + 4000] if failed >= 0 else result.stdout[-6000:]
        return result

    return run


def workers_state(core, ns) -> tuple[dict, dict, str]:
    """(email.php's default profile from misp-config as PHP builds it in the supervisord
    container, that container's environment as Kubernetes fills it, the pod template's config
    checksum)."""
    (deployment,) = (
        client.AppsV1Api(core.api_client)
        .list_namespaced_deployment(ns, label_selector="app.kubernetes.io/component=workers")
        .items
    )
    (container,) = [c for c in deployment.spec.template.spec.containers if c.name == "supervisord"]
    environ = {}
    for env in container.env or []:
        if env.value_from and env.value_from.secret_key_ref:
            ref = env.value_from.secret_key_ref
            environ[env.name] = base64.b64decode(core.read_namespaced_secret(ref.name, ns).data[ref.key]).decode()
        elif env.value is not None:
            environ[env.name] = env.value
    # email.php loaded by PHP with exactly that environment, as php-fpm and the workers load it.
    profile = load_email_php(core.read_namespaced_config_map("misp-config", ns).data["email.php"], environ)["default"]
    return profile, environ, deployment.spec.template.metadata.annotations["checksum/config"]


@pytest.fixture(scope="module")
def converged(converge, core, ns):
    first = converge()
    second = converge()
    return first, second, workers_state(core, ns)


def test_second_run_changes_nothing(converged):
    first, second, _state = converged
    assert first.changed > 0
    assert second.changed == 0, changed_tasks(second.stdout)


def test_email_php_and_the_workers_environment(converged, smtp, core, ns):
    profile, environ, _checksum = converged[2]
    assert profile["host"] == "127.0.0.1" and profile["port"] == smtp["SMTP_PORT"]
    assert profile["tls"] is True
    assert profile["username"] == smtp["SMTP_USERNAME"]
    assert profile["password"] == smtp["SMTP_PASSWORD"]
    assert profile["context"] == {"ssl": {"cafile": POD_BUNDLE}}
    # From Secret misp-smtp, which the vault role wrote from Vault; never a literal value.
    assert environ["MISP_SMTP_USERNAME"] == smtp["SMTP_USERNAME"]
    assert environ["MISP_SMTP_PASSWORD"] == smtp["SMTP_PASSWORD"]
    (deployment,) = (
        client.AppsV1Api(core.api_client)
        .list_namespaced_deployment(ns, label_selector="app.kubernetes.io/component=workers")
        .items
    )
    literal = [e.name for c in deployment.spec.template.spec.containers for e in c.env or [] if e.value is not None]
    assert "MISP_SMTP_PASSWORD" not in literal and "MISP_SMTP_USERNAME" not in literal


def test_starttls_delivery_with_the_rendered_settings(converged, smtp, pod_bundle):
    profile, _environ, _checksum = converged[2]
    subject = f"MISP STARTTLS {secrets.token_hex(4)}"
    send_like_cakephp(profile, pod_bundle, "analyst@example.org", subject, "An event was published.")
    (message,) = [m for m in delivered(smtp, "starttls") if f"Subject: {subject}" in m["data"]]
    assert message["login"] == smtp["SMTP_USERNAME"]
    assert message["mail_from"] == SENDER and message["rcpt_tos"] == ["analyst@example.org"]
    assert f"From: {SENDER}" in message["data"] and "An event was published." in message["data"]


def test_implicit_tls_delivery_with_the_rendered_settings(converged, smtp, pod_bundle, tmp_path):
    """The same settings with misp_common_smtp_tls: implicit, to the server's SMTPS port."""
    _profile, environ, _checksum = converged[2]
    result, rendered = render_email(
        tmp_path,
        misp_common_smtp_host=smtp["SMTP_HOST"],
        misp_common_smtp_port=smtp["SMTPS_PORT"],
        misp_common_smtp_tls="implicit",
        misp_common_smtp_auth=True,
        misp_common_email_from=SENDER,
        misp_common_ca_certificates=[Path(smtp["SMTP_CA_FILE"]).read_text()],
    )
    assert result.rc == 0, result.stdout[-3000:]
    profile = load_email_php(rendered["text"], environ)["default"]
    assert profile["host"] == f"ssl://{smtp['SMTP_HOST']}"
    subject = f"MISP SMTPS {secrets.token_hex(4)}"
    send_like_cakephp(profile, pod_bundle, "analyst@example.org", subject, "Implicit TLS.")
    (message,) = [m for m in delivered(smtp, "implicit") if f"Subject: {subject}" in m["data"]]
    assert message["login"] == smtp["SMTP_USERNAME"] and message["mail_from"] == SENDER


def test_relay_certificate_is_verified(converged, smtp, tmp_path):
    """Without the site CA in misp_common_ca_certificates, email.php names no CA file and
    CakePHP's own bundle does not trust the relay: nothing is sent."""
    _profile, environ, _checksum = converged[2]
    result, rendered = render_email(
        tmp_path,
        misp_common_smtp_host=smtp["SMTP_HOST"],
        misp_common_smtp_port=smtp["SMTP_PORT"],
        misp_common_smtp_tls="starttls",
        misp_common_smtp_auth=True,
    )
    assert result.rc == 0, result.stdout[-3000:]
    before = len(delivered(smtp, "starttls"))
    with pytest.raises(CakeSmtpError, match="non TLS SMTP server using TLS") as failure:
        profile = load_email_php(rendered["text"], environ)["default"]
        send_like_cakephp(profile, {}, "analyst@example.org", "unverified", "x")
    assert "CERTIFICATE_VERIFY_FAILED" in repr(failure.value.__cause__)
    assert len(delivered(smtp, "starttls")) == before


def test_wrong_password_from_vault_fails_clearly(converged, converge, site, smtp, core, ns, pod_bundle):
    """A wrong password in Vault reaches the pods (the config checksum changes, so they roll)
    and the relay refuses it with CakePHP's message; nothing is delivered."""
    _profile, _environ, checksum = converged[2]
    wrong = {**site["account"], "password": secrets.token_urlsafe(18)}
    site["printed_never"].append(wrong["password"])
    site["vault"].secrets.kv.v2.create_or_update_secret(mount_point=site["mount"], path="misp/smtp", secret=wrong)
    try:
        assert converge().changed > 0
        profile, environ, new_checksum = workers_state(core, ns)
        assert environ["MISP_SMTP_PASSWORD"] == wrong["password"]
        assert new_checksum != checksum
        before = len(delivered(smtp, "starttls"))
        with pytest.raises(CakeSmtpError, match=r"SMTP server did not accept the password\. \(535 "):
            send_like_cakephp(profile, pod_bundle, "analyst@example.org", "wrong password", "x")
        assert len(delivered(smtp, "starttls")) == before
    finally:
        site["vault"].secrets.kv.v2.create_or_update_secret(
            mount_point=site["mount"], path="misp/smtp", secret=site["account"]
        )


def test_no_secret_in_outputs_or_configmaps(converged, outputs, site, core, ns):
    values = site["printed_never"]
    text = "\n".join(outputs)
    assert not [v for v in values if v in text], "a secret value was printed"
    for cm in core.list_namespaced_config_map(ns).items:
        assert not [v for v in values if v in f"{cm.data} {cm.binary_data}"], cm.metadata.name
