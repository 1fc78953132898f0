"""Records when the scenario's nodes are cordoned and uncordoned, for the upgrade check.

    node_watch.py <kubeconfig> <output> <stop file>

Polls the rig's Kubernetes API every 0.2 s and appends one JSON line
``{"time", "node", "unschedulable"}`` to <output> for every Node labelled
``cti.misp/molecule=rke2_ha`` when first seen and whenever its ``spec.unschedulable`` changes.
Stops when <stop file> exists, or after an hour so a broken run cannot leave it behind.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

from kubernetes import client, config

SELECTOR = "cti.misp/molecule=rke2_ha"
MAX_SECONDS = 3600


def main(kubeconfig: str, output: str, stop: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    seen: dict[str, bool] = {}
    deadline = time.monotonic() + MAX_SECONDS
    with Path(output).open("a") as out:
        while not Path(stop).exists() and time.monotonic() < deadline:
            for node in api.list_node(label_selector=SELECTOR).items:
                name, cordoned = node.metadata.name, bool(node.spec.unschedulable)
                if seen.get(name) != cordoned:
                    seen[name] = cordoned
                    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
                    out.write(json.dumps({"time": now, "node": name, "unschedulable": cordoned}) + "\n")
                    out.flush()
            time.sleep(0.2)


if __name__ == "__main__":
    main(*sys.argv[1:])
