"""Unit tests of the supervisord XML-RPC client, against in-process servers on 127.0.0.1.

The XML-RPC server here is the standard library's, answering with supervisord's faults and
structs (supervisor/rpcinterface.py); the real supervisord is exercised by the integration tests.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, HTTPServer
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils._supervisor import (
    ALREADY_STARTED,
    BAD_NAME,
    Supervisor,
    SupervisorError,
    rpc_url,
)

USER, PASSWORD = "workers-admin", "s3cret-Pa55word"


def info(name, group="misp-workers", state="RUNNING", pid=4242):
    return {"name": name, "group": group, "statename": state, "pid": pid, "start": 100, "now": 160}


class _AuthHandler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/RPC2",)

    def log_message(self, *args):
        pass

    def parse_request(self):
        # supervisord's inet_http_server answers 401 before looking at the call.
        if not super().parse_request():
            return False
        wanted = self.server.auth
        if wanted and self.headers.get("Authorization") != wanted:
            self.send_error(401, "Unauthorized")
            return False
        self.server.seen_auth.append(self.headers.get("Authorization"))
        return True


@contextlib.contextmanager
def serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def rpc_server(procs, auth=(USER, PASSWORD), group_results=None):
    server = SimpleXMLRPCServer(("127.0.0.1", 0), _AuthHandler, allow_none=True, logRequests=False)
    server.auth = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None
    server.seen_auth = []
    server.calls = []

    def start_process(name, wait):
        server.calls.append(("startProcess", name, wait))
        group, proc = name.split(":", 1)
        match = [p for p in procs if p["group"] == group and p["name"] == proc]
        if not match:
            raise xmlrpc.client.Fault(BAD_NAME, f"BAD_NAME: {name}")
        if match[0]["statename"] == "RUNNING":
            raise xmlrpc.client.Fault(ALREADY_STARTED, f"ALREADY_STARTED: {name}")
        return True

    def group_call(method):
        def call(group, wait):
            server.calls.append((method, group, wait))
            return group_results or [{"name": "default_00", "group": group, "status": 80, "description": "OK"}]

        return call

    server.register_function(lambda: procs, "supervisor.getAllProcessInfo")
    server.register_function(start_process, "supervisor.startProcess")
    server.register_function(group_call("stopProcessGroup"), "supervisor.stopProcessGroup")
    server.register_function(group_call("startProcessGroup"), "supervisor.startProcessGroup")
    with serve(server):
        yield server


def params(port, **extra):
    base = {
        "supervisor_url": f"http://127.0.0.1:{port}",
        "supervisor_user": USER,
        "supervisor_password": PASSWORD,
        "supervisor_validate_certs": True,
        "supervisor_ca_path": None,
        "supervisor_timeout": 2.0,
    }
    base.update(extra)
    return base


def raises(client_call, *args):
    with pytest.raises(SupervisorError) as caught:
        client_call(*args)
    assert PASSWORD not in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9001", "http://127.0.0.1:9001/RPC2"),
        ("http://127.0.0.1:9001/", "http://127.0.0.1:9001/RPC2"),
        ("https://workers.example.org/supervisor/RPC2", "https://workers.example.org/supervisor/RPC2"),
        ("http://[::1]:9001", "http://[::1]:9001/RPC2"),
    ],
)
def test_rpc_url(url, expected):
    assert rpc_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["127.0.0.1:9001", "ftp://127.0.0.1:9001", "http://", "http://127.0.0.1:notaport", "http://127.0.0.1:0"],
)
def test_rpc_url_rejects_and_names_the_url(url):
    with pytest.raises(SupervisorError, match=f"Invalid supervisor_url '{url}'"):
        rpc_url(url)


def test_rpc_url_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(SupervisorError) as caught:
        rpc_url(f"http://{USER}:{PASSWORD}@127.0.0.1:9001")
    assert "must not embed credentials" in caught.value.message
    assert PASSWORD not in caught.value.message


def test_group_processes_filters_the_group_and_sends_basic_auth():
    procs = [info("default_00"), info("nginx", group="nginx"), info("email_00")]
    with rpc_server(procs) as server:
        got = Supervisor(params(server.server_address[1])).group_processes("misp-workers")
    assert [p["name"] for p in got] == ["default_00", "email_00"]
    assert server.seen_auth == [server.auth]


def test_no_user_sends_no_authorization_header():
    with rpc_server([info("default_00")], auth=None) as server:
        port = server.server_address[1]
        Supervisor(params(port, supervisor_user=None, supervisor_password=None)).group_processes("misp-workers")
    assert server.seen_auth == [None]


def test_missing_group_is_a_bad_name_error_listing_the_groups():
    with rpc_server([info("nginx", group="nginx")]) as server:
        error = raises(Supervisor(params(server.server_address[1])).group_processes, "misp-workers")
    assert error.fault == BAD_NAME
    assert "no process group 'misp-workers'" in error.message
    assert "its groups: nginx" in error.message


def test_wrong_password_is_reported_as_401_without_the_password():
    with rpc_server([info("default_00")]) as server:
        client = Supervisor(params(server.server_address[1], supervisor_password="wrong-" + PASSWORD))
        error = raises(client.group_processes, "misp-workers")
    assert "rejected the credentials (HTTP 401)" in error.message
    assert "wrong-" not in error.message


def test_start_process_already_started_is_not_an_error():
    with rpc_server([info("default_00")]) as server:
        started = Supervisor(params(server.server_address[1])).start_process("misp-workers", "default_00")
    assert started is False
    assert server.calls == [("startProcess", "misp-workers:default_00", False)]


def test_start_process_other_faults_raise_with_the_fault_code():
    with rpc_server([info("default_00")]) as server:
        error = raises(Supervisor(params(server.server_address[1])).start_process, "misp-workers", "nope_00")
    assert error.fault == BAD_NAME
    assert "BAD_NAME: misp-workers:nope_00" in error.message


def test_group_calls_do_not_wait_and_succeed():
    with rpc_server([info("default_00")]) as server:
        client = Supervisor(params(server.server_address[1]))
        client.stop_group("misp-workers")
        client.start_group("misp-workers")
    assert server.calls == [("stopProcessGroup", "misp-workers", False), ("startProcessGroup", "misp-workers", False)]


def test_group_call_failures_name_the_processes():
    failed = [
        {"name": "default_00", "group": "misp-workers", "status": 80, "description": "OK"},
        {"name": "email_00", "group": "misp-workers", "status": 50, "description": "SPAWN_ERROR: email_00"},
    ]
    with rpc_server([info("default_00")], group_results=failed) as server:
        error = raises(Supervisor(params(server.server_address[1])).start_group, "misp-workers")
    assert "startProcessGroup for email_00: SPAWN_ERROR: email_00" in error.message
    assert "default_00" not in error.message


class _Canned(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((500, b"Internal Server Error"), "answered HTTP 500 Internal Server Error to supervisor.getAllProcessInfo"),
        (
            (404, b"Not Found"),
            "answered HTTP 404 Not Found to supervisor.getAllProcessInfo (is the XML-RPC path right?",
        ),
        ((200, b"<html><body>MISP</body></html>"), "did not answer XML-RPC to supervisor.getAllProcessInfo"),
        ((200, b"not xml at all"), "did not answer XML-RPC"),
    ],
)
def test_http_answers_that_are_not_xml_rpc(answer, message):
    server = HTTPServer(("127.0.0.1", 0), _Canned)
    server.answer = answer
    with serve(server):
        error = raises(Supervisor(params(server.server_address[1])).group_processes, "misp-workers")
    assert message in error.message


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused():
    port = free_port()
    error = raises(Supervisor(params(port)).group_processes, "misp-workers")
    assert f"Connection refused by supervisord at http://127.0.0.1:{port}/RPC2" in error.message


def test_server_that_never_answers_times_out():
    # A listening socket that is never accepted from: the connection opens, no answer comes.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = Supervisor(params(listener.getsockname()[1], supervisor_timeout=0.3))
        error = raises(client.group_processes, "misp-workers")
    assert "did not answer supervisor.getAllProcessInfo within 0.3 seconds" in error.message


def test_https_timeout_hints_at_tls():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        error = raises(
            Supervisor(params(0, supervisor_url=url, supervisor_timeout=0.3)).group_processes, "misp-workers"
        )
    assert error.message.endswith(
        "within 0.3 seconds (an https URL needs a TLS endpoint; supervisord itself speaks plain HTTP)"
    )


def test_https_against_plain_http_is_a_tls_failure():
    with rpc_server([info("default_00")]) as server:
        client = Supervisor(params(0, supervisor_url=f"https://127.0.0.1:{server.server_address[1]}"))
        error = raises(client.group_processes, "misp-workers")
    assert error.message.startswith("TLS failure on supervisord at https://127.0.0.1:")


def test_unreadable_ca_path_names_the_file(tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(SupervisorError, match=f"Cannot load supervisor_ca_path '{missing}'"):
        Supervisor(params(9001, supervisor_url="https://127.0.0.1:9001", supervisor_ca_path=str(missing)))


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan")])
def test_non_positive_timeout_is_refused_naming_it(timeout):
    # Before: 0 silently became 10 s, and -1 an uncaught ValueError from the socket (issue 21).
    with pytest.raises(SupervisorError) as err:
        Supervisor(params(free_port(), supervisor_timeout=timeout))
    assert err.value.message == f"supervisor_timeout must be a positive number of seconds, got {timeout!r}"


def test_unset_timeout_is_ten_seconds():
    assert Supervisor(params(free_port(), supervisor_timeout=None)).timeout == 10
