"""misp_worker_status against a real supervisord running stand-in MISP workers.

supervisord is PyPI supervisor (tests/rig/peers/supervisord.py) with MISP's ``misp-workers``
group; its workers are tests/doubles/misp_worker.py. Every check of the outcome asks supervisord
itself over XML-RPC, not the module. Bad input must leave every worker's state and pid as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.doubles.misp_api import MispApiDouble, default_workers
from tests.integration._helpers import run_module_play
from tests.rig.peers.supervisord import Supervisord

PLAYBOOK = Path(__file__).parent / "targets" / "misp_worker_status" / "worker_status.yml"
QUEUES = ("default", "email", "cache", "prio", "update")


@pytest.fixture
def start_rig(tmp_path):
    """Starts supervisord rigs on demand; stops them and checks no worker outlives them."""
    started = []

    def start(user=None, **kwargs):
        peer = Supervisord(tmp_path / f"supervisord-{len(started)}", **kwargs)
        if user:
            # Before start: the configuration it writes holds the user name.
            peer.user = user
        peer.start()
        started.append((peer, []))
        started[-1][1].extend(p["pid"] for p in peer.processes().values() if p["pid"])
        return peer

    yield start
    for peer, first_pids in started:
        last_pids = [p["pid"] for p in peer.processes().values() if p["pid"]]
        peer.stop()
        for pid in set(first_pids + last_pids):
            assert not _alive(pid), f"worker {pid} survived supervisord"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", peer.port)) != 0, f"port {peer.port} still open"


@pytest.fixture
def rig(start_rig):
    # Two default workers so that a queue can be half up.
    return start_rig(numprocs={"default": 2})


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; only its parent can reap it.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


def creds(peer):
    return {"supervisor_url": peer.url, "supervisor_user": peer.user, "supervisor_password": peer.password}


@pytest.fixture
def play(run_playbook, tmp_path):
    """Runs worker_status.yml once with the given module options."""

    def call(check=False, diff=False, verbose=False, **args):
        env = {"ANSIBLE_DIFF_ALWAYS": "true"} if diff else {}
        if verbose:
            env["ANSIBLE_VERBOSITY"] = "3"
        return run_module_play(run_playbook, PLAYBOOK, tmp_path, "ws_args", "ws_result_path", args, check, env)

    return call


def snapshot(peer):
    """Every worker's state and pid: equal snapshots mean nothing was started, stopped or killed."""
    return {name: (p["statename"], p["pid"]) for name, p in peer.processes().items()}


def wait_state(peer, name, state, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (current := peer.processes()[name]["statename"]) != state:
        assert time.monotonic() < deadline, f"{name} stayed {current}, never {state}"
        time.sleep(0.1)


def all_running(peer):
    return all(p["statename"] == "RUNNING" and p["pid"] for p in peer.processes().values())


# --- report, heal, restart -----------------------------------------------------------------------


def test_present_reports_healthy_with_supervisords_pids(play, rig):
    run = play(**creds(rig))
    assert run.rc == 0, run.output
    assert run.recap["changed"] == 0
    result = run.result
    assert result["healthy"] is True
    assert result["short"] == []
    assert sorted(result["queues"]) == sorted(QUEUES)
    truth = rig.processes()
    for queue in QUEUES:
        entry = result["queues"][queue]
        assert entry["running"] == len(entry["processes"]) == (2 if queue == "default" else 1)
        for proc in entry["processes"]:
            assert proc["state"] == "RUNNING"
            assert proc["pid"] == truth[proc["name"]]["pid"]
            assert proc["uptime"] >= 0


def test_running_brings_back_a_stopped_and_a_killed_worker(play, rig):
    rig.rpc().supervisor.stopProcess("misp-workers:default_01", True)
    killed = rig.processes()["email_00"]["pid"]
    os.kill(killed, signal.SIGKILL)
    wait_state(rig, "email_00", "EXITED")
    args = {**creds(rig), "queues": {"default": 2, "email": 1, "cache": 1, "prio": 1, "update": 1}}

    report = play(**args)
    assert report.rc == 0
    assert report.result["healthy"] is False
    assert report.result["short"] == ["default", "email"]

    run = play(state="running", diff=True, **args)
    assert run.rc == 0, run.output
    assert run.recap["changed"] == 1
    assert sorted(run.result["started"]) == ["default_01", "email_00"]
    assert run.result["healthy"] is True
    assert all_running(rig)
    assert rig.processes()["email_00"]["pid"] != killed
    assert run.result["diff"]["before"]["default_01"] == "STOPPED"
    assert run.result["diff"]["after"]["email_00"] == f"RUNNING pid {rig.processes()['email_00']['pid']}"
    assert "+" in run.output and "email_00" in run.output  # the diff is shown

    before = snapshot(rig)
    again = play(state="running", **args)
    assert again.rc == 0
    assert again.recap["changed"] == 0
    assert again.result["started"] == []
    assert snapshot(rig) == before


def test_on_a_local_connection_the_module_runs_in_the_controller(run_playbook, rig, tmp_path):
    # Its action plugin runs it in the controller's own process (issue 20): the task needs no
    # module interpreter, so one that does not exist changes nothing.
    out = tmp_path / "result.json"
    extravars = {"ws_args": creds(rig), "ws_result_path": str(out), "ws_interpreter": "/nonexistent/python3"}
    played = run_playbook(PLAYBOOK, extravars)
    assert played.rc == 0, played.stdout[-3000:]
    result = json.loads(out.read_text())
    assert (result["healthy"], result["short"], sorted(result["queues"])) == (True, [], sorted(QUEUES)), result


def test_check_mode_says_what_it_would_start_and_starts_nothing(play, rig):
    rig.rpc().supervisor.stopProcess("misp-workers:prio_00", True)
    before = snapshot(rig)
    run = play(check=True, state="running", **creds(rig))
    assert run.rc == 0, run.output
    assert run.recap["changed"] == 1
    assert run.result["started"] == ["prio_00"]
    assert run.result["healthy"] is False
    assert snapshot(rig) == before

    restart = play(check=True, state="restarted", **creds(rig))
    assert restart.rc == 0
    assert restart.recap["changed"] == 1
    assert len(restart.result["restarted"]) == 6
    assert snapshot(rig) == before


def test_restarted_gives_every_worker_a_new_pid(play, rig):
    before = {name: p["pid"] for name, p in rig.processes().items()}
    run = play(state="restarted", **creds(rig))
    assert run.rc == 0, run.output
    assert run.recap["changed"] == 1
    assert all_running(rig)
    after = {name: p["pid"] for name, p in rig.processes().items()}
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before)
    for pid in before.values():
        assert not _alive(pid)


def test_a_crashing_worker_fails_running_at_the_timeout_naming_its_queue(play, start_rig):
    peer = start_rig(crash=["update"])
    assert peer.processes()["update_00"]["statename"] == "FATAL"
    started = time.monotonic()
    run = play(state="running", wait_timeout=4, **creds(peer))
    took = time.monotonic() - started
    assert run.rc != 0
    assert run.result["failed"] is True
    msg = run.result["msg"]
    assert msg.startswith("Timed out after 4s waiting for the workers of group 'misp-workers' to start")
    assert "update (0/1 RUNNING; update_00 FATAL" in msg
    assert "default (" not in msg
    assert run.result["started"] == ["update_00"]
    assert run.result["short"] == ["update"]
    assert took >= 4
    # The other queues were not touched.
    assert all(p["statename"] == "RUNNING" for n, p in peer.processes().items() if n != "update_00")


def test_a_configured_worker_that_died_makes_its_queue_unhealthy(play, start_rig):
    # MISP's worker page marks such a worker dead; one RUNNING default process used to be enough.
    peer = start_rig(numprocs={"default": 3})
    os.kill(peer.processes()["default_01"]["pid"], signal.SIGKILL)
    wait_state(peer, "default_01", "EXITED")
    peer.rpc().supervisor.stopProcess("misp-workers:email_00", True)

    report = play(**creds(peer))
    assert report.rc == 0, report.output
    assert report.result["healthy"] is False
    assert report.result["short"] == ["default", "email"]
    default = report.result["queues"]["default"]
    assert (default["wanted"], default["configured"], default["running"]) == (3, 3, 2)
    assert (default["dead"], default["stopped"]) == (["default_01"], [])
    assert (report.result["queues"]["email"]["dead"], report.result["queues"]["email"]["stopped"]) == ([], ["email_00"])
    assert report.result["queues"]["cache"] | {"processes": []} == {
        "wanted": 1,
        "configured": 1,
        "running": 1,
        "healthy": True,
        "dead": [],
        "stopped": [],
        "processes": [],
    }

    # Asking for fewer accepts them, and still reports them.
    fewer = play(queues={"default": 2, "email": 1, "cache": 1, "prio": 1, "update": 1}, **creds(peer))
    assert fewer.rc == 0
    assert fewer.result["short"] == ["email"]
    assert fewer.result["queues"]["default"]["healthy"] is True
    assert fewer.result["queues"]["default"]["dead"] == ["default_01"]


def test_a_user_name_that_is_a_common_word_leaves_messages_readable(play, start_rig):
    # As no_log, the user name "supervisor" turned every "supervisord" into "********d".
    peer = start_rig(user="supervisor")
    ok = play(verbose=True, **creds(peer))
    bad = play(**{**creds(peer), "supervisor_password": peer.password + "-wrong"})
    assert ok.rc == 0, ok.output
    assert "supervisor_user: supervisor\n" in ok.output  # -vvv shows the arguments, the user unmasked
    assert "********d" not in ok.output + bad.output
    assert bad.rc != 0
    assert bad.result["msg"] == (
        f"supervisord at {peer.url} rejected the credentials (HTTP 401): check supervisor_user and supervisor_password"
    )
    for run in (ok, bad):
        assert peer.password not in run.output


# --- bad input and broken peers ------------------------------------------------------------------


class _Answer500(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"Internal Server Error"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def server_error():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_server():
    """Accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@contextlib.contextmanager
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


def _tls_files(directory):
    cert, key = directory / "proxy.crt", directory / "proxy.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@contextlib.contextmanager
def tls_proxy(peer, directory):
    """TLS in front of supervisord (stunnel's job in misp-docker), with a self-signed certificate."""
    cert, key = _tls_files(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(src, dst):
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def serve():
        while not stop.is_set():
            try:
                raw = listener.accept()[0]
            except TimeoutError:
                continue
            try:
                raw.settimeout(5)
                client = context.wrap_socket(raw, server_side=True)
                client.settimeout(None)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", peer.port), timeout=5)
            upstream.settimeout(None)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(src, dst), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", str(cert)
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _at_peer(scheme, path=""):
    return lambda peer: contextlib.nullcontext(f"{scheme}://127.0.0.1:{peer.port}{path}")


# Each case: module options on top of the rig's credentials and a fragment of the error message.
# A callable value gets the rig and gives a context manager that yields the value.
BAD_INPUT = {
    "unknown state": ({"state": "stopped"}, "value of state must be one of: present, running, restarted, got: stopped"),
    "wait_timeout not a number": ({"wait_timeout": "soon"}, "argument 'wait_timeout' is of type str"),
    "negative wait_timeout": ({"wait_timeout": -3}, "wait_timeout must be at least 1 second, got -3"),
    "queues not a mapping": ({"queues": ["default"]}, "argument 'queues' is of type list"),
    "negative count": ({"queues": {"default": -1}}, "queues.default must be at least 1 process, got -1"),
    "count not a number": ({"queues": {"prio": "lots"}}, "queues.prio must be a number of processes, got 'lots'"),
    "unknown queue": ({"queues": {"mail": 1}}, "queues names unknown queue 'mail'"),
    "more than numprocs": ({"queues": {"prio": 3}}, "too few processes configured (numprocs): prio wants 3 but has 1"),
    "bad url": ({"supervisor_url": "supervisor:9001"}, "Invalid supervisor_url 'supervisor:9001'"),
    "missing group": (
        {"group": "misp-wrkrs"},
        "has no process group 'misp-wrkrs' (BAD_NAME); its groups: misp-workers",
    ),
    "wrong password": ({"supervisor_password": "not-the-password"}, "rejected the credentials (HTTP 401)"),
    "wrong path": (
        {"supervisor_url": _at_peer("http", "/xmlrpc")},
        "answered HTTP 400 Bad Request to supervisor.getAllProcessInfo (is the XML-RPC path right?",
    ),
    "https to plain http": (
        {"supervisor_url": _at_peer("https"), "supervisor_timeout": 2},
        "within 2.0 seconds (an https URL needs a TLS endpoint",
    ),
    "unreachable port": (
        {"supervisor_url": lambda peer: closed_port()},
        "Connection refused by supervisord at http://127.0.0.1:",
    ),
    "never answers": (
        {"supervisor_url": lambda peer: silent_server(), "supervisor_timeout": 1},
        "did not answer supervisor.getAllProcessInfo within 1.0 seconds",
    ),
    "server error": ({"supervisor_url": lambda peer: server_error()}, "answered HTTP 500 Internal Server Error"),
    "misp url without api_key": ({"url": "https://misp.example.org"}, "parameters are required together: url, api_key"),
    # Used to be an uncaught ValueError from the socket, and 0 a silent 10 s (issue 21).
    "negative supervisor_timeout": (
        {"supervisor_timeout": -1},
        "supervisor_timeout must be a positive number of seconds, got -1.0",
    ),
    "zero supervisor_timeout": ({"supervisor_timeout": 0}, "supervisor_timeout must be a positive number of seconds"),
    "zero misp timeout": ({"timeout": 0}, "timeout must be a positive number of seconds, got 0.0"),
}


@pytest.mark.parametrize(("extra", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_fails_clearly_and_changes_nothing(play, rig, extra, message):
    # A stopped worker: a module that wrongly went ahead with state=running would start it.
    rig.rpc().supervisor.stopProcess("misp-workers:prio_00", True)
    before = snapshot(rig)
    with contextlib.ExitStack() as stack:
        args = {**creds(rig), "state": "running", "wait_timeout": 5}
        for name, value in extra.items():
            args[name] = stack.enter_context(value(rig)) if callable(value) else value
        run = play(**args)
    assert run.rc != 0
    assert run.result["failed"] is True
    assert message in run.result["msg"]
    assert rig.password not in run.output
    assert snapshot(rig) == before


# --- secrets, TLS, MISP's opinion ----------------------------------------------------------------


def test_credentials_never_appear_in_output_even_with_vvv(play, rig):
    rig.rpc().supervisor.stopProcess("misp-workers:cache_00", True)
    ok = play(verbose=True, diff=True, state="running", **creds(rig))
    bad = play(verbose=True, **{**creds(rig), "supervisor_password": rig.password + "-wrong"})
    assert ok.rc == 0, ok.output
    assert bad.rc != 0
    assert "module_args:" in ok.output  # -vvv was in effect: the module's arguments are shown
    for run in (ok, bad):
        assert rig.password not in run.output
        assert rig.password not in json.dumps(run.result)
    # The user name is no secret and is shown as given (issue 21).
    assert f"supervisor_user: {rig.user}\n" in ok.output


def test_tls_in_front_of_supervisord(play, rig, tmp_path):
    with tls_proxy(rig, tmp_path) as (url, ca):
        trusted = play(**{**creds(rig), "supervisor_url": url, "supervisor_ca_path": ca})
        untrusted = play(**{**creds(rig), "supervisor_url": url})
        unchecked = play(**{**creds(rig), "supervisor_url": url, "supervisor_validate_certs": False})
    assert trusted.rc == 0, trusted.output
    assert trusted.result["healthy"] is True
    assert untrusted.rc != 0
    assert "TLS certificate verification failed for supervisord at https://127.0.0.1:" in untrusted.result["msg"]
    assert "supervisor_ca_path" in untrusted.result["msg"]
    assert unchecked.rc == 0, unchecked.output


def test_misp_second_opinion_is_reported_not_judged(play, rig):
    # MISP looks at /proc on its own pod, so workers in another pod look dead to it (issue 8616).
    workers = default_workers()
    workers["email"].update(ok=False, workers=[{"pid": 4242, "alive": False, "ok": False}])
    with MispApiDouble(workers=workers, api_key="k" * 40) as misp:
        run = play(url=misp.url, api_key=misp.api_key, **creds(rig))
    assert run.rc == 0, run.output
    assert run.result["healthy"] is True
    opinion = run.result["misp_workers"]
    assert opinion["error"] is None
    assert opinion["disagree"] == ["email"]
    assert opinion["answer"]["email"]["ok"] is False
    assert "k" * 40 not in run.output


def test_misp_unreachable_is_reported_without_failing(play, rig):
    with closed_port() as url:
        run = play(url=url, api_key="k" * 40, timeout=2, **creds(rig))
    assert run.rc == 0, run.output
    assert run.result["healthy"] is True
    assert run.result["misp_workers"]["answer"] is None
    assert "Connection refused" in run.result["misp_workers"]["error"]
