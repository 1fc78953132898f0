"""misp_common's email.php: relay, TLS, SMTP AUTH from Secret misp-smtp, and the checks.

Renders the role's template with ansible-playbook (no cluster: render_email.yml runs only the
checks and the template) and reads each profile of email.php back with the PHP literal parser
of test_oidc_config.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.unit.roles.misp_common.test_oidc_config import TEMPLATES, parse_php_config
from tests.unit.roles.render import render_playbook

PLAYBOOK = Path(__file__).with_name("render_email.yml")
PROFILES = ("default", "smtp", "fast")
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
_PROFILE = re.compile(r"public \$(\w+) = (array\(.*?\n    \));", re.DOTALL)


def parse_email_php(text: str) -> dict[str, dict]:
    """Each ``public $<profile> = array(...);`` of class EmailConfig as a dict."""
    return {name: parse_php_config(f"$config = {body};") for name, body in _PROFILE.findall(text)}


def render(tmp_path, **extravars):
    out = tmp_path / "out"
    result = render_playbook(PLAYBOOK, out, templates_dir=str(TEMPLATES), **extravars)
    rendered = {}
    if result.rc == 0:
        text = (out / "email.php").read_text()
        rendered = {"text": text, "profiles": parse_email_php(text), **json.loads((out / "vars.json").read_text())}
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
    assert profile["username"] == {"env": "MISP_SMTP_USERNAME"}
    assert profile["password"] == {"env": "MISP_SMTP_PASSWORD"}
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
        ({"misp_common_smtp_tls": "ssl"}, 'misp_common_smtp_tls must be none, starttls or implicit, got "ssl"'),
        ({"misp_common_smtp_tls": True}, "misp_common_smtp_tls must be none, starttls or implicit, got true"),
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
    result, _rendered = render(tmp_path, misp_common_smtp_tls="ssl", misp_common_smtp_port=0)
    assert result.rc != 0
    assert "misp_common_smtp_port must be" in result.stdout and "misp_common_smtp_tls must be" in result.stdout
