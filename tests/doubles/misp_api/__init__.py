"""Stand-in for the admin REST API of MISP (the PHP application), on loopback only.

MISP itself cannot run here (PHP, MySQL, Redis). This double answers the endpoints the collection
uses exactly as /work/shared/reference/misp.md describes them (MISP 2.5 ServersController):

- ``GET /servers/getSetting/<name>``: definition and value; 404 ``Setting X is invalid.``;
  403 ``This setting is redacted.``
- ``GET /servers/serverSettings``: ``finalSettings`` lists every setting, redacted values ``*****``
- ``POST /servers/serverSettingsEdit/<name>`` ``{"value": ..., "force": ...}``: 200 ``Field
  updated``; 403 with ``errors`` (invalid input, ``No change.`` for ``*****``, config.php not
  writeable, a failed test unless forced); 405 for a CLI-only setting; values are cast the way
  PHP does before the test runs (``checks.py``), so "false" saves as true and "abc" as 0
- ``GET /servers/getWorkers`` (a configurable document, or ``["Background jobs not enabled"]``
  when ``MISP.background_jobs`` is false), ``POST /servers/restartWorkers``,
  ``restartDeadWorkers``, ``startWorker/<queue>``, ``stopWorker/<pid>``, ``killAllWorkers``
- ``GET /users/heartbeat`` (no key needed; the body is this double's choice; faults apply)

Every other path needs the API key in the ``Authorization`` header (else 403 with MISP's error
body). ``delay`` (seconds before each answer) and ``fault`` (``"500"``: MISP's internal error;
``"html"``: an HTML page with status 200) make it misbehave on purpose; ``cli_only`` names further
settings whose edits answer 405, as a MISP release that marks more settings CLI-only would.

In pytest::

    with MispApiDouble(settings={"MISP.live": False}, api_key="k") as misp:
        misp.url, misp.requests, misp.settings

As a process (molecule scenarios): ``python -m tests.doubles.misp_api --help``.
"""

from __future__ import annotations

import copy
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .catalogue import definitions
from .checks import cast, php_string, run_test

REDACTED = "*****"
AUTH_FAILED = (
    "Authentication failed. Please make sure you pass the API key of an API enabled user along in the "
    "Authorization header."
)
INVALID_INPUT = 'Invalid input. Expected: {"value": "new_setting"}'
NOT_WRITEABLE = "app/Config.config.php is not writeable to the apache user."
WORKERS_DISABLED = ["Background jobs not enabled"]
QUEUES = ("cache", "default", "email", "prio", "update")


def default_workers() -> dict:
    """A healthy getWorkers answer: one live worker per queue."""
    document = {
        queue: {
            "ok": True,
            "workers": [{"pid": 100 + i, "user": "www-data", "alive": True, "correct_user": True, "ok": True}],
            "jobCount": 0,
        }
        for i, queue in enumerate(QUEUES)
    }
    document.update({"proc_accessible": True, "controls": 1, "supervisord_status": True})
    return document


class _Answer(Exception):
    """Stops request handling with this status and JSON body."""

    def __init__(self, status: int, body):
        super().__init__(status)
        self.status = status
        self.body = body


def _error(status: int, message: str, path: str) -> _Answer:
    # Cake exceptions rendered for an API client.
    return _Answer(status, {"name": message, "message": message, "url": path})


def _save_fail(action: str, reason: str) -> _Answer:
    name = f"Could not {action} Server"
    return _Answer(403, {"saved": False, "name": name, "message": name, "url": f"/servers/{action}", "errors": reason})


def _saved(action: str, message: str) -> dict:
    return {"saved": True, "success": True, "name": message, "message": message, "url": f"/servers/{action}"}


class MispApiDouble:
    """The MISP API stand-in; a context manager that serves on 127.0.0.1 in a thread."""

    def __init__(
        self,
        settings: dict | None = None,
        api_key: str = "stand-in-api-key-0123456789abcdef0123",
        *,
        port: int = 0,
        workers: dict | list | None = None,
        tls: bool = False,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        state_file: str | os.PathLike | None = None,
        config_writeable: bool = True,
        delay: float = 0.0,
        fault: str | None = None,
        cli_only: Iterable[str] = (),
    ):
        self.api_key = api_key
        self._lock = threading.Lock()
        self.definitions = definitions()
        for name in cli_only:
            self.definitions[name]["cli_only"] = True
        self._values = {name: d["value"] for name, d in self.definitions.items()}
        self.state_file = Path(state_file) if state_file else None
        if self.state_file and self.state_file.exists():
            self.set_values(json.loads(self.state_file.read_text()))
        self.set_values(settings or {})
        self._save_state()
        self.workers = workers if workers is not None else default_workers()
        self.config_writeable = config_writeable
        self.delay = delay
        self.fault = fault
        self.requests: list[tuple[str, str, object]] = []
        self._tmp = None
        self.ca_cert = None
        self._ssl = None
        if tls or tls_cert:
            if not tls_cert:
                self._tmp = tempfile.TemporaryDirectory(prefix="misp-double-tls-")
                tls_cert, tls_key = _self_signed(Path(self._tmp.name))
            self.ca_cert = str(tls_cert)
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(tls_cert, tls_key)
        self._server = _Server(("127.0.0.1", port), _handler_for(self), self._ssl)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"
        self._thread = None

    def set_values(self, values: dict) -> None:
        """Set values as given, the way ``cake Admin setSetting`` or a config.php edit would."""
        unknown = sorted(set(values) - set(self.definitions))
        if unknown:
            raise ValueError(f"not settings of the MISP stand-in: {', '.join(unknown)}")
        with self._lock:
            self._values.update(values)

    # life cycle
    def start(self) -> MispApiDouble:
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="misp-api-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._tmp:
            self._tmp.cleanup()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> MispApiDouble:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # inspection
    @property
    def settings(self) -> dict:
        """Current value of every setting, redacted ones included (a copy)."""
        with self._lock:
            return copy.deepcopy(self._values)

    def posts(self) -> list[tuple[str, str, object]]:
        return [r for r in self.requests if r[0] == "POST"]

    # request handling
    def handle(self, method: str, path: str, headers, body):
        """The status and JSON body (or text) for one request."""
        self.requests.append((method, path, body))
        if self.delay:
            time.sleep(self.delay)
        if self.fault == "500":
            raise _error(500, "An Internal Error Has Occurred.", path)
        if self.fault == "html":
            return 200, "<!DOCTYPE html><html><head><title>Users - MISP</title></head><body>Login</body></html>"
        if path == "/users/heartbeat":
            return 200, {"message": "OK"}
        if headers.get("Authorization") != self.api_key:
            raise _error(403, AUTH_FAILED, path)
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 2 or parts[0] != "servers":
            raise _error(404, "Not Found", path)
        action, args = parts[1], parts[2:]
        route = _ROUTES.get((method, action))
        if route is None:
            known = any(key[1] == action for key in _ROUTES)
            raise _error(405 if known else 404, "Method Not Allowed" if known else "Not Found", path)
        return route(self, path, args, body)

    def _definition(self, name: str, path: str) -> dict:
        if name not in self.definitions:
            raise _error(404, f"Setting {name} is invalid.", path)
        return self.definitions[name]

    def _get_setting(self, path, args, _body):
        name = args[0] if args else ""
        definition = self._definition(name, path)
        if definition.get("redacted"):
            raise _error(403, "This setting is redacted.", path)
        with self._lock:
            return 200, dict(definition, value=self._values[name])

    def _server_settings(self, _path, _args, _body):
        final = []
        with self._lock:
            for name, definition in self.definitions.items():
                value = self._values[name]
                verdict = run_test(definition, value) if value not in (None, "") else True
                entry = dict(definition, setting=name, tab=name.split(".")[0], value=value, error=verdict is not True)
                if verdict is not True:
                    entry["errorMessage"] = verdict
                if definition.get("redacted"):
                    entry["value"] = REDACTED
                final.append(entry)
        errors = sum(1 for e in final if e["error"])
        return 200, {
            "finalSettings": final,
            "diagnostic_errors": errors,
            "tabs": {t: {"count": 0, "errors": 0, "severity": 5} for t in sorted({e["tab"] for e in final})},
            "writeableErrors": {},
            "readableErrors": {},
            "workerIssueCount": 0,
        }

    def _settings_edit(self, path, args, body):
        name = args[0] if args else ""
        definition = self._definition(name, path)
        if definition.get("cli_only"):
            raise _error(405, "This setting can only be edited via the CLI.", path)
        data = body if isinstance(body, dict) else {}
        data = data.get("Server", data)
        value = data.get("value") if isinstance(data, dict) else None
        if value is None or isinstance(value, (dict, list)):
            raise _save_fail("serverSettingsEdit", INVALID_INPUT)
        force = bool(data.get("force"))
        if php_string(value) == REDACTED:
            raise _save_fail("serverSettingsEdit", "No change.")
        with self._lock:
            if not self._values.get("MISP.system_setting_db") and not self.config_writeable:
                raise _save_fail("serverSettingsEdit", NOT_WRITEABLE)
            stored = cast(definition, value)
            verdict = run_test(definition, stored)
            if verdict is not True and not force:
                raise _save_fail("serverSettingsEdit", verdict)
            self._values[name] = stored
            self._save_state()
        return 200, _saved("serverSettingsEdit", "Field updated")

    def _save_state(self) -> None:
        if self.state_file:
            self.state_file.write_text(json.dumps(self._values, indent=1, sort_keys=True))

    def _get_workers(self, _path, _args, _body):
        with self._lock:
            enabled = self._values.get("MISP.background_jobs")
        return 200, copy.deepcopy(self.workers) if enabled else list(WORKERS_DISABLED)

    def _start_worker(self, path, args, _body):
        if not args or args[0] not in (*QUEUES, "scheduler"):
            raise _error(405, "Invalid worker.", path)
        return 200, _saved("startWorker", "Worker start signal sent")


def _worker_action(message: str):
    def action(_double, path, _args, _body):
        return 200, _saved(path.strip("/").split("/")[1], message)

    return action


_ROUTES = {
    ("GET", "getSetting"): MispApiDouble._get_setting,
    ("GET", "serverSettings"): MispApiDouble._server_settings,
    ("POST", "serverSettingsEdit"): MispApiDouble._settings_edit,
    ("GET", "getWorkers"): MispApiDouble._get_workers,
    ("POST", "restartWorkers"): _worker_action("Restarting workers."),
    ("POST", "restartDeadWorkers"): _worker_action("Restarting workers."),
    ("POST", "startWorker"): MispApiDouble._start_worker,
    ("POST", "stopWorker"): _worker_action("Worker stop signal sent"),
    ("POST", "killAllWorkers"): _worker_action("Killing workers."),
}


def _self_signed(directory: Path) -> tuple[str, str]:
    cert, key = directory / "misp.crt", directory / "misp.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A delayed answer must not hold up stop().
    block_on_close = False

    def __init__(self, address, handler, ssl_context):
        self.ssl_context = ssl_context
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the request thread, so a client that rejects the
        # certificate cannot stall the accept loop.
        if self.ssl_context:
            request = self.ssl_context.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        """Clients that hang up (timeouts, rejected certificates) are expected here."""


def _handler_for(double: MispApiDouble):
    class Handler(BaseHTTPRequestHandler):
        server_version = "MISP-stand-in"

        def log_message(self, format, *args):
            """Quiet: the request log is ``double.requests``."""

        def _dispatch(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", errors="replace")
            path = urlsplit(self.path).path
            try:
                status, answer = double.handle(method, path, self.headers, body)
            except _Answer as exc:
                status, answer = exc.status, exc.body
            if isinstance(answer, str):
                payload, ctype = answer.encode(), "text/html; charset=UTF-8"
            else:
                payload, ctype = json.dumps(answer).encode(), "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                # The client gave up (its timeout); nothing left to tell it.
                pass

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

    return Handler
