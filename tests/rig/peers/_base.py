"""Process handling shared by every peer launcher."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.rig import RIG_CACHE

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = REPO / ".venv" / "bin"


class PeerError(RuntimeError):
    """A peer could not be started or did not become ready."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_secret(nbytes: int = 18) -> str:
    return secrets.token_urlsafe(nbytes)


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise PeerError(f"port {port} did not open within {timeout}s")


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bytes:
    """Poll a loopback ``url`` until it answers 200; returns the body."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - the callers' loopback URLs
                return resp.read()
        except OSError as exc:  # refused, reset, or an HTTP error status while the server starts
            last = str(exc)
        time.sleep(0.5)
    raise PeerError(f"{url} did not answer 200 within {timeout}s (last: {last})")


class Peer:
    """A real server process started in its own session, with a state directory.

    Subclasses set ``name`` and implement ``command()`` (and optionally ``prepare()`` and
    ``ready()``); ``env`` is what clients need (address, credentials) and is written to
    ``<state_dir>/env.json`` so a shell caller can read it.
    """

    name = "peer"
    start_timeout = 60.0

    def __init__(self, state_dir: str | os.PathLike | None = None) -> None:
        self.state_dir = Path(state_dir or RIG_CACHE / "state" / self.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Its configuration, logs and env.json hold the generated credentials.
        self.state_dir.chmod(0o700)
        self.port = free_port()
        self.env: dict[str, str | int] = {}
        self.proc: subprocess.Popen | None = None

    # hooks
    def prepare(self) -> None:
        """Write configuration, initialise data; runs before the process starts."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def process_env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> None:
        """Block until the server answers; default: its port accepts connections."""
        wait_for_port(self.port, self.start_timeout, self.proc)

    # lifecycle
    @property
    def log_path(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def start(self) -> dict:
        self.prepare()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.process_env(),
            cwd=self.state_dir,
            start_new_session=True,
        )
        (self.state_dir / "pid").write_text(f"{self.proc.pid} {start_time(self.proc.pid)}")
        try:
            self.ready()
        except Exception as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise PeerError(f"{self.name} did not start: {exc}\n--- log tail ---\n{tail}") from exc
        (self.state_dir / "env.json").write_text(json.dumps(self.env, indent=2))
        return self.env

    def stop(self) -> None:
        stop_pidfile(self.state_dir / "pid")
        # `env` must not hand out the address and credentials of a server that is gone.
        (self.state_dir / "env.json").unlink(missing_ok=True)
        self.proc = None

    def __enter__(self) -> dict:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot: /proc/PID/stat's field 22), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces; the fields after it start at field 3.
    return stat.rsplit(")", 1)[1].split()[19]


def stop_pidfile(pidfile: Path, grace: float = 15.0) -> None:
    """Terminate the process group recorded in ``pidfile``, then kill it after ``grace``."""
    if not pidfile.exists():
        return
    recorded = pidfile.read_text().split()
    pid = int(recorded[0])
    now = start_time(pid)
    if now is not None and recorded[1:] != [now]:
        # A killed run's (or an earlier boot's) pid file: the pid is another process's now.
        pidfile.unlink(missing_ok=True)
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            # The leader, when it is this process's child, stays a zombie (and so keeps its group
            # alive to killpg) until it is reaped.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            continue
        break
    pidfile.unlink(missing_ok=True)


def cli(peer_cls: type[Peer]) -> None:
    """``python -m tests.rig.peers.<name> start|stop|env --state-dir DIR``."""
    parser = argparse.ArgumentParser(prog=f"peers.{peer_cls.name}")
    parser.add_argument("action", choices=["start", "stop", "env"])
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args()
    peer = peer_cls(args.state_dir)
    if args.action == "start":
        print(json.dumps(peer.start()))
        # The server keeps running in its own session after this launcher exits.
        peer.proc = None
    elif args.action == "stop":
        peer.stop()
    else:
        env_file = peer.state_dir / "env.json"
        if not env_file.exists():
            sys.exit(f"{peer_cls.name} is not running (no {env_file})")
        print(env_file.read_text())
