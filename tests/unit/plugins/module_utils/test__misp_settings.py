"""Coercion, comparison and the read/plan/write run of misp_settings, against the in-process stand-in."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_api import MispApi, MispApiError
from ansible_collections.cti.misp_platform.plugins.module_utils._misp_settings import (
    BULK_THRESHOLD,
    CLI_ONLY_SETTINGS,
    MASK,
    MispSettingsError,
    SettingsRun,
    coerce,
    is_secret_name,
    normalise,
    secret_values,
)
from tests.doubles.misp_api import MispApiDouble
from tests.doubles.misp_api.catalogue import definitions

KEY = "settings-unit-key-77d1c0e2b4a9"
BOOLEAN = {"type": "boolean"}
NUMERIC = {"type": "numeric"}
STRING = {"type": "string"}
SELECT = {"type": "numeric", "options": {"0": "Your organisation only", "1": "This community only"}}
STRING_SELECT = {"type": "string", "options": {"JSON": "JSON", "igbinary": "igbinary"}}


@pytest.mark.parametrize(
    ("definition", "value", "expected"),
    [
        (BOOLEAN, True, True),
        (BOOLEAN, "false", False),
        (BOOLEAN, " Yes ", True),
        (BOOLEAN, "0", False),
        (BOOLEAN, 1, True),
        (NUMERIC, 9001, 9001),
        (NUMERIC, "42", 42),
        (NUMERIC, " -3 ", -3),
        (NUMERIC, 60.0, 60),
        (STRING, "  https://misp.test ", "https://misp.test"),
        (STRING, 6379, "6379"),
        (STRING, "", ""),
        (SELECT, 1, 1),
        (SELECT, "0", 0),
        (STRING_SELECT, "igbinary", "igbinary"),
    ],
)
def test_coerce_sends_the_declared_json_type(definition, value, expected):
    result = coerce(definition, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("definition", "value", "reason"),
    [
        (BOOLEAN, "maybe", "expects a boolean (true/false), got 'maybe'"),
        (BOOLEAN, 2, "expects a boolean (true/false), got 2"),
        (NUMERIC, "abc", "expects a whole number, got 'abc'"),
        (NUMERIC, 1.5, "expects a whole number, got 1.5"),
        (NUMERIC, True, "expects a whole number, got boolean true"),
        (NUMERIC, "12abc", "expects a whole number, got '12abc'"),
        (STRING, False, "expects a string, got boolean false"),
        (STRING, ["a"], "takes a single value, got a list"),
        (BOOLEAN, {"a": 1}, "takes a single value, got a dict"),
        (STRING, None, "needs a value, got null"),
        (STRING, MASK, "is MISP's mask"),
        (SELECT, 7, "must be one of 0 (Your organisation only), 1 (This community only); got 7"),
        (STRING_SELECT, "php", "must be one of JSON, igbinary; got 'php'"),
    ],
)
def test_coerce_refuses_naming_the_value(definition, value, reason):
    with pytest.raises(ValueError) as err:
        coerce(definition, value)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("definition", "current", "expected"),
    [
        (BOOLEAN, True, True),
        (BOOLEAN, "1", True),
        (BOOLEAN, "", False),
        (BOOLEAN, 0, False),
        (BOOLEAN, None, None),
        (BOOLEAN, "garbage", None),
        (NUMERIC, "9001", 9001),
        (NUMERIC, 9001, 9001),
        (NUMERIC, False, None),
        (NUMERIC, "", None),
        (STRING, "x", "x"),
        (STRING, 5, "5"),
        (STRING, False, None),
        (STRING, None, None),
    ],
)
def test_normalise_current_values(definition, current, expected):
    result = normalise(definition, current)
    assert result == expected
    assert type(result) is type(expected)


def module_params(settings=None, **params):
    return {
        "settings": settings or {},
        "secret_settings": {},
        "force": False,
        "redacted": "skip",
        "read_strategy": "auto",
        **params,
    }


def api_for(misp, key=KEY):
    return MispApi({"url": misp.url, "api_key": key, "timeout": 5})


def run(misp, settings=None, check_mode=False, hide=None, warn=None, **params):
    return SettingsRun(api_for(misp), module_params(settings, **params), check_mode, hide, warn).run()


@pytest.fixture
def misp():
    with MispApiDouble(api_key=KEY) as double:
        yield double


def test_writes_only_what_differs_with_json_types(misp):
    result = run(misp, {"MISP.live": "false", "Session.timeout": "90", "MISP.redis_port": 6379})
    assert result["changed"] is True
    assert result["changed_settings"] == ["MISP.live", "Session.timeout"]
    assert result["unchanged_settings"] == ["MISP.redis_port"]
    assert misp.posts() == [
        ("POST", "/servers/serverSettingsEdit/MISP.live", {"value": False, "force": False}),
        ("POST", "/servers/serverSettingsEdit/Session.timeout", {"value": 90, "force": False}),
    ]
    # Sent as JSON false, MISP's cast keeps it false (the string "false" would have saved as true).
    assert misp.settings["MISP.live"] is False
    assert result["diff"] == {
        "before": {"MISP.live": True, "Session.timeout": 60},
        "after": {"MISP.live": False, "Session.timeout": 90},
    }


def test_second_run_writes_nothing(misp):
    wanted = {"MISP.live": False, "MISP.baseurl": "https://misp.test", "Session.timeout": 90}
    run(misp, wanted)
    misp.requests.clear()
    result = run(misp, wanted)
    assert result["changed"] is False
    assert misp.posts() == []
    assert result["requests"] == {"get": 3, "post": 0}


def test_check_mode_reads_only(misp):
    before = misp.settings
    result = run(misp, {"MISP.live": False}, check_mode=True)
    assert result["changed"] is True
    assert result["changed_settings"] == ["MISP.live"]
    assert misp.posts() == []
    assert misp.settings == before


@pytest.mark.parametrize(
    ("count", "strategy", "expected_strategy", "gets", "path"),
    [
        (3, "auto", "each", 3, "/servers/getSetting/MISP.tagging"),
        (BULK_THRESHOLD, "auto", "each", BULK_THRESHOLD, "/servers/getSetting/MISP.tagging"),
        (BULK_THRESHOLD + 1, "auto", "bulk", 1, "/servers/serverSettings"),
        (3, "bulk", "bulk", 1, "/servers/serverSettings"),
        (30, "each", "each", 30, "/servers/getSetting/MISP.tagging"),
    ],
)
def test_read_strategy_request_counts(misp, count, strategy, expected_strategy, gets, path):
    others = [n for n, d in misp.definitions.items() if d["type"] == "boolean" and n != "MISP.tagging"]
    wanted = {name: misp.settings[name] for name in ["MISP.tagging", *others[: count - 1]]}
    assert len(wanted) == count
    result = run(misp, wanted, read_strategy=strategy)
    assert result["read_strategy"] == expected_strategy
    assert len(misp.requests) == gets
    assert result["requests"] == {"get": gets, "post": 0}
    assert misp.requests[0][1] == path


@pytest.mark.parametrize("strategy", ["each", "bulk"])
def test_every_bad_entry_is_named_and_nothing_written(misp, strategy):
    before = misp.settings
    with pytest.raises(MispSettingsError) as err:
        run(
            misp,
            {
                "MISP.org": "fine",
                "MISP.live": "maybe",
                "Session.timeout": "abc",
                "No.such_setting": 1,
                "MISP.system_setting_db": True,
                "MISP.default_event_distribution": 9,
            },
            read_strategy=strategy,
        )
    invalid = err.value.result["invalid_settings"]
    assert set(invalid) == {
        "MISP.live",
        "Session.timeout",
        "No.such_setting",
        "MISP.system_setting_db",
        "MISP.default_event_distribution",
    }
    assert invalid["No.such_setting"] == "unknown setting"
    assert "cake Admin setSetting MISP.system_setting_db" in invalid["MISP.system_setting_db"]
    assert err.value.message.startswith("Invalid MISP settings, nothing was written: ")
    assert "MISP.live: expects a boolean (true/false), got 'maybe'" in err.value.message
    assert misp.posts() == []
    assert misp.settings == before


def test_cli_only_setting_already_right_is_fine(misp):
    assert run(misp, {"MISP.system_setting_db": False})["changed"] is False


def test_redacted_skip_reads_nothing_back_and_writes_nothing(misp):
    hidden = []
    result = run(misp, {"Security.salt": "x" * 40, "MISP.live": True}, hide=hidden.append)
    assert result["redacted_settings"] == ["Security.salt"]
    assert result["redacted_written"] == []
    assert result["changed"] is False
    assert misp.posts() == []
    assert hidden == ["x" * 40]


def test_redacted_write_writes_every_run_without_claiming_changed(misp):
    salt = "s" * 40
    for _run in range(2):
        result = run(misp, secret_settings={"Security.salt": salt}, redacted="write")
        assert result["changed"] is False
        assert result["redacted_written"] == ["Security.salt"]
        assert result["diff"] == {"before": {"Security.salt": MASK}, "after": {"Security.salt": MASK}}
    assert misp.settings["Security.salt"] == salt
    assert len(misp.posts()) == 2


def test_secret_values_are_masked_in_diff_and_errors(misp):
    secret = "not-a-boolean-secret"
    result = run(misp, secret_settings={"MISP.org": "Top secret org"})
    assert result["diff"] == {"before": {"MISP.org": MASK}, "after": {"MISP.org": MASK}}
    with pytest.raises(MispSettingsError) as err:
        run(misp, secret_settings={"MISP.live": secret})
    assert secret not in err.value.message
    assert "the secret value" in err.value.message


def test_a_setting_in_both_dicts_is_refused(misp):
    with pytest.raises(MispSettingsError, match=r"both settings and secret_settings.*MISP\.org"):
        run(misp, {"MISP.org": "a"}, secret_settings={"MISP.org": "b"})
    assert misp.requests == []


def test_refused_edit_reports_misps_reason_and_what_was_written(misp):
    with pytest.raises(MispSettingsError) as err:
        run(misp, {"MISP.org": "CIRCL", "MISP.baseurl": "https://misp.test/", "MISP.live": False})
    assert err.value.message == (
        "MISP refused MISP.baseurl = 'https://misp.test/': Remove the trailing slash from the baseurl. "
        "Already written: MISP.org."
    )
    assert err.value.result["changed_settings"] == ["MISP.org"]
    assert err.value.result["failed_setting"] == "MISP.baseurl"
    assert err.value.result["changed"] is True
    # MISP.live comes after the refusal and is not written.
    assert misp.settings["MISP.live"] is True


def test_force_saves_what_misps_test_refuses(misp):
    result = run(misp, {"MISP.log_paranoid": True}, force=True)
    assert result["changed_settings"] == ["MISP.log_paranoid"]
    assert misp.posts()[0][2] == {"value": True, "force": True}


def test_config_not_writeable(misp):
    misp.config_writeable = False
    with pytest.raises(MispSettingsError, match=r"app/Config.config.php is not writeable to the apache user"):
        run(misp, {"MISP.live": False})


def test_cli_only_405_from_misp_fails_clearly(misp):
    # The plan already refuses settings whose definition says cli_only; a MISP whose definition
    # lacks the flag still answers the write with 405.
    settings_run = SettingsRun(api_for(misp), module_params({"MISP.system_setting_db": True}))
    with pytest.raises(MispSettingsError) as err:
        settings_run._write("MISP.system_setting_db", True, settings_run._result())
    assert err.value.message == (
        "MISP.system_setting_db can only be changed on the MISP command line (cake Admin setSetting "
        "MISP.system_setting_db ...): POST " + misp.url + "/servers/serverSettingsEdit/MISP.system_setting_db "
        "failed: HTTP 405: This setting can only be edited via the CLI. Nothing was written."
    )
    assert err.value.result["failed_setting"] == "MISP.system_setting_db"


def test_read_errors_other_than_redacted_propagate(misp):
    with pytest.raises(MispApiError, match="HTTP 403: Authentication failed"):
        SettingsRun(api_for(misp, "wrong"), module_params({"MISP.live": True})).run()
    assert misp.posts() == []


# --- redacted settings left unwritten (issue 21, point 2) ----------------------------------------


def test_redacted_skip_warns_naming_each_setting_and_the_option_that_writes_it(misp):
    warnings = []
    result = run(
        misp,
        {"MISP.live": False},
        secret_settings={"SimpleBackgroundJobs.redis_password": "r" * 20, "GnuPG.password": "g" * 20},
        warn=warnings.append,
    )
    assert result["redacted_settings"] == ["SimpleBackgroundJobs.redis_password", "GnuPG.password"]
    assert warnings == [
        "Not written, because MISP hides the current value of these redacted settings and redacted is skip: "
        "SimpleBackgroundJobs.redis_password, GnuPG.password. Set redacted: write to write them (on every run)."
    ]
    assert [post[1] for post in misp.posts()] == ["/servers/serverSettingsEdit/MISP.live"]


def test_redacted_write_and_plain_settings_warn_of_nothing(misp):
    warnings = []
    run(misp, {"MISP.live": False}, warn=warnings.append)
    run(misp, secret_settings={"GnuPG.password": "g" * 20}, redacted="write", warn=warnings.append)
    assert warnings == []


def test_redacted_cli_only_setting_skipped_points_at_the_command_line(misp):
    warnings = []
    result = run(misp, secret_settings={"Security.encryption_key": "e" * 32}, warn=warnings.append)
    assert result["redacted_settings"] == ["Security.encryption_key"]
    assert warnings == [
        "Not written: Security.encryption_key is redacted, and can only be changed on the MISP command line "
        "(cake Admin setSetting Security.encryption_key ...), not through the API."
    ]
    assert misp.posts() == []


# --- CLI-only settings (issue 21, point 4) -------------------------------------------------------


def test_the_cli_only_list_is_misps():
    # The stand-in's catalogue marks what MISP 2.5's Server.php marks cli_only.
    assert {name for name, d in definitions().items() if d.get("cli_only")} == CLI_ONLY_SETTINGS


def test_redacted_cli_only_setting_is_refused_before_the_first_write(misp):
    # MISP hides Security.encryption_key's definition, cli_only flag included: only the list knows.
    before = misp.settings
    with pytest.raises(MispSettingsError) as err:
        run(misp, {"MISP.live": False}, secret_settings={"Security.encryption_key": "e" * 32}, redacted="write")
    assert err.value.message == (
        "Invalid MISP settings, nothing was written: Security.encryption_key: can only be changed on the MISP "
        "command line (cake Admin setSetting Security.encryption_key ...), not through the API"
    )
    assert list(err.value.result["invalid_settings"]) == ["Security.encryption_key"]
    assert misp.posts() == []
    assert misp.settings == before


@pytest.mark.parametrize("strategy", ["each", "bulk"])
def test_known_cli_only_setting_is_refused_even_when_misps_definition_lacks_the_flag(misp, strategy):
    del misp.definitions["MISP.tmpdir"]["cli_only"]
    with pytest.raises(MispSettingsError) as err:
        run(misp, {"MISP.live": False, "MISP.tmpdir": "/tmp/misp"}, read_strategy=strategy)
    assert "MISP.tmpdir: can only be changed on the MISP command line" in err.value.message
    assert "MISP has '/var/www/MISP/app/tmp'" in err.value.message
    assert misp.posts() == []


def test_405_in_the_middle_of_a_run_names_what_was_already_written():
    # A MISP release that marks GnuPG.password CLI-only: redacted, so nothing said so beforehand.
    with MispApiDouble(api_key=KEY, cli_only=["GnuPG.password"]) as misp, pytest.raises(MispSettingsError) as err:
        run(
            misp,
            {"MISP.live": False, "Session.timeout": 90},
            secret_settings={"SMIME.password": "s" * 20, "GnuPG.password": "g" * 20},
            redacted="write",
        )
    assert err.value.message.startswith("GnuPG.password can only be changed on the MISP command line")
    assert err.value.message.endswith(
        "HTTP 405: This setting can only be edited via the CLI. Already written: MISP.live, Session.timeout, "
        "SMIME.password."
    )
    assert err.value.result["changed_settings"] == ["MISP.live", "Session.timeout"]
    assert err.value.result["redacted_written"] == ["SMIME.password"]
    assert err.value.result["failed_setting"] == "GnuPG.password"


# --- secret values hidden from the start (issue 21, point 5) -------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Security.salt",
        "Security.encryption_key",
        "SimpleBackgroundJobs.redis_password",
        "Plugin.Cortex_authkey",
        "Plugin.S3_aws_secret_key",
        "GnuPG.password",
        "OidcAuth.client_secret",
        "Plugin.ZeroMQ_PASSWORD",
        "Some.api_token",
        "GnuPG.passphrase",
    ],
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "Security.advanced_authkeys",
        "Security.password_policy_length",
        "MISP.disable_user_password_change",
        "Security.do_not_log_authkeys",
        "SimpleBackgroundJobs.supervisor_user",
        "SMIME.key_sign",
        "MISP.live",
    ],
)
def test_names_that_are_not_secrets(name):
    assert not is_secret_name(name)


def test_every_setting_misp_redacts_has_a_secret_name():
    redacted = {name for name, d in definitions().items() if d.get("redacted")}
    assert redacted
    assert all(is_secret_name(name) for name in redacted), sorted(n for n in redacted if not is_secret_name(n))


def test_secret_values_are_known_before_misp_is_read_whatever_their_type():
    params = module_params(
        {
            "MISP.live": True,
            "MISP.org": "not a secret",
            "Security.salt": " padded-salt ",
            "Plugin.Cortex_authkey": 918273645,
            "SMIME.password": 12.5,
            "GnuPG.password": ["listed-by-mistake", {"nested": 4242}],
            "Proxy.password": None,
            "SimpleBackgroundJobs.redis_password": True,
        },
        secret_settings={"MISP.uuid": "secret-uuid", "Session.timeout": 77},
    )
    assert secret_values(params) == {
        " padded-salt ",
        "padded-salt",
        "918273645",
        "12.5",
        "listed-by-mistake",
        "4242",
        "secret-uuid",
        "77",
    }


def test_a_secret_named_setting_misp_shows_is_compared_but_masked(misp):
    # MISP 2.5 shows Plugin.Cortex_authkey's value; the stand-in redacts it like later releases.
    del misp.definitions["Plugin.Cortex_authkey"]["redacted"]
    hidden = []
    result = run(misp, {"Plugin.Cortex_authkey": 5550123}, hide=hidden.append)
    assert result["changed_settings"] == ["Plugin.Cortex_authkey"]
    assert result["diff"] == {"before": {"Plugin.Cortex_authkey": MASK}, "after": {"Plugin.Cortex_authkey": MASK}}
    assert hidden == ["5550123"]
    assert misp.settings["Plugin.Cortex_authkey"] == "5550123"
    assert run(misp, {"Plugin.Cortex_authkey": 5550123})["unchanged_settings"] == ["Plugin.Cortex_authkey"]
