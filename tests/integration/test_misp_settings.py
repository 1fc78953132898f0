"""cti.misp_platform.misp_settings run by ansible-playbook against the MISP stand-in on loopback."""

from __future__ import annotations

import json
import socket

import pytest

from tests.doubles.misp_api import MispApiDouble

TARGET = "tests/integration/targets/misp_settings"
PLAYBOOK = f"{TARGET}/settings.yml"
BAD_INPUT_PLAYBOOK = f"{TARGET}/bad_input.yml"
KEY = "integration-key-b41f7e29c8d05a63"
WANTED = {
    "MISP.live": False,
    "MISP.baseurl": "https://misp.example.test",
    "Session.timeout": "90",
    "MISP.default_event_distribution": 0,
    "SimpleBackgroundJobs.enabled": "yes",
    "SimpleBackgroundJobs.redis_host": "redis.misp.svc",
}
# What MISP must hold afterwards, each in the JSON type the setting declares.
CONVERGED = {
    "MISP.live": False,
    "MISP.baseurl": "https://misp.example.test",
    "Session.timeout": 90,
    "MISP.default_event_distribution": "0",
    "SimpleBackgroundJobs.enabled": True,
    "SimpleBackgroundJobs.redis_host": "redis.misp.svc",
}


def play(run_playbook, extravars, *, check=False, diff=False, verbose=False, json_output=True, playbook=PLAYBOOK):
    """(rc, task result, output) of one run of ``playbook``; the task result (with the play's
    ``_stats``) comes from the json callback, or is None when ``json_output`` is false."""
    env = {"ANSIBLE_DIFF_ALWAYS": str(diff), "ANSIBLE_VERBOSITY": "3" if verbose else "0"}
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    proc = run_playbook(playbook, extravars, check=check, env=env, timeout=300)
    result = None
    if json_output:
        document = json.loads(proc.stdout)
        result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
        result["_stats"] = document["stats"]["localhost"]
    return proc.rc, result, proc.stdout + proc.stderr


def variables(misp, **extra):
    return {"misp_url": misp.url, "misp_api_key": KEY, **extra}


@pytest.fixture
def misp():
    with MispApiDouble(api_key=KEY) as double:
        yield double


def test_converge_then_nothing_to_do(run_playbook, misp):
    rc, result, _output = play(run_playbook, variables(misp, misp_settings=WANTED))
    assert rc == 0, result["msg"]
    assert result["changed"] is True
    assert result["changed_settings"] == list(WANTED)
    assert {name: misp.settings[name] for name in WANTED} == CONVERGED
    assert len(misp.posts()) == len(WANTED)
    assert result["requests"] == {"get": len(WANTED), "post": len(WANTED)}

    misp.requests.clear()
    rc, result, _output = play(run_playbook, variables(misp, misp_settings=WANTED))
    assert rc == 0
    assert result["_stats"]["changed"] == 0
    assert result["unchanged_settings"] == list(WANTED)
    assert misp.posts() == []
    assert len(misp.requests) == len(WANTED)


def test_on_a_local_connection_the_module_runs_in_the_controller(run_playbook, misp):
    # Its action plugin runs it in the controller's own process (issue 20): the play needs no
    # module interpreter, so one that does not exist changes nothing.
    extravars = variables(misp, misp_settings={"MISP.live": False}, ansible_python_interpreter="/nonexistent/python3")
    rc, result, output = play(run_playbook, extravars)
    assert rc == 0, output
    assert result["changed_settings"] == ["MISP.live"]
    assert misp.settings["MISP.live"] is False


def test_many_settings_read_in_one_request(run_playbook, misp):
    numeric = [name for name, d in misp.definitions.items() if d["type"] == "numeric" and "options" not in d]
    wanted = {name: 7 for name in numeric[:25]}
    rc, result, _output = play(run_playbook, variables(misp, misp_settings=wanted))
    assert rc == 0, result["msg"]
    assert result["read_strategy"] == "bulk"
    assert [r[1] for r in misp.requests if r[0] == "GET"] == ["/servers/serverSettings"]
    assert len(misp.posts()) == 25

    misp.requests.clear()
    rc, result, _output = play(run_playbook, variables(misp, misp_settings=wanted))
    assert (rc, result["changed"], len(misp.requests), misp.posts()) == (0, False, 1, [])


def test_check_mode_writes_nothing(run_playbook, misp):
    before = misp.settings
    rc, result, _output = play(run_playbook, variables(misp, misp_settings=WANTED), check=True)
    assert rc == 0
    assert result["changed"] is True
    assert result["changed_settings"] == list(WANTED)
    assert misp.posts() == []
    assert misp.settings == before


def test_diff_masks_redacted_and_secret_values_even_with_vvv(run_playbook, misp):
    salt = "salt-" + "7" * 40
    password = "redis-password-c0ffee"
    extravars = variables(
        misp,
        misp_settings={"MISP.live": False, "Security.salt": salt},
        misp_secret_settings={"SimpleBackgroundJobs.redis_password": password, "MISP.org": "Hidden Org"},
        misp_redacted="write",
    )
    rc, _result, output = play(run_playbook, extravars, diff=True, verbose=True, json_output=False)
    assert rc == 0, output
    assert "-    MISP.live: true" in output
    assert "+    MISP.live: false" in output
    assert "Security.salt: '*****'" in output
    assert "SimpleBackgroundJobs.redis_password: '*****'" in output
    assert "MISP.org: '*****'" in output
    for secret in (salt, password, "Hidden Org", KEY):
        assert secret not in output
    assert misp.settings["Security.salt"] == salt
    assert misp.settings["MISP.org"] == "Hidden Org"


def test_api_key_never_in_output_of_a_failure_with_vvv(run_playbook, misp):
    extravars = variables(misp, misp_settings={"MISP.live": "maybe"})
    rc, _result, output = play(run_playbook, extravars, verbose=True, json_output=False)
    assert rc == 2
    assert "MISP.live: expects a boolean" in output
    assert KEY not in output


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Cases run as one loop against one stand-in: (id, case of bad_input.yml, expected error text).
SHARED_CASES = [
    ("boolean", {"settings": {"MISP.live": "maybe"}}, "MISP.live: expects a boolean (true/false), got 'maybe'"),
    ("numeric", {"settings": {"Session.timeout": "abc"}}, "Session.timeout: expects a whole number, got 'abc'"),
    ("fraction", {"settings": {"Session.timeout": 1.5}}, "Session.timeout: expects a whole number, got 1.5"),
    ("string-as-bool", {"settings": {"MISP.org": True}}, "MISP.org: expects a string, got boolean true"),
    ("null", {"settings": {"MISP.org": None}}, "MISP.org: needs a value, got null"),
    ("unknown", {"settings": {"MISP.lve": True, "MISP.live": False}}, "MISP.lve: unknown setting"),
    ("option", {"settings": {"MISP.default_event_distribution": 9}}, "must be one of 0 (Your organisation only)"),
    (
        "not-a-dict",
        {"settings": ["MISP.live", True]},
        "argument 'settings' is of type list and we were unable to convert to dict",
    ),
    ("cli-only", {"settings": {"MISP.system_setting_db": True}}, "MISP.system_setting_db: can only be changed"),
    ("bad-url", {"url": "misp.example.test"}, "Invalid MISP url 'misp.example.test'"),
    ("refused-port", {"url": "closed-port"}, "Connection refused by GET http://127.0.0.1:"),
    ("wrong-key", {"wrong_key": True}, "HTTP 403: Authentication failed."),
    ("refused-edit", {"settings": {"MISP.baseurl": "misp.test"}}, "MISP refused MISP.baseurl = 'misp.test'"),
    ("advised-against", {"settings": {"MISP.log_paranoid": True}}, "It is highly recommended that this setting"),
]


@pytest.fixture(scope="module")
def shared_outcome(run_playbook):
    """Every shared case run once; (results by id, MISP before, MISP after, output)."""
    cases = []
    for case_id, case, _expected in SHARED_CASES:
        case = dict(case, id=case_id)
        if case.get("url") == "closed-port":
            case["url"] = f"http://127.0.0.1:{_closed_port()}"
        cases.append(case)
    with MispApiDouble(api_key=KEY) as misp:
        before = misp.settings
        extravars = variables(misp, misp_cases=cases, misp_wrong_api_key="not-the-key")
        rc, result, output = play(run_playbook, extravars, playbook=BAD_INPUT_PLAYBOOK)
        after = misp.settings
    assert rc == 0, output
    return {r["item"]["id"]: r for r in result["results"]}, before, after, output


@pytest.mark.parametrize(
    ("case_id", "expected"), [(c[0], c[2]) for c in SHARED_CASES], ids=[c[0] for c in SHARED_CASES]
)
def test_bad_input_fails_clearly_and_changes_nothing(shared_outcome, case_id, expected):
    results, before, after, output = shared_outcome
    result = results[case_id]
    assert result["failed"] is True
    assert expected in result["msg"]
    assert result.get("changed_settings", []) == []
    assert after == before
    assert KEY not in output


# Cases that need a stand-in of their own: (id, stand-in options, extra vars, expected error text).
SPECIAL_CASES = [
    (
        "secret",
        {},
        {"misp_secret_settings": {"Session.timeout": "hush-7731"}},
        "Session.timeout: expects a whole number, got the secret value",
    ),
    ("tls", {"tls": True}, {}, "TLS certificate verification failed"),
    ("server-error", {"fault": "500"}, {}, "HTTP 500: An Internal Error Has Occurred."),
    ("not-json", {"fault": "html"}, {}, "with a body that is not JSON"),
    ("timeout", {"delay": 3}, {"misp_timeout": 1}, "timed out after 1.0 seconds"),
    ("not-writeable", {"config_writeable": False}, {}, "app/Config.config.php is not writeable to the apache user."),
]


@pytest.mark.parametrize(
    ("double", "extra", "expected"), [c[1:] for c in SPECIAL_CASES], ids=[c[0] for c in SPECIAL_CASES]
)
def test_bad_peer_fails_clearly_and_changes_nothing(run_playbook, double, extra, expected):
    with MispApiDouble(api_key=KEY, **double) as misp:
        before = misp.settings
        rc, result, output = play(run_playbook, {**variables(misp, misp_settings={"MISP.live": False}), **extra})
        assert rc == 2
        assert result["failed"] is True
        assert expected in result["msg"]
        assert misp.settings == before
        assert "hush-7731" not in output
        assert KEY not in output


def test_validate_certs_with_ca_path(run_playbook):
    with MispApiDouble(api_key=KEY, tls=True) as misp:
        rc, result, _output = play(
            run_playbook, variables(misp, misp_settings={"MISP.live": False}, misp_ca_path=misp.ca_cert)
        )
        assert rc == 0, result["msg"]
        assert misp.settings["MISP.live"] is False


def test_force_saves_what_misp_advises_against(run_playbook, misp):
    rc, result, _output = play(
        run_playbook, variables(misp, misp_settings={"MISP.log_paranoid": True}, misp_force=True)
    )
    assert rc == 0, result["msg"]
    assert misp.posts() == [("POST", "/servers/serverSettingsEdit/MISP.log_paranoid", {"value": True, "force": True})]


# --- issue 21: what a new user tripped over ------------------------------------------------------


def test_skipped_redacted_setting_is_warned_about_naming_the_option(run_playbook, misp):
    extravars = variables(
        misp,
        misp_settings={"MISP.live": False},
        misp_secret_settings={"SimpleBackgroundJobs.redis_password": "redis-pw-8c1e"},
    )
    rc, result, _output = play(run_playbook, extravars)
    assert rc == 0, result["msg"]
    assert result["redacted_settings"] == ["SimpleBackgroundJobs.redis_password"]
    assert result["warnings"] == [
        "Not written, because MISP hides the current value of these redacted settings and redacted is skip: "
        "SimpleBackgroundJobs.redis_password. Set redacted: write to write them (on every run)."
    ]
    assert misp.settings["SimpleBackgroundJobs.redis_password"] == ""

    rc, _result, output = play(run_playbook, extravars, json_output=False)
    assert rc == 0
    assert "[WARNING]: Not written, because MISP hides" in output
    assert "redis-pw-8c1e" not in output


def test_known_cli_only_setting_is_refused_before_the_first_write(run_playbook, misp):
    # MISP redacts Security.encryption_key, so its definition (and cli_only flag) is never read.
    before = misp.settings
    extravars = variables(
        misp,
        misp_settings={"MISP.live": False},
        misp_secret_settings={"Security.encryption_key": "k" * 32},
        misp_redacted="write",
    )
    rc, result, _output = play(run_playbook, extravars)
    assert rc == 2
    assert result["msg"] == (
        "Invalid MISP settings, nothing was written: Security.encryption_key: can only be changed on the MISP "
        "command line (cake Admin setSetting Security.encryption_key ...), not through the API"
    )
    assert misp.posts() == []
    assert misp.settings == before


def test_405_mid_run_names_what_was_already_written(run_playbook):
    # A MISP release that also marks the redacted GnuPG.password CLI-only: only its 405 tells.
    with MispApiDouble(api_key=KEY, cli_only=["GnuPG.password"]) as misp:
        extravars = variables(
            misp,
            misp_settings={"MISP.live": False},
            misp_secret_settings={"GnuPG.password": "gpg-pass-41d0"},
            misp_redacted="write",
        )
        rc, result, output = play(run_playbook, extravars)
        assert rc == 2
        assert result["msg"].startswith(
            "GnuPG.password can only be changed on the MISP command line (cake Admin setSetting GnuPG.password ...)"
        )
        assert result["msg"].endswith("edited via the CLI. Already written: MISP.live.")
        assert result["changed_settings"] == ["MISP.live"]
        assert result["failed_setting"] == "GnuPG.password"
        assert misp.settings["MISP.live"] is False
        assert "gpg-pass-41d0" not in output


CANARY = 918273645


@pytest.mark.parametrize("wrong_key", [False, True], ids=["success", "wrong-key"])
def test_secret_named_values_never_reach_vvv_output(run_playbook, misp, wrong_key):
    # A number, and a string MISP's settings list would only mark redacted once read: with a
    # wrong key it is never read.
    extravars = variables(
        misp,
        misp_settings={"SimpleBackgroundJobs.redis_password": CANARY, "Security.salt": f"salt-canary-{CANARY}-" * 2},
        misp_redacted="write",
    )
    if wrong_key:
        extravars["misp_api_key"] = "not-the-key"
    rc, _result, output = play(run_playbook, extravars, verbose=True, json_output=False)
    assert rc == (2 if wrong_key else 0), output
    # -vvv was in effect: the module's arguments are shown (the module runs in the controller, so
    # there is no module command to show).
    assert "module_args:" in output
    assert str(CANARY) not in output
    if not wrong_key:
        assert misp.settings["SimpleBackgroundJobs.redis_password"] == str(CANARY)


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [(0, "timeout must be a positive number of seconds, got 0.0"), (-1, "got -1.0")],
)
def test_non_positive_timeout_is_refused_before_any_request(run_playbook, misp, timeout, expected):
    rc, result, _output = play(run_playbook, variables(misp, misp_settings={"MISP.live": False}, misp_timeout=timeout))
    assert rc == 2
    assert result["msg"].startswith("timeout must be a positive number of seconds")
    assert expected in result["msg"]
    assert misp.requests == []
