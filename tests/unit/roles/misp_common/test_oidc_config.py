"""misp_common's OIDC wiring: config.php, bootstrap.php, pod environment and the checks.

Renders the role's templates with ansible-playbook (no cluster: render_config.yml runs only the
checks and the templates) and reads config.php back with a parser of the PHP literals the
role's php() macro writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ansible_collections.cti.misp_platform.plugins.plugin_utils._conventions import SECRETS
from tests.rig.peers._base import REPO
from tests.unit.roles.render import render_playbook

PLAYBOOK = Path(__file__).with_name("render_config.yml")
TEMPLATES = REPO / "roles" / "misp_common" / "templates"
SECRET = "oidc-literal-secret-5f1c2b9e"
KEYCLOAK_FACT = {
    "provider_url": "https://sso.example.org/realms/misp",
    "issuer": "https://sso.example.org/realms/misp",
    "client_id": "misp",
    "client_secret_secret": {"name": "misp-oidc", "key": "client-secret"},
    "scopes": ["openid", "profile", "email"],
    "code_challenge_method": "S256",
    "roles_property": "roles",
    "role_mapper": {"misp-site-admin": 1, "misp-org-admin": 2, "misp-user": 3, "misp-read-only": 6},
    "default_org": "CTI",
}

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+)|(?P<word>[A-Za-z_]+)|(?P<punct>=>|[(),;]))")


def parse_php_config(text: str):
    """The value of ``$config = ...;`` as Python: array() -> dict or list, getenv('X') -> {'env': 'X'}."""
    tokens = [next(t for t in m.groups() if t is not None) for m in _TOKEN.finditer(text.split("$config =", 1)[1])]
    pos = 0

    def take(expected=None):
        nonlocal pos
        token = tokens[pos]
        pos += 1
        assert expected is None or token == expected, (expected, token, tokens[pos - 5 : pos + 5])
        return token

    def value():
        token = take()
        if token.startswith("'"):
            return re.sub(r"\\(.)", r"\1", token[1:-1])
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        if token == "getenv":
            take("(")
            name = value()
            take(")")
            return {"env": name}
        if token == "array":
            take("(")
            keyed, items = {}, []
            while tokens[pos] != ")":
                item = value()
                if tokens[pos] == "=>":
                    take("=>")
                    keyed[item] = value()
                else:
                    items.append(item)
                if tokens[pos] == ",":
                    take(",")
            take(")")
            return keyed or items
        return {"true": True, "false": False, "null": None}[token]

    result = value()
    take(";")
    return result


def render(tmp_path, **extravars):
    out = tmp_path / "out"
    result = render_playbook(PLAYBOOK, out, templates_dir=str(TEMPLATES), **extravars)
    rendered = {}
    if result.rc == 0:
        rendered = {
            "config": parse_php_config((out / "config.php").read_text()),
            "config_text": (out / "config.php").read_text(),
            "bootstrap": (out / "bootstrap.php").read_text(),
            "core": (out / "core.php").read_text(),
            **json.loads((out / "vars.json").read_text()),
        }
    return result, rendered


def test_oidc_from_the_keycloak_fact(tmp_path):
    """keycloak_misp_oidc alone turns OIDC on: auth plugin, OidcAuth block, secret by getenv."""
    result, got = render(tmp_path, keycloak_misp_oidc=KEYCLOAK_FACT, misp_secrets={"oidc": {"client-secret": SECRET}})
    assert result.rc == 0, result.stdout[-3000:]
    config = got["config"]
    assert config["Security"]["auth"] == ["OidcAuth.Oidc"]
    assert config["OidcAuth"] == {
        "provider_url": "https://sso.example.org/realms/misp",
        "issuer": "https://sso.example.org/realms/misp",
        "client_id": "misp",
        "client_secret": {"env": "MISP_OIDC_CLIENT_SECRET"},
        "authentication_method": "client_secret_basic",
        "scopes": ["openid", "profile", "email"],
        "role_mapper": {"misp-site-admin": 1, "misp-org-admin": 2, "misp-user": 3, "misp-read-only": 6},
        "roles_property": "roles",
        "code_challenge_method": "S256",
        "default_org": "CTI",
    }
    assert "'client_secret' => getenv('MISP_OIDC_CLIENT_SECRET')" in got["config_text"]
    assert SECRET not in got["config_text"]
    # The rest of config.php is untouched by OIDC.
    assert config["MISP"]["baseurl"] == "https://misp.example.org"
    assert config["Security"]["salt"] == {"env": "MISP_SALT"}

    env = {e["name"]: e for e in got["app_env"]}
    assert env["MISP_OIDC_CLIENT_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "misp-oidc", "key": "client-secret"}
    }
    assert got["secret_keys"]["oidc"] == ["client-secret"]
    assert {
        "name": "config",
        "mountPath": "/var/www/MISP/app/Config/bootstrap.php",
        "subPath": "bootstrap.php",
        "readOnly": True,
    } in got["mounts"]
    assert "require __DIR__ . '/bootstrap.default.php';" in got["bootstrap"]
    guarded_load = r"if \(Configure::read\('OidcAuth'\)\) \{\s*CakePlugin::load\('OidcAuth'\);\s*\}"
    assert re.search(guarded_load, got["bootstrap"])


def test_inventory_settings_override_and_optional_keys(tmp_path):
    """misp_common_oidc from the inventory wins; issuer defaults to provider_url; extra documented keys pass."""
    oidc = {
        "provider_url": "https://idp.example.net/oidc",
        "client_id": "misp-prod",
        "role_mapper": {"cti-admins": 1, "cti-analysts": 3},
        "authentication_method": "client_secret_post",
        "offline_access": True,
        "check_user_validity": 300,
    }
    result, got = render(tmp_path, keycloak_misp_oidc=KEYCLOAK_FACT, misp_common_oidc=oidc)
    assert result.rc == 0, result.stdout[-3000:]
    block = got["config"]["OidcAuth"]
    assert block["provider_url"] == block["issuer"] == "https://idp.example.net/oidc"
    assert block["client_id"] == "misp-prod"
    assert block["role_mapper"] == {"cti-admins": 1, "cti-analysts": 3}
    assert block["authentication_method"] == "client_secret_post"
    assert block["offline_access"] is True
    assert block["check_user_validity"] == 300
    assert "code_challenge_method" not in block
    assert "redirect_uri" not in block


def test_no_oidc_without_settings(tmp_path):
    result, got = render(tmp_path)
    assert result.rc == 0, result.stdout[-3000:]
    assert got["config"]["Security"]["auth"] == []
    assert "OidcAuth" not in got["config"]
    assert "MISP_OIDC_CLIENT_SECRET" not in [e["name"] for e in got["app_env"]]
    assert "oidc" not in got["secret_keys"]
    # bootstrap.php and core.php are always mounted (the image has only their *.default.php);
    # bootstrap.php loads the plugin only when configured.
    assert {"bootstrap.php", "core.php"} <= {m.get("subPath") for m in got["mounts"]}
    assert "require __DIR__ . '/core.default.php';" in got["core"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"role_mapper": {"misp-user": 3, "misp-wizard": 9}}, "role_mapper[misp-wizard] is 9, not a MISP role id"),
        ({"role_mapper": {"misp-user": "3"}}, "role_mapper[misp-user] is 3, not a MISP role id"),
        ({"role_mapper": {}}, "role_mapper must map IdP roles to MISP role ids"),
        (
            {"provider_url": "sso.example.org/realms"},
            "provider_url must be an http(s) URL, got 'sso.example.org/realms'",
        ),
        ({"issuer": "ftp://sso.example.org"}, "issuer must be an http(s) URL, got 'ftp://sso.example.org'"),
        ({"client_id": ""}, "client_id must be a non-empty string, got ''"),
        # Unknown keys and choices are the argument spec's, and so is its wording.
        ({"client_secret": SECRET}, "misp_common_oidc.client_secret. Supported parameters include"),
        ({"code_challenge_method": "S512"}, "code_challenge_method must be one of: S256, plain, got: S512"),
        ({"client_secret_secret": {"name": "other", "key": "k"}}, 'client_secret_secret must be {"name": "misp-oidc"'),
    ],
    ids=[
        "role-id",
        "role-id-string",
        "empty-mapper",
        "provider-url",
        "issuer",
        "client-id",
        "literal-secret",
        "pkce",
        "secret-name",
    ],
)
def test_bad_settings_fail_naming_the_value(tmp_path, change, message):
    result, _rendered = render(tmp_path, misp_common_oidc={**KEYCLOAK_FACT, **change})
    assert result.rc != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert "Render the PHP configuration files" not in result.stdout


def test_every_secret_the_pods_read_is_a_key_of_the_contract(tmp_path):
    """With every optional Secret in use, each secretKeyRef of the pods' environment names a
    Secret and key of the contract (plugins/plugin_utils/_conventions.py), and the keys checked
    and created are the contract's."""
    result, got = render(
        tmp_path,
        keycloak_misp_oidc=KEYCLOAK_FACT,
        misp_common_smtp_host="smtp.example.org",
        misp_common_smtp_tls="starttls",
        misp_common_smtp_auth=True,
        misp_common_email_from="cti@example.org",
        misp_common_proxy={"host": "proxy.example.org", "port": 3128, "credentials": True},
    )
    assert result.rc == 0, result.stdout[-3000:]
    contract = {(secret["name"], key) for secret in SECRETS.values() for key in secret["data_keys"]}
    refs = [e["valueFrom"]["secretKeyRef"] for e in got["app_env"] if "valueFrom" in e]
    assert {ref["name"] for ref in refs} == {s["name"] for s in SECRETS.values()}
    assert [ref for ref in refs if (ref["name"], ref["key"]) not in contract] == []
    assert got["secret_keys"] == {short: secret["data_keys"] for short, secret in SECRETS.items()}
