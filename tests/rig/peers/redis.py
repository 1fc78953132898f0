"""Debian's redis-server on loopback with a generated ``requirepass``.

Nothing is written to disk unless ``persist=True`` (append-only file in the state directory).

    python -m tests.rig.peers.redis start|stop|env --state-dir DIR
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.rig.peers._base import Peer, PeerError, cli, new_secret


class Redis(Peer):
    name = "redis"
    start_timeout = 30.0

    def __init__(self, state_dir: str | os.PathLike | None = None, persist: bool = False) -> None:
        super().__init__(state_dir)
        self.persist = persist

    @property
    def config_path(self) -> Path:
        return self.state_dir / "redis.conf"

    def prepare(self) -> None:
        if shutil.which("redis-server") is None:
            raise PeerError("redis-server not found: apt-get install redis-server (scripts/bootstrap.sh --test)")
        password = new_secret()
        persistence = "appendonly yes\n" if self.persist else 'save ""\nappendonly no\n'
        # A file, not arguments, so that the password does not show in `ps`.
        self.config_path.write_text(
            f"bind 127.0.0.1\nport {self.port}\nprotected-mode yes\nrequirepass {password}\n"
            f'daemonize no\nlogfile ""\ndir {self.state_dir}\n{persistence}'
        )
        self.env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": self.port, "REDIS_PASSWORD": password}

    def command(self) -> list[str]:
        return ["redis-server", str(self.config_path)]


if __name__ == "__main__":
    cli(Redis)
