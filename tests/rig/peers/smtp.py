"""A real SMTP server for the e-mail tests: aiosmtpd (PyPI) on loopback, with SMTP AUTH (LOGIN,
PLAIN) required before MAIL and a certificate of a CA made at start.

Two listeners: a submission port where STARTTLS is required before AUTH, and an SMTPS port
that is TLS from the first byte (implicit TLS). Every accepted message is written as JSON
(listener, login, envelope, data) into ``<state dir>/mail/<listener>/``.

    python -m tests.rig.peers.smtp start|stop|env --state-dir DIR
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import ssl
import sys
import warnings
from pathlib import Path

from tests.rig.peers._base import REPO, VENV_BIN, Peer, cli, free_port, new_secret, wait_for_port
from tests.rig.peers._tls import TestCA, write_private

LISTENERS = ("starttls", "implicit")


class SMTP(Peer):
    name = "smtp"

    def prepare(self) -> None:
        self.smtps_port = free_port()
        ca = TestCA("cti-rig smtp test CA")
        cert, key = ca.issue("smtp.rig.test", ips=("127.0.0.1",), dns=("localhost",))
        (self.state_dir / "ca.crt").write_bytes(ca.cert_pem)
        (self.state_dir / "server.crt").write_bytes(cert)
        write_private(self.state_dir / "server.key", key)
        for listener in LISTENERS:
            (self.state_dir / "mail" / listener).mkdir(parents=True, exist_ok=True)
        self.env = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": self.port,
            "SMTPS_PORT": self.smtps_port,
            "SMTP_USERNAME": f"misp-{new_secret(4)}",
            "SMTP_PASSWORD": new_secret(),
            "SMTP_CA_FILE": str(self.state_dir / "ca.crt"),
            "SMTP_MAIL_DIR": str(self.state_dir / "mail"),
        }
        write_private(self.state_dir / "config.json", json.dumps(self.env).encode())

    def command(self) -> list[str]:
        return [str(VENV_BIN / "python"), "-m", "tests.rig.peers.smtp", "serve", "--state-dir", str(self.state_dir)]

    def process_env(self) -> dict[str, str]:
        # The server runs from its state directory; this module is found from the checkout.
        return {**super().process_env(), "PYTHONPATH": str(REPO)}

    def ready(self) -> None:
        for port in (self.port, self.smtps_port):
            wait_for_port(port, self.start_timeout, self.proc)


def serve(state_dir: Path) -> None:
    """Run both listeners until SIGTERM (the launcher's stop)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    settings = json.loads((state_dir / "config.json").read_text())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(state_dir / "server.crt", state_dir / "server.key")
    counter = itertools.count()

    def authenticate(_server, _session, _envelope, _mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (
            settings["SMTP_USERNAME"],
            settings["SMTP_PASSWORD"],
        )
        # handled=False: aiosmtpd answers 535 itself on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    class Store:
        def __init__(self, listener: str) -> None:
            self.listener = listener

        async def handle_DATA(self, _server, session, envelope):
            message = {
                "listener": self.listener,
                "login": session.auth_data.login.decode(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", errors="replace"),
            }
            path = state_dir / "mail" / self.listener / f"{next(counter):04d}.json"
            path.write_text(json.dumps(message))
            return "250 Message accepted for delivery"

    # aiosmtpd warns about AUTH without its STARTTLS check, which the SMTPS listener does not need.
    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
    common = {"hostname": "127.0.0.1", "authenticator": authenticate, "auth_required": True}
    controllers = [
        # Submission: STARTTLS first, then AUTH (auth_require_tls is aiosmtpd's default).
        Controller(Store("starttls"), port=settings["SMTP_PORT"], tls_context=context, require_starttls=True, **common),
        # SMTPS: the connection is TLS already, which aiosmtpd's STARTTLS check does not see.
        Controller(
            Store("implicit"),
            port=settings["SMTPS_PORT"],
            ssl_context=context,
            auth_require_tls=False,
            **common,
        ),
    ]
    for controller in controllers:
        controller.start()
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.run_until_complete(stop.wait())
    for controller in controllers:
        controller.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(Path(sys.argv[3]))
    else:
        cli(SMTP)
