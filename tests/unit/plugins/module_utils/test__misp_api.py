"""MispApi against the MISP stand-in on loopback: answers, and one clear error per failure."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import urllib.parse

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_api import (
    MISP_API_ARGSPEC,
    MispApi,
    MispApiError,
    misp_reason,
)
from tests.doubles.misp_api import AUTH_FAILED, MispApiDouble
from tests.doubles.misp_api.cases import ERROR_ANSWERS

KEY = "unit-test-key-5f0c2a9e81d34b7c"


def params(url, **extra):
    return {"url": url, "api_key": KEY, "validate_certs": True, "ca_path": None, "timeout": 5, **extra}


@pytest.fixture(scope="module")
def misp():
    with MispApiDouble(api_key=KEY) as double:
        yield double


@pytest.fixture(scope="module")
def tls_misp():
    with MispApiDouble(api_key=KEY, tls=True) as double:
        yield double


def test_argspec_hides_the_key_and_matches_the_doc_fragment():
    assert MISP_API_ARGSPEC["api_key"]["no_log"] is True
    assert set(MISP_API_ARGSPEC) == {"url", "api_key", "validate_certs", "ca_path", "timeout"}


@pytest.mark.parametrize("url", ["misp.example.org", "ftp://misp.example.org", "", "https://", "http:///servers"])
def test_bad_url_is_refused_naming_it(url):
    with pytest.raises(MispApiError) as err:
        MispApi(params(url))
    assert f"Invalid MISP url '{url}'" in err.value.message


def test_get_returns_parsed_json_and_sends_the_key_header(misp):
    answer = MispApi(params(misp.url + "/")).get("/servers/getSetting/MISP.redis_port")
    assert answer["value"] == 6379
    assert answer["type"] == "numeric"
    assert misp.requests[-1] == ("GET", "/servers/getSetting/MISP.redis_port", None)


def test_post_sends_a_json_body(misp):
    answer = MispApi(params(misp.url)).post("servers/serverSettingsEdit/MISP.org", {"value": "CIRCL", "force": False})
    assert answer["saved"] is True
    assert misp.requests[-1] == ("POST", "/servers/serverSettingsEdit/MISP.org", {"value": "CIRCL", "force": False})
    assert misp.settings["MISP.org"] == "CIRCL"


def test_wrong_key_gives_misps_reason_and_status(misp):
    api = MispApi(dict(params(misp.url), api_key="wrong-key"))
    with pytest.raises(MispApiError) as err:
        api.get("/servers/getSetting/MISP.live")
    assert err.value.status == 403
    assert err.value.body["message"] == AUTH_FAILED
    assert "HTTP 403" in err.value.message
    assert AUTH_FAILED in err.value.message


def test_refused_edit_reports_message_and_errors(misp):
    with pytest.raises(MispApiError) as err:
        MispApi(params(misp.url)).post("/servers/serverSettingsEdit/MISP.baseurl", {"value": "misp.test"})
    assert err.value.status == 403
    assert err.value.body["errors"] == "Invalid baseurl, please make sure that the protocol is set."
    assert "Could not serverSettingsEdit Server: Invalid baseurl" in err.value.message


def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nobody listens on the port once the socket is closed.
    with pytest.raises(MispApiError) as err:
        MispApi(params(f"http://127.0.0.1:{port}")).get("/users/heartbeat")
    assert f"Connection refused by GET http://127.0.0.1:{port}/users/heartbeat" in err.value.message
    assert err.value.status is None


def test_timeout():
    with MispApiDouble(api_key=KEY, delay=1.5) as slow, pytest.raises(MispApiError) as err:
        MispApi(params(slow.url, timeout=0.3)).get("/servers/getSetting/MISP.live")
    assert "timed out after 0.3 seconds" in err.value.message


def test_tls_failure_with_an_untrusted_certificate(tls_misp):
    with pytest.raises(MispApiError) as err:
        MispApi(params(tls_misp.url)).get("/servers/getSetting/MISP.live")
    assert "TLS certificate verification failed" in err.value.message
    assert "ca_path" in err.value.message


@pytest.mark.parametrize("extra", [{"validate_certs": False}, "ca_path"])
def test_tls_succeeds_when_trusted_or_not_verified(tls_misp, extra):
    extra = {"ca_path": tls_misp.ca_cert} if extra == "ca_path" else extra
    assert MispApi(params(tls_misp.url, **extra)).get("/servers/getSetting/MISP.live")["value"] is True


@pytest.mark.parametrize("content", [None, "not a certificate"])
def test_unusable_ca_path_is_named(tmp_path, content):
    ca_path = tmp_path / "ca.pem"
    if content:
        ca_path.write_text(content)
    with pytest.raises(MispApiError) as err:
        MispApi(params("https://127.0.0.1:1", ca_path=str(ca_path)))
    assert f"Cannot use ca_path '{ca_path}'" in err.value.message


def test_non_json_answer():
    with MispApiDouble(api_key=KEY, fault="html") as html, pytest.raises(MispApiError) as err:
        MispApi(params(html.url)).get("/servers/getSetting/MISP.live")
    assert "answered HTTP 200 with a body that is not JSON" in err.value.message
    assert "<title>Users - MISP</title>" in err.value.message


def test_server_error():
    with MispApiDouble(api_key=KEY, fault="500") as broken, pytest.raises(MispApiError) as err:
        MispApi(params(broken.url)).get("/servers/serverSettings")
    assert err.value.status == 500
    assert "HTTP 500: An Internal Error Has Occurred." in err.value.message


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "x", "message": "Setting X is invalid.", "url": "/u"}, "Setting X is invalid."),
        ({"message": "Could not save", "errors": "No change."}, "Could not save: No change."),
        ({"message": "Could not save", "errors": {"value": ["bad"]}}, 'Could not save: {"value": ["bad"]}'),
        ({"message": "Same", "errors": "Same"}, "Same"),
        ({"saved": False}, None),
        ("plain text", None),
        (["Background jobs not enabled"], None),
    ],
)
def test_misp_reason(body, reason):
    assert misp_reason(body) == reason


def test_the_key_never_appears_in_errors(misp, tls_misp):
    failures = [
        lambda: MispApi(dict(params(misp.url), api_key=KEY + "x")).get("/servers/getSetting/MISP.live"),
        lambda: MispApi(params(misp.url)).get("/servers/getSetting/No.such"),
        lambda: MispApi(params(tls_misp.url)).get("/servers/getSetting/MISP.live"),
    ]
    for failure in failures:
        with pytest.raises(MispApiError) as err:
            failure()
        assert KEY not in err.value.message
        assert KEY not in repr(err.value.body)


def _start_process(port, key_file, state):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.doubles.misp_api",
            "--port",
            str(port),
            "--api-key-file",
            str(key_file),
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == f"listening on http://127.0.0.1:{port}"
    return proc


def test_stand_in_runs_as_a_process_and_keeps_its_state(tmp_path):
    key_file, state = tmp_path / "key", tmp_path / "state.json"
    key_file.write_text(KEY + "\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = MispApi(params(f"http://127.0.0.1:{port}"))
    proc = _start_process(port, key_file, state)
    try:
        api.post("/servers/serverSettingsEdit/Session.timeout", {"value": 90})
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    proc = _start_process(port, key_file, state)
    try:
        assert api.get("/servers/getSetting/Session.timeout")["value"] == 90
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# The stand-in itself must answer as misp.md says, or the tests above prove nothing.
@pytest.mark.parametrize(
    ("name", "posted", "stored"),
    [
        ("MISP.live", "false", True),
        ("MISP.live", False, False),
        ("MISP.live", "0", False),
        ("Session.timeout", "abc", 0),
        ("Session.timeout", "12abc", 12),
        ("Session.timeout", 90, 90),
        ("MISP.org", " padded ", "padded"),
    ],
)
def test_stand_in_reproduces_the_rest_casting_pitfall(name, posted, stored):
    with MispApiDouble(api_key=KEY) as misp:
        MispApi(params(misp.url)).post(f"/servers/serverSettingsEdit/{name}", {"value": posted, "force": False})
        assert misp.settings[name] == stored


@pytest.mark.parametrize(("method", "path", "body", "status", "key", "reason"), ERROR_ANSWERS)
def test_stand_in_error_answers(misp, method, path, body, status, key, reason):
    # The cases the PHP double answers too (tests/integration/test_misp_image.py).
    url = urllib.parse.urlsplit(misp.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    payload = json.dumps(body) if body is not None else None
    conn.request(method, path, body=payload, headers={"Authorization": KEY, "Accept": "application/json"})
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())[key]) == (status, reason)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/servers/restartWorkers", "Restarting workers."),
        ("/servers/restartDeadWorkers", "Restarting workers."),
        ("/servers/startWorker/prio", "Worker start signal sent"),
        ("/servers/stopWorker/101", "Worker stop signal sent"),
        ("/servers/killAllWorkers", "Killing workers."),
    ],
)
def test_stand_in_worker_actions(misp, path, message):
    answer = MispApi(params(misp.url)).post(path, {})
    assert answer == {"saved": True, "success": True, "name": message, "message": message, "url": answer["url"]}


def test_stand_in_workers_and_heartbeat():
    with MispApiDouble(api_key=KEY) as misp:
        api = MispApi(params(misp.url))
        workers = api.get("/servers/getWorkers")
        assert set(workers) >= {"cache", "default", "email", "prio", "update", "proc_accessible", "controls"}
        assert workers["default"]["workers"][0]["alive"] is True
        misp.set_values({"MISP.background_jobs": False})
        assert api.get("/servers/getWorkers") == ["Background jobs not enabled"]
        assert MispApi(dict(params(misp.url), api_key="none")).get("/users/heartbeat") == {"message": "OK"}


def test_stand_in_bulk_read_masks_redacted_values():
    with MispApiDouble(api_key=KEY, settings={"Security.salt": "s" * 40}) as misp:
        final = MispApi(params(misp.url)).get("/servers/serverSettings")["finalSettings"]
    by_name = {entry["setting"]: entry for entry in final}
    assert len(by_name) >= 120
    assert by_name["Security.salt"]["value"] == "*****"
    assert by_name["MISP.redis_port"]["value"] == 6379


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("inf")])
def test_non_positive_timeout_is_refused_before_any_request(misp, timeout):
    # Before: 0 silently became 30 s and -1 failed as "Cannot reach" MISP (issue 21).
    misp.requests.clear()
    with pytest.raises(MispApiError) as err:
        MispApi(params(misp.url, timeout=timeout))
    assert err.value.message == f"timeout must be a positive number of seconds, got {timeout!r}"
    assert misp.requests == []


def test_unset_timeout_is_thirty_seconds(misp):
    assert MispApi(params(misp.url, timeout=None)).timeout == 30
