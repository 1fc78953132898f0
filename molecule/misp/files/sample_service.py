"""Samples Service misp-frontend while verify.yml runs the blue/green upgrade and rollback.

Every ~0.2 s: the Service's selector, the pods it selects and its EndpointSlices. A violation is
a selected, non-terminating pod that is not Ready, an endpoint marked ready whose pod is not
Ready, or a moment with no Ready pod selected at all. Runs until the stop file appears, then
writes {samples, colors (the colours in the order seen), violations} as JSON.

    python sample_service.py KUBECONFIG NAMESPACE OUTPUT STOPFILE
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kubernetes import client, config

COLOR = "misp-platform.cti/color"


def ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def sample(core, discovery, namespace: str) -> tuple[str, list[str]]:
    selector = core.read_namespaced_service("misp-frontend", namespace).spec.selector or {}
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}
    selected = [p for p in pods.values() if selector.items() <= (p.metadata.labels or {}).items()]
    problems = [
        f"selected pod {p.metadata.name} not Ready"
        for p in selected
        if not p.metadata.deletion_timestamp and not ready(p)
    ]
    if not any(ready(p) for p in selected):
        problems.append(f"no Ready pod selected by {selector}")
    slices = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector="kubernetes.io/service-name=misp-frontend"
    ).items
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or []:
            name = endpoint.target_ref.name if endpoint.target_ref else None
            if endpoint.conditions and endpoint.conditions.ready and name in pods and not ready(pods[name]):
                problems.append(f"endpoint {name} marked ready, pod not Ready")
    return selector.get(COLOR, ""), problems


def main(kubeconfig: str, namespace: str, output: str, stop: str) -> int:
    config.load_kube_config(kubeconfig)
    core, discovery = client.CoreV1Api(), client.DiscoveryV1Api()
    samples, colors, violations = 0, [], []
    while not Path(stop).exists():
        color, problems = sample(core, discovery, namespace)
        samples += 1
        if not colors or colors[-1] != color:
            colors.append(color)
        violations.extend(f"{time.strftime('%H:%M:%S')} {problem}" for problem in problems)
        time.sleep(0.2)
    Path(output).write_text(json.dumps({"samples": samples, "colors": colors, "violations": violations}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
