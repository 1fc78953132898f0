"""Runs the MISP API stand-in as a process, for molecule scenarios and benchmarks.

    python -m tests.doubles.misp_api --port 8443 --api-key-file key.txt \
        [--state state.json] [--tls-cert c.pem --tls-key k.pem] [--settings initial.json]

Prints ``listening on <url>`` once it accepts connections; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from . import MispApiDouble


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.doubles.misp_api", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--api-key-file", type=Path, required=True, help="file holding the site admin API key")
    parser.add_argument("--state", type=Path, help="JSON file the setting values are kept in across restarts")
    parser.add_argument("--settings", type=Path, help="JSON object of initial setting values")
    parser.add_argument("--workers", type=Path, help="JSON document GET /servers/getWorkers answers")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", help="private key of --tls-cert")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--fault", choices=("500", "html"), help="answer every request with this fault")
    parser.add_argument("--config-not-writeable", action="store_true", help="config.php is read-only")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    misp = MispApiDouble(
        settings=json.loads(args.settings.read_text()) if args.settings else None,
        api_key=args.api_key_file.read_text().strip(),
        port=args.port,
        workers=json.loads(args.workers.read_text()) if args.workers else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        state_file=args.state,
        config_writeable=not args.config_not_writeable,
        delay=args.delay,
        fault=args.fault,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with misp:
        print(f"listening on {misp.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
