"""Real supervisord (PyPI supervisor) running MISP's ``misp-workers`` group.

The configuration follows MISP's background-jobs guide and misp-docker's 50-workers.conf: a
``[group:misp-workers]`` of one program per queue, processes named
``%(program_name)s_%(process_num)02d`` (``default_00``, ``email_00``, ...), XML-RPC on an
``[inet_http_server]`` with basic auth. Here it listens on 127.0.0.1 with a generated user and
password, and each program runs the stand-in worker ``tests/doubles/misp_worker.py`` instead of
``cake start_worker <queue>``.

``autorestart`` is off by default so that a killed worker stays EXITED until someone starts it;
queues listed in ``crash`` run a worker that exits at once and ends FATAL.

    python -m tests.rig.peers.supervisord start|stop|env --state-dir DIR
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.rig.peers._base import REPO, VENV_BIN, Peer, PeerError, cli, new_secret

GROUP = "misp-workers"
QUEUES = ("default", "email", "cache", "prio", "update")
WORKER = REPO / "tests" / "doubles" / "misp_worker.py"
# Settled states: a started rig has every process in one of these.
_SETTLED = {"RUNNING", "FATAL"}


class Supervisord(Peer):
    name = "supervisord"
    start_timeout = 30.0

    def __init__(
        self,
        state_dir=None,
        numprocs: Mapping[str, int] | None = None,
        crash: Iterable[str] = (),
        autorestart: bool = False,
    ) -> None:
        super().__init__(state_dir)
        self.numprocs = {queue: 1 for queue in QUEUES}
        self.numprocs.update(numprocs or {})
        self.crash = set(crash)
        self.autorestart = autorestart
        self.user = f"u{new_secret(6)}"
        self.password = new_secret()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/RPC2"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "supervisord.conf"

    def _program(self, queue: str, numprocs: int) -> str:
        crash = queue in self.crash
        command = f"{sys.executable} {WORKER} {queue}" + (" --crash" if crash else "")
        # A crashing worker must die within startsecs to count as a failed start even when a
        # loaded machine slows Python's start-up; one retry then takes it to FATAL.
        return f"""
[program:{queue}]
command={command}
process_name=%(program_name)s_%(process_num)02d
numprocs={numprocs}
autostart=true
autorestart={str(self.autorestart).lower()}
startsecs={30 if crash else 1}
startretries=1
stopwaitsecs=5
redirect_stderr=true
stdout_logfile={self.state_dir}/workers.log
"""

    def prepare(self) -> None:
        programs = "".join(self._program(queue, count) for queue, count in self.numprocs.items())
        self.config_path.write_text(
            f"""[supervisord]
nodaemon=true
logfile={self.state_dir}/supervisord-main.log
pidfile={self.state_dir}/supervisord.pid
childlogdir={self.state_dir}

[inet_http_server]
port=127.0.0.1:{self.port}
username={self.user}
password={self.password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[group:{GROUP}]
programs={",".join(self.numprocs)}
{programs}"""
        )
        self.config_path.chmod(0o600)
        self.env = {
            "url": self.url,
            "user": self.user,
            "password": self.password,
            "group": GROUP,
            "state_dir": str(self.state_dir),
        }

    def command(self) -> list[str]:
        return [str(VENV_BIN / "supervisord"), "-c", str(self.config_path)]

    def rpc(self) -> xmlrpc.client.ServerProxy:
        """A plain client for the tests' own checks (the module under test has its own)."""
        env = self.env
        env_file = self.state_dir / "env.json"
        if not env and env_file.exists():
            # ``stop`` from the shell runs in a new launcher that did not start the server.
            env = json.loads(env_file.read_text())
        host = env["url"].split("//", 1)[1]
        return xmlrpc.client.ServerProxy(f"http://{env['user']}:{env['password']}@{host}")

    def processes(self) -> dict[str, dict]:
        """``{"default_00": info, ...}`` for the group, as supervisord reports it."""
        infos = self.rpc().supervisor.getAllProcessInfo()
        return {info["name"]: info for info in infos if info["group"] == GROUP}

    def wait_settled(self, timeout: float = 20.0) -> dict[str, dict]:
        """Wait until every worker is RUNNING, or FATAL for the queues meant to crash."""
        deadline = time.monotonic() + timeout
        while True:
            procs = self.processes()
            if all(p["statename"] in _SETTLED for p in procs.values()):
                return procs
            if time.monotonic() > deadline:
                states = {n: p["statename"] for n, p in procs.items()}
                raise PeerError(f"workers did not settle within {timeout}s: {states}")
            time.sleep(0.2)

    def ready(self) -> None:
        super().ready()
        self.wait_settled(self.start_timeout)

    def stop(self) -> None:
        # Workers sit in their own process groups (supervisord calls setpgrp for each), so a
        # supervisord killed before it stopped them would orphan them: remember their pids.
        try:
            pids = [p["pid"] for p in self.processes().values() if p["pid"]]
        except (KeyError, OSError, xmlrpc.client.Error):
            pids = []
        if self.proc is not None:
            # Started by this launcher: reap it here, or stop_pidfile would see the zombie as
            # alive and wait out its whole grace period.
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        super().stop()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    cli(Supervisord)
