# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port_forward option; matches PORT_FORWARD_OPTIONS in module_utils/_port_forward.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  port_forward:
    description:
      - Reach the module's in-cluster URL (see the module's notes for which) through a
        port-forward of the Kubernetes API server, as C(kubectl port-forward) does, instead of
        connecting to it directly.
      - The connection goes from the controller to the API server (its TLS and authentication),
        from there to the kubelet, and into the pod's network namespace, where it reaches the port
        on the pod's loopback. NetworkPolicies therefore need no rule for the controller; the
        Kubernetes user needs C(get) and C(list) on C(pods), C(get) on C(services), and C(get)
        and C(create) on C(pods/portforward) (a websocket port-forward is a GET; Kubernetes 1.35
        checks C(create) too) in O(port_forward.namespace).
      - The URL keeps its scheme, path and query; its host and port only choose the target port
        when O(port_forward.port) is unset. Use C(http://) to a pod that serves plain HTTP, as the
        API server's TLS already protects the stream. An C(https://) URL is verified against
        C(127.0.0.1), the local end of the forward.
      - The Kubernetes options below take kubernetes.core's names and meaning; unset ones come
        from the same E(K8S_AUTH_*) environment variables (E(K8S_AUTH_KUBECONFIG),
        E(K8S_AUTH_CONTEXT)...) and then from C(~/.kube/config) or the in-cluster service account.
      - Needs the C(kubernetes) Python package (as kubernetes.core does).
    type: dict
    suboptions:
      namespace:
        description: Namespace of the Service or pod.
        type: str
        required: true
      service:
        description:
          - Service to forward to; the first Ready pod of its selector (by name) receives the
            connections, on the target port of the Service port O(port_forward.port).
          - Exactly one of O(port_forward.service) and O(port_forward.pod).
        type: str
      pod:
        description:
          - Pod to forward to; it must be Ready.
        type: str
      port:
        description:
          - With O(port_forward.service), a port of the Service, by number or name; with
            O(port_forward.pod), a container port, by number or name.
          - Defaults to the port of the module's URL (80 for C(http://), 443 for C(https://)
            without one).
        type: raw
      kubeconfig:
        description:
          - Path to a kubeconfig file, or its content as a dictionary (kubernetes.core's
            O(port_forward.kubeconfig)). Never logged.
        type: raw
      context:
        description: The kubeconfig context to use.
        type: str
      host:
        description: URL of the Kubernetes API server.
        type: str
      api_key:
        description: Bearer token for the Kubernetes API server. Never logged.
        type: str
      validate_certs:
        description: Whether to verify the API server's TLS certificate.
        type: bool
      ca_cert:
        description: PEM file of the CA that signed the API server's certificate.
        type: path
      client_cert:
        description: PEM client certificate for the API server.
        type: path
      client_key:
        description: Key of O(port_forward.client_cert).
        type: path
"""
