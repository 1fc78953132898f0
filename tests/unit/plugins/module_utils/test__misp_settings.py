"""Coercion, comparison and the read/plan/write run of misp_settings, against the in-process stand-in."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_api import MispApi, MispApiError
from ansible_collections.cti.misp_platform.plugins.module_utils._misp_settings import (
    BULK_THRESHOLD,
    MASK,
    MispSettingsError,
    SettingsRun,
    coerce,
    normalise,
)
from tests.doubles.misp_api import MispApiDouble

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


def run(misp, settings=None, check_mode=False, hide=None, **params):
    return SettingsRun(api_for(misp), module_params(settings, **params), check_mode, hide).run()


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
        "MISP refused MISP.baseurl = 'https://misp.test/': Remove the trailing slash from the baseurl."
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
        "failed: HTTP 405: This setting can only be edited via the CLI."
    )
    assert err.value.result["failed_setting"] == "MISP.system_setting_db"


def test_read_errors_other_than_redacted_propagate(misp):
    with pytest.raises(MispApiError, match="HTTP 403: Authentication failed"):
        SettingsRun(api_for(misp, "wrong"), module_params({"MISP.live": True})).run()
    assert misp.posts() == []
