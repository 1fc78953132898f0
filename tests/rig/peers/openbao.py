"""OpenBao's in-memory dev server (the Vault API) with a generated root token.

python -m tests.rig.peers.openbao start|stop|env --state-dir DIR
"""

from __future__ import annotations

import os

from tests.rig.peers._base import VENV_BIN, Peer, cli, new_secret, wait_for_http


class OpenBao(Peer):
    name = "openbao"
    start_timeout = 60.0

    def prepare(self) -> None:
        token = new_secret()
        addr = f"http://127.0.0.1:{self.port}"
        self.env = {"VAULT_ADDR": addr, "VAULT_TOKEN": token, "BAO_ADDR": addr, "BAO_TOKEN": token}

    def command(self) -> list[str]:
        # The dev server keeps everything in memory and mounts a KV v2 engine at secret/.
        return [str(VENV_BIN / "bao"), "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.port}"]

    def process_env(self) -> dict[str, str]:
        # The root token goes in through the environment so that it does not show in `ps`.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["BAO_DEV_ROOT_TOKEN_ID"] = str(self.env["VAULT_TOKEN"])
        return env

    def ready(self) -> None:
        # sys/health answers 200 only once the server is initialised, unsealed and active.
        wait_for_http(f"{self.env['VAULT_ADDR']}/v1/sys/health", self.start_timeout, self.proc)


if __name__ == "__main__":
    cli(OpenBao)
