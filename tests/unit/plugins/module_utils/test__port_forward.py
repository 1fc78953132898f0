"""Unit tests of the port-forward helper's choices: target pod and port, URLs, messages.

The objects are the kubernetes client's own models; the forward itself runs against a real pod
on the rig's real node in tests/integration/test_port_forward.py.
"""

from __future__ import annotations

import re

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerPort,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
    V1Service,
    V1ServicePort,
    V1ServiceSpec,
)

from ansible_collections.cti.misp_platform.plugins.module_utils._port_forward import (
    Direct,
    PortForward,
    PortForwardError,
    local_url,
    reach,
    service_target,
    url_port,
)


def pod(name, ready=True, phase="Running", ports=(("http", 8080),), deleting=False):
    return V1Pod(
        metadata=V1ObjectMeta(name=name, deletion_timestamp="2026-01-01T00:00:00Z" if deleting else None),
        spec=V1PodSpec(
            containers=[V1Container(name="main", ports=[V1ContainerPort(name=n, container_port=p) for n, p in ports])]
        ),
        status=V1PodStatus(phase=phase, conditions=[V1PodCondition(type="Ready", status=str(ready))]),
    )


def service(ports, selector=None):
    return V1Service(
        metadata=V1ObjectMeta(name="misp-frontend", namespace="misp"),
        spec=V1ServiceSpec(selector={"app": "misp"} if selector is None else selector, ports=ports),
    )


HTTP = V1ServicePort(name="http", port=80, target_port="http")


@pytest.mark.parametrize(
    ("url", "port"),
    [("http://misp.misp.svc", 80), ("https://misp.misp.svc/x", 443), ("http://misp-workers.misp.svc:9001", 9001)],
)
def test_url_port_is_the_urls_or_its_schemes(url, port):
    assert url_port(url) == port


def test_local_url_keeps_scheme_path_and_query():
    assert local_url("https://misp.misp.svc:8443/a/b?c=d", 4711) == "https://127.0.0.1:4711/a/b?c=d"


def test_service_port_by_number_or_name_goes_to_the_named_container_port():
    svc = service([HTTP])
    assert service_target(svc, [pod("b"), pod("a")], 80) == ("a", 8080)
    assert service_target(svc, [pod("b")], "http") == ("b", 8080)


def test_numeric_target_port_and_a_missing_target_port():
    assert service_target(service([V1ServicePort(port=9001, target_port=19001)]), [pod("w")], 9001) == ("w", 19001)
    assert service_target(service([V1ServicePort(port=9001)]), [pod("w")], "9001") == ("w", 9001)


def test_only_ready_running_pods_not_being_deleted_are_chosen():
    pods = [pod("a", ready=False), pod("b", phase="Pending"), pod("c", deleting=True), pod("d")]
    assert service_target(service([HTTP]), pods, 80) == ("d", 8080)


@pytest.mark.parametrize(
    ("svc", "pods", "port", "message"),
    [
        (service([HTTP]), [pod("a")], 443, "Service misp/misp-frontend has no port 443 (its ports: 80/http)"),
        (
            service([HTTP]),
            [pod("a", ready=False)],
            80,
            "Service misp/misp-frontend has no Ready pod (selector app=misp)",
        ),
        (service([HTTP], selector={}), [pod("a")], 80, "Service misp/misp-frontend has no selector"),
        (service([HTTP]), [pod("a", ports=())], 80, "pod a has no container port named 'http'"),
    ],
)
def test_service_problems_are_named(svc, pods, port, message):
    with pytest.raises(PortForwardError, match=re.escape(message)):
        service_target(svc, pods, port)


def test_without_port_forward_nothing_changes():
    route = reach({"url": "http://misp.misp.svc", "port_forward": None}, "url")
    assert isinstance(route, Direct)
    with route:
        assert route.url("http://misp.misp.svc") == "http://misp.misp.svc"
        assert route.explain("boom") == "boom"


def test_the_port_defaults_to_the_urls_and_an_option_wins():
    assert reach({"url": "http://w.misp.svc:9001", "port_forward": {"namespace": "misp"}}, "url").port_option == 9001
    params = {"url": "http://w.misp.svc:9001", "port_forward": {"namespace": "misp", "port": "supervisor"}}
    assert reach(params, "url").port_option == "supervisor"


@pytest.mark.parametrize("port", [0, 70000, True, "", 1.5])
def test_a_bad_port_is_refused_before_anything_is_opened(port):
    forward = PortForward({"namespace": "misp", "service": "s", "port": port}, None)
    forward.port_option = port
    with pytest.raises(PortForwardError, match=r"port_forward\.port must be a port number or name, got"):
        forward.__enter__()


def test_messages_name_the_users_url_and_the_kubelets_reason():
    forward = PortForward({"namespace": "misp", "pod": "w"}, 9001)
    forward.pod, forward.container_port, forward.local_port = "w", 9001, 4711
    assert forward.url("http://misp-workers.misp.svc:9001/RPC2") == "http://127.0.0.1:4711/RPC2"
    forward.errors = ["refused", "refused"]
    assert forward.explain("Cannot reach http://127.0.0.1:4711/RPC2") == (
        "Cannot reach http://misp-workers.misp.svc:9001/RPC2"
        " (through the port-forward to pod misp/w port 9001: refused)"
    )
