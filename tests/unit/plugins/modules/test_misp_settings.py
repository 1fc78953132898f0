"""Argument handling of the misp_settings module, run in-process against the MISP stand-in."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_api import MISP_API_ARGSPEC
from ansible_collections.cti.misp_platform.plugins.module_utils._misp_settings import MISP_SETTINGS_ARGSPEC
from ansible_collections.cti.misp_platform.plugins.modules import misp_settings
from tests.doubles.misp_api import MispApiDouble

KEY = "module-unit-key-3c9e0f7a1b2d4e6f"


@pytest.fixture
def misp(monkeypatch):
    for name in ("MISP_URL", "MISP_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with MispApiDouble(api_key=KEY) as double:
        yield double


def run_module(args, capsys):
    """(rc, result, raw stdout) of one module run."""
    with patch_module_args(args), pytest.raises(SystemExit) as exc:
        misp_settings.main()
    out = capsys.readouterr().out
    return exc.value.code, json.loads(out), out


def base(misp, **extra):
    return {"url": misp.url, "api_key": KEY, **extra}


def test_argspec_is_the_shared_groups():
    spec, _checks = misp_settings.argument_spec()
    assert set(spec) == set(MISP_API_ARGSPEC) | set(MISP_SETTINGS_ARGSPEC) | {"port_forward"}
    assert spec["port_forward"]["options"]["api_key"]["no_log"] is True
    assert spec["port_forward"]["options"]["kubeconfig"]["no_log"] is True
    assert spec["api_key"]["no_log"] is True
    assert spec["secret_settings"]["no_log"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"settings": ["MISP.live", True]}, "settings"),
        ({"settings": "MISP.live"}, "settings"),
        ({"settings": {"MISP.live": True}, "redacted": "always"}, "redacted"),
        ({"settings": {"MISP.live": True}, "read_strategy": "fast"}, "read_strategy"),
        ({"settings": {"MISP.live": True}, "timeout": "soon"}, "timeout"),
        ({"settings": {"MISP.live": True}, "force": "perhaps"}, "force"),
        ({"settings": {"MISP.live": True}, "timeout": 0}, "timeout must be a positive number of seconds, got 0.0"),
        ({"settings": {"MISP.live": True}, "timeout": -1}, "timeout must be a positive number of seconds, got -1.0"),
    ],
)
def test_bad_arguments_fail_naming_the_option_before_any_request(misp, capsys, args, message):
    rc, result, _out = run_module(base(misp, **args), capsys)
    assert rc == 1
    assert result["failed"] is True
    assert message in result["msg"]
    assert misp.requests == []


def test_url_and_key_are_required(misp, capsys):
    rc, result, _out = run_module({"settings": {"MISP.live": True}}, capsys)
    assert rc == 1
    assert "missing required arguments: api_key, url" in result["msg"]


def test_url_and_key_from_the_environment(misp, capsys, monkeypatch):
    monkeypatch.setenv("MISP_URL", misp.url)
    monkeypatch.setenv("MISP_API_KEY", KEY)
    rc, result, _out = run_module({"settings": {"MISP.live": False}}, capsys)
    assert rc == 0
    assert result["changed_settings"] == ["MISP.live"]


def test_bad_url_fails_naming_it(misp, capsys):
    rc, result, _out = run_module({"url": "misp.local", "api_key": KEY, "settings": {"MISP.live": True}}, capsys)
    assert rc == 1
    assert result["msg"] == "Invalid MISP url 'misp.local': expected http(s)://host[:port][/path]"


def test_check_mode_changes_nothing(misp, capsys):
    rc, result, _out = run_module(base(misp, settings={"MISP.live": False}, _ansible_check_mode=True), capsys)
    assert rc == 0
    assert result["changed"] is True
    assert misp.posts() == []
    assert misp.settings["MISP.live"] is True


def test_nothing_to_do_sends_nothing(misp, capsys):
    rc, result, _out = run_module(base(misp), capsys)
    assert (rc, result["changed"], misp.requests) == (0, False, [])


def test_secrets_never_appear_in_the_output(misp, capsys):
    salt = "pepper-" + "q" * 40
    password = "supervisor-secret-92af"
    rc, result, out = run_module(
        base(
            misp,
            # A redacted setting given in `settings` by mistake is hidden once MISP says it is redacted.
            settings={"Security.salt": salt, "MISP.live": False},
            secret_settings={"SimpleBackgroundJobs.supervisor_password": password},
            redacted="write",
            _ansible_diff=True,
        ),
        capsys,
    )
    assert rc == 0
    assert result["redacted_written"] == ["Security.salt", "SimpleBackgroundJobs.supervisor_password"]
    assert misp.settings["Security.salt"] == salt
    assert result["diff"]["after"]["Security.salt"] == "*****"
    for secret in (KEY, salt, password):
        assert secret not in out


def test_refused_edit_fails_with_misps_reason(misp, capsys):
    rc, result, _out = run_module(base(misp, settings={"MISP.language": "klingon"}), capsys)
    assert rc == 1
    assert "must be one of eng, fra, deu, spa, jpn; got 'klingon'" in result["msg"]
    rc, result, _out = run_module(base(misp, settings={"Security.password_policy_length": -1}), capsys)
    assert rc == 1
    assert result["msg"].startswith("MISP refused Security.password_policy_length = -1: Length cannot be negative")
    assert result["failed_setting"] == "Security.password_policy_length"
    assert misp.settings["Security.password_policy_length"] == 12


def test_skipped_redacted_setting_is_a_warning(misp, capsys):
    rc, result, _out = run_module(base(misp, secret_settings={"SimpleBackgroundJobs.redis_password": "r" * 24}), capsys)
    assert rc == 0
    assert result["changed"] is False
    # ansible-core 2.19 hands warnings to the controller as structured events.
    assert [warning["event"]["msg"] for warning in result["warnings"]] == [
        "Not written, because MISP hides the current value of these redacted settings and redacted is skip: "
        "SimpleBackgroundJobs.redis_password. Set redacted: write to write them (on every run)."
    ]


CANARY = 918273645


@pytest.mark.parametrize(
    "args",
    [
        {"api_key": "wrong-key"},
        {"url": "misp.local"},
        {"timeout": 0},
        {},
    ],
    ids=["wrong-key", "bad-url", "bad-timeout", "success"],
)
def test_secret_named_values_of_any_type_are_masked_from_the_start(misp, capsys, args):
    # The wrong key fails before MISP says which settings are redacted; a bad url or timeout
    # before MISP is asked anything. The invocation in the output still holds every argument.
    settings = {"SimpleBackgroundJobs.redis_password": CANARY, "Plugin.Cortex_authkey": f"canary-{CANARY}"}
    _rc, result, out = run_module({**base(misp, settings=settings, redacted="write"), **args}, capsys)
    assert "invocation" in result
    assert str(CANARY) not in out
