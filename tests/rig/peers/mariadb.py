"""Debian's mariadbd in a private data directory, on loopback and its own socket.

Every start initialises a fresh data directory whose ``root`` (at ``localhost`` for the socket,
``127.0.0.1`` for TCP) has a generated password.

    python -m tests.rig.peers.mariadb start|stop|env --state-dir DIR
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from tests.rig.peers._base import Peer, PeerError, cli, new_secret


class MariaDB(Peer):
    name = "mariadb"
    start_timeout = 60.0

    @property
    def datadir(self) -> Path:
        return self.state_dir / "data"

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "mariadb.sock"

    @property
    def init_file(self) -> Path:
        return self.state_dir / "init.sql"

    @property
    def user(self) -> str:
        # mariadbd refuses to run as root unless told so explicitly.
        return pwd.getpwuid(os.geteuid()).pw_name

    def prepare(self) -> None:
        for tool in ("mariadb-install-db", "mariadbd"):
            if shutil.which(tool) is None:
                raise PeerError(f"{tool} not found: apt-get install mariadb-server (scripts/bootstrap.sh --test)")
        shutil.rmtree(self.datadir, ignore_errors=True)
        install = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--user={self.user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode != 0:
            raise PeerError(f"mariadb-install-db failed ({install.returncode}):\n{install.stdout}{install.stderr}")
        password = new_secret()
        # The server runs it before it serves its first connection, so root never has an empty password.
        # root@::1 and root@<hostname> cannot reach a server bound to 127.0.0.1 with
        # skip-name-resolve; dropping them leaves exactly the two accounts the env describes.
        self.init_file.write_text(
            f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{password}';\n"
            f"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
            f"DROP USER IF EXISTS 'root'@'::1', 'root'@'{socket.gethostname()}';\n"
        )
        self.env = {
            "MARIADB_HOST": "127.0.0.1",
            "MARIADB_PORT": self.port,
            "MARIADB_USER": "root",
            "MARIADB_PASSWORD": password,
            "MARIADB_SOCKET": str(self.socket_path),
        }

    def command(self) -> list[str]:
        return [
            "mariadbd",
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.state_dir / 'mariadbd.pid'}",
            f"--tmpdir={self.state_dir}",
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--skip-name-resolve",
            f"--user={self.user}",
            f"--init-file={self.init_file}",
            "--skip-log-bin",
            # Small enough for a shared two-core test machine.
            "--innodb-buffer-pool-size=32M",
            "--max-connections=50",
        ]


if __name__ == "__main__":
    cli(MariaDB)
