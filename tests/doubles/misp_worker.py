"""Stand-in for MISP's background worker, ``app/Console/cake start_worker <queue>``.

The real worker is a PHP CLI process that blocks on its Redis queue until supervisord stops it
with SIGTERM; it cannot run here (no PHP, no MISP). This program keeps the same shape: it runs
until SIGTERM or SIGINT and then exits 0. ``--crash`` makes it exit 1 at once, the way a worker
dies when MISP cannot reach Redis, so supervisord walks it through BACKOFF to FATAL.

    python -m tests.doubles.misp_worker <queue> [--crash]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

# MISP's BackgroundJobsTool::VALID_QUEUES.
QUEUES = ("default", "email", "cache", "prio", "update", "scheduler")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="misp_worker", description=__doc__.splitlines()[0])
    parser.add_argument("queue", choices=QUEUES)
    parser.add_argument("--crash", action="store_true", help="exit 1 at once (a crashing worker)")
    args = parser.parse_args(argv)
    if args.crash:
        print(f"[{args.queue}] cannot reach Redis, exiting", file=sys.stderr, flush=True)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"[{args.queue}] worker started, waiting for jobs", flush=True)
    stop.wait()
    print(f"[{args.queue}] worker stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
