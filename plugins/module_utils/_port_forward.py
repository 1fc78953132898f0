# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reach a pod's port from the controller through the Kubernetes API server (internal).

The NetworkPolicies admit MISP's frontends and supervisord only from their peers inside the
cluster, so a controller outside it (a laptop, an AWX execution environment, a Job) cannot use
their in-cluster addresses. A port-forward goes from the controller to the API server (its TLS
and authentication), then to the kubelet, which connects to the port inside the pod's network
namespace: it needs RBAC (get and create on pods/portforward in that namespace) and no hole in
the policies. The modules keep their HTTP clients: a listener on 127.0.0.1 carries each connection
they open through a port-forward stream of its own.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

# Keep in sync with plugins/doc_fragments/port_forward.py. The Kubernetes options carry
# kubernetes.core's names and meaning; unset ones come from its K8S_AUTH_* variables.
PORT_FORWARD_OPTIONS = {
    "namespace": {"type": "str", "required": True},
    "service": {"type": "str"},
    "pod": {"type": "str"},
    "port": {"type": "raw"},
    "kubeconfig": {"type": "raw", "no_log": True},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool"},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path"},
}
PORT_FORWARD_SPEC = {
    "type": "dict",
    "options": PORT_FORWARD_OPTIONS,
    "mutually_exclusive": [["service", "pod"]],
    "required_one_of": [["service", "pod"]],
}
_AUTH_KEYS = ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key")
# Bytes read at once from either side of a forwarded connection.
_CHUNK = 65536
# Seconds a failed request waits for the kubelet's reason.
_ERROR_WAIT = 2


class PortForwardError(Exception):
    """The port-forward could not be set up; the message names the object and what is wrong."""


def url_port(url):
    """The port ``url`` names, or its scheme's default."""
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def local_url(url, port):
    """``url`` with its host and port replaced by 127.0.0.1:``port``; scheme, path and query kept."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"127.0.0.1:{port}", parts.path, parts.query, parts.fragment))


def _handshake_status(reason):
    match = re.search(r"Handshake status (\d+)", str(reason))
    return int(match.group(1)) if match else None


def _ready(pod):
    status = pod.status
    if status is None or status.phase != "Running" or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


def _container_port(pod, target, what):
    """The number of container port ``target`` (a number or a port name) of ``pod``."""
    if isinstance(target, int):
        return target
    if str(target).isdigit():
        return int(target)
    for container in pod.spec.containers:
        for port in container.ports or []:
            if port.name == target:
                return port.container_port
    raise PortForwardError(f"{what}: pod {pod.metadata.name} has no container port named '{target}'")


def service_target(service, pods, port):
    """(pod name, container port) a Service forwards ``port`` (its port number or name) to.

    Like ``kubectl port-forward svc/NAME``: the Service port, then its targetPort in the first
    Ready pod of the selector (by name, so that repeated runs pick the same pod).
    """
    name = f"{service.metadata.namespace}/{service.metadata.name}"
    if not service.spec.selector:
        raise PortForwardError(f"Service {name} has no selector, so it names no pod to forward to")
    ports = service.spec.ports or []
    match = [p for p in ports if str(port) in (str(p.port), p.name or "")]
    if not match:
        known = ", ".join(f"{p.port}" + (f"/{p.name}" if p.name else "") for p in ports) or "none"
        raise PortForwardError(f"Service {name} has no port {port!r} (its ports: {known})")
    ready = sorted((p for p in pods if _ready(p)), key=lambda p: p.metadata.name)
    if not ready:
        selector = ",".join(f"{k}={v}" for k, v in sorted(service.spec.selector.items()))
        raise PortForwardError(f"Service {name} has no Ready pod (selector {selector}) to forward to")
    target = match[0].target_port if match[0].target_port is not None else match[0].port
    return ready[0].metadata.name, _container_port(ready[0], target, f"Service {name} port {port}")


def _pump(client, remote):
    """Copy bytes both ways until either side closes."""
    sockets = [client, remote]
    try:
        while True:
            readable = select.select(sockets, [], [])[0]
            for source in readable:
                data = source.recv(_CHUNK)
                if not data:
                    return
                (remote if source is client else client).sendall(data)
    except OSError:
        # A reset from either side ends the connection; the client sees it closed.
        return
    finally:
        client.close()


class Direct:
    """No port-forward: URLs and messages stay as they are."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    @staticmethod
    def url(url):
        return url

    @staticmethod
    def explain(message):
        return message


def reach(params, url_option):
    """How a module reaches the URL of its option ``url_option``: a PortForward when
    ``params["port_forward"]`` is set (to the URL's port unless it names one), else Direct.

    Nothing is opened before the returned object is entered.
    """
    options = params.get("port_forward")
    if not options:
        return Direct()
    try:
        default_port = url_port(params.get(url_option) or "")
    except ValueError:
        # The module's own check of the URL names the problem before this is entered.
        default_port = None
    return PortForward(options, default_port)


class PortForward:
    """A listener on 127.0.0.1 whose connections reach ``port`` of a pod through the API server.

    ``params`` holds the keys of PORT_FORWARD_OPTIONS (a module's ``port_forward`` option);
    ``default_port`` is used when it names no port. Use as a context manager; ``url(u)`` gives
    the local URL for ``u``.
    """

    def __init__(self, params, default_port):
        self.params = params
        self.namespace = params["namespace"]
        self.port_option = params.get("port") if params.get("port") not in (None, "") else default_port
        self.pod = None
        self.container_port = None
        self.errors = []
        self._listener = None
        self._core = None
        self._threads = []
        self._netloc = None
        self.local_port = None

    def _client(self):
        # Imported here: kubernetes.core's client needs the kubernetes package, which only
        # the port-forward path requires.
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
        from kubernetes.client import CoreV1Api

        auth = {key: self.params.get(key) for key in _AUTH_KEYS if self.params.get(key) is not None}
        return CoreV1Api(get_api_client(**auth).client.client)

    def _resolve(self):
        from kubernetes.client.exceptions import ApiException

        namespace = self.namespace
        try:
            if self.params.get("pod"):
                pod = self._core.read_namespaced_pod(self.params["pod"], namespace)
                if not _ready(pod):
                    raise PortForwardError(f"Pod {namespace}/{pod.metadata.name} is not Ready")
                return pod.metadata.name, _container_port(pod, self.port_option, f"Pod {namespace}/{pod.metadata.name}")
            service = self._core.read_namespaced_service(self.params["service"], namespace)
            selector = ",".join(f"{k}={v}" for k, v in sorted((service.spec.selector or {}).items()))
            pods = self._core.list_namespaced_pod(namespace, label_selector=selector).items if selector else []
            return service_target(service, pods, self.port_option)
        except ApiException as exc:
            kind, name = ("Pod", self.params["pod"]) if self.params.get("pod") else ("Service", self.params["service"])
            if exc.status == 404:
                raise PortForwardError(f"{kind} {namespace}/{name} not found") from None
            if exc.status in (401, 403):
                raise PortForwardError(
                    f"The Kubernetes API refused to read {kind} {namespace}/{name} (HTTP {exc.status}): "
                    f"the port-forward needs get on pods and services and get and create on pods/portforward "
                    f"in namespace {namespace}"
                ) from None
            raise PortForwardError(f"Cannot read {kind} {namespace}/{name}: HTTP {exc.status} {exc.reason}") from None

    def __enter__(self):
        port = self.port_option
        number = isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536
        if not (number or (isinstance(port, str) and port)):
            raise PortForwardError(f"port_forward.port must be a port number or name, got {port!r}")
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

        try:
            self._core = self._client()
        except CoreException as exc:
            raise PortForwardError(f"port_forward: {exc}") from None
        self.pod, self.container_port = self._resolve()
        # The first stream is opened here, so that a refusal (RBAC, a dead pod) fails the task
        # with the API server's reason instead of a reset connection later.
        self._open().close()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port = self._listener.getsockname()[1]
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info):
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def url(self, url):
        self._netloc = urlsplit(url).netloc
        return local_url(url, self.local_port)

    def describe(self):
        return f"port-forward to pod {self.namespace}/{self.pod} port {self.container_port}"

    def _open(self):
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import portforward

        try:
            forward = portforward(
                self._core.connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.container_port),
            )
        except ApiException as exc:
            # A refused websocket handshake comes as status 0, its HTTP status in the reason.
            status = exc.status or _handshake_status(exc.reason)
            if status in (401, 403):
                raise PortForwardError(
                    f"The Kubernetes API refused the {self.describe()} (HTTP {status}): "
                    f"it needs get and create on pods/portforward in namespace {self.namespace}"
                ) from None
            raise PortForwardError(f"The {self.describe()} failed: {exc.reason}") from None
        except Exception as exc:  # websocket and socket errors have no common base
            raise PortForwardError(f"The {self.describe()} failed: {exc}") from None
        return forward

    def _accept(self):
        listener = self._listener
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            try:
                forward = self._open()
            except PortForwardError as exc:
                self.errors.append(str(exc))
                client.close()
                continue
            thread = threading.Thread(target=self._carry, args=(client, forward), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _carry(self, client, forward):
        try:
            _pump(client, forward.socket(self.container_port))
        finally:
            error = forward.error(self.container_port)
            if error:
                self.errors.append(f"{self.describe()}: {error.strip()}")
            forward.close()

    def explain(self, message):
        """``message`` of a failed request, with what the kubelet said about the port-forward."""
        # The kubelet's reason comes on the error channel just after the stream closes.
        deadline = time.monotonic() + _ERROR_WAIT
        for thread in self._threads[1:]:
            thread.join(max(0, deadline - time.monotonic()))
        if self._netloc:
            # The client named the local listener; the user knows the URL they gave.
            message = message.replace(f"127.0.0.1:{self.local_port}", self._netloc)
        if not self.errors:
            return f"{message} (through the {self.describe()})"
        return f"{message} (through the {self.describe()}: {'; '.join(dict.fromkeys(self.errors))})"
