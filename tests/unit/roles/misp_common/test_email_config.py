"""misp_common's email.php: relay, TLS, SMTP AUTH from Secret misp-smtp, and the checks.

Renders the role's template with ansible-playbook (no cluster: render_email.yml runs only the
checks and the template) and loads email.php with PHP itself (Debian's php-cli), the way
CakePHP does: ``new EmailConfig()``, with the pod environment the credentials come from.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.unit.roles.misp_common.test_oidc_config import TEMPLATES
from tests.unit.roles.render import render_playbook

PLAYBOOK = Path(__file__).with_name("render_email.yml")
PROFILES = ("default", "smtp", "fast")
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
# Prints every profile of an EmailConfig as JSON, as CakeEmail sees them after `new EmailConfig()`.
_DUMP = "require $argv[1]; echo json_encode(get_object_vars(new EmailConfig()));"
# What the pods' environment would hold (Secret misp-smtp through env entries).
POD_ENV = {"MISP_SMTP_USERNAME": "smtp-user-5d1e", "MISP_SMTP_PASSWORD": "smtp-password-9c7a"}


def load_email_php(text: str, environ: dict[str, str]) -> dict[str, dict]:
    """Each profile of email.php as PHP builds it, ``getenv`` answered from ``environ`` only.

    A PHP error (a fatal one in a property default, say) fails here with PHP's message.
    """
    with tempfile.TemporaryDirectory(prefix="cti-email-php-") as tmp:
        path = Path(tmp) / "email.php"
        path.write_text(text)
        env = {"PATH": os.environ["PATH"], **environ}
        proc = subprocess.run(
            ["php", "-d", "display_errors=stderr", "-r", _DUMP, str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0 and not proc.stderr, f"PHP refused email.php: {proc.stderr}{proc.stdout}"
    return json.loads(proc.stdout)


def render(tmp_path, **extravars):
    out = tmp_path / "out"
    result = render_playbook(PLAYBOOK, out, templates_dir=str(TEMPLATES), **extravars)
    rendered = {}
    if result.rc == 0:
        text = (out / "email.php").read_text()
        derived = json.loads((out / "vars.json").read_text())
        rendered = {"text": text, "profiles": load_email_php(text, POD_ENV), **derived}
    return result, rendered


def one_profile(rendered) -> dict:
    """MISP's CakeEmail uses 'default'; the others must not differ from it."""
    profiles = rendered["profiles"]
    assert sorted(profiles) == sorted(PROFILES)
    assert profiles["smtp"] == profiles["fast"] == profiles["default"]
    return profiles["default"]


def test_default_is_plain_smtp_without_auth(tmp_path):
    result, got = render(tmp_path)
    assert result.rc == 0, result.stdout[-3000:]
    assert one_profile(got) == {
        "transport": "Smtp",
        "from": "misp@example.org",
        "host": "localhost",
        "port": 25,
        "timeout": 30,
        "client": None,
        "log": False,
    }
    assert not [e for e in got["app_env"] if e["name"].startswith("MISP_SMTP_")]
    assert "smtp" not in got["secret_keys"]


def test_starttls_with_auth_reads_the_secret_through_getenv(tmp_path):
    result, got = render(
        tmp_path,
        misp_common_smtp_host="smtp.example.org",
        misp_common_smtp_port=587,
        misp_common_smtp_tls="starttls",
        misp_common_smtp_auth=True,
        misp_common_email_from="cti@example.org",
    )
    assert result.rc == 0, result.stdout[-3000:]
    profile = one_profile(got)
    assert profile["host"] == "smtp.example.org"
    assert profile["port"] == 587
    assert profile["tls"] is True
    assert profile["from"] == "cti@example.org"
    # Read from the environment when PHP builds the class; never written into the ConfigMap.
    assert profile["username"] == POD_ENV["MISP_SMTP_USERNAME"]
    assert profile["password"] == POD_ENV["MISP_SMTP_PASSWORD"]
    assert POD_ENV["MISP_SMTP_PASSWORD"] not in got["text"]
    assert "context" not in profile
    env = {e["name"]: e for e in got["app_env"]}
    assert env["MISP_SMTP_USERNAME"] == {
        "name": "MISP_SMTP_USERNAME",
        "valueFrom": {"secretKeyRef": {"name": "misp-smtp", "key": "username"}},
    }
    assert env["MISP_SMTP_PASSWORD"] == {
        "name": "MISP_SMTP_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "misp-smtp", "key": "password"}},
    }
    # Checked, created (inventory mode) and fingerprinted like the other Secrets.
    assert got["secret_keys"]["smtp"] == ["username", "password"]


def test_implicit_tls_is_an_ssl_host(tmp_path):
    result, got = render(
        tmp_path,
        misp_common_smtp_host="smtp.example.org",
        misp_common_smtp_port=465,
        misp_common_smtp_tls="implicit",
        misp_common_smtp_auth=True,
    )
    assert result.rc == 0, result.stdout[-3000:]
    profile = one_profile(got)
    assert profile["host"] == "ssl://smtp.example.org"
    assert profile["port"] == 465
    # STARTTLS on a connection that is TLS already would fail.
    assert "tls" not in profile


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_site_cas_verify_the_relay(tmp_path, tls):
    """CakeSocket uses its own CA bundle unless the context names one."""
    result, got = render(
        tmp_path,
        misp_common_smtp_host="relay.corp.example",
        misp_common_smtp_tls=tls,
        misp_common_ca_certificates=[PEM],
    )
    assert result.rc == 0, result.stdout[-3000:]
    assert one_profile(got)["context"] == {"ssl": {"cafile": "/etc/misp-ca/ca-certificates.crt"}}


def test_no_context_without_tls(tmp_path):
    result, got = render(tmp_path, misp_common_ca_certificates=[PEM])
    assert result.rc == 0, result.stdout[-3000:]
    assert "context" not in one_profile(got)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # Choices are the argument spec's, and so is its wording.
        ({"misp_common_smtp_tls": "ssl"}, "misp_common_smtp_tls must be one of: none, starttls, implicit, got: ssl"),
        ({"misp_common_smtp_tls": True}, "misp_common_smtp_tls must be one of: none, starttls, implicit, got: True"),
        ({"misp_common_smtp_port": 0}, "misp_common_smtp_port must be a number from 1 to 65535, got 0"),
        ({"misp_common_smtp_port": 70000}, "misp_common_smtp_port must be a number from 1 to 65535, got 70000"),
        ({"misp_common_smtp_port": "smtp"}, 'misp_common_smtp_port must be a number from 1 to 65535, got "smtp"'),
        (
            {"misp_common_smtp_host": "ssl://smtp.example.org"},
            'misp_common_smtp_host must be a host name without scheme, got "ssl://smtp.example.org"',
        ),
        (
            {"misp_common_smtp_host": "smtp.example.org:587"},
            'misp_common_smtp_host must be a host name or IPv4 address, got "smtp.example.org:587"',
        ),
        ({"misp_common_smtp_auth": "yes"}, 'misp_common_smtp_auth must be true or false, got "yes"'),
        (
            {"misp_common_smtp_auth": True},
            "misp_common_smtp_auth needs misp_common_smtp_tls starttls or implicit: without TLS the password",
        ),
        ({"misp_common_email_from": "misp"}, 'misp_common_email_from must be an e-mail address, got "misp"'),
        (
            {"misp_common_email_from": "it's@example.org"},
            'misp_common_email_from must be an e-mail address, got "it\'s@example.org"',
        ),
    ],
    ids=[
        "tls-choice",
        "tls-bool",
        "port-0",
        "port-high",
        "port-name",
        "host-scheme",
        "host-port",
        "auth-string",
        "auth-cleartext",
        "from",
        "from-quote",
    ],
)
def test_bad_settings_fail_naming_the_value(tmp_path, settings, message):
    result, _rendered = render(tmp_path, **settings)
    assert result.rc != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert "TASK [Render email.php]" not in result.stdout


def test_every_problem_is_named_at_once(tmp_path):
    # Both checked by the e-mail check (choices such as misp_common_smtp_tls are the argument spec's).
    result, _rendered = render(tmp_path, misp_common_email_from="misp", misp_common_smtp_port=0)
    assert result.rc != 0
    assert "misp_common_smtp_port must be" in result.stdout and "misp_common_email_from must be" in result.stdout
