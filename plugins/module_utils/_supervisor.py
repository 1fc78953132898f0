# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for supervisord's XML-RPC API (internal to this collection).

MISP drives its background workers the same way (app/Lib/Tools/BackgroundJobsTool.php): HTTP
basic auth against ``http://<supervisor_host>:<port>/RPC2``. Only the standard library is used.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import xmlrpc.client
from urllib.parse import urlsplit, urlunsplit
from xml.parsers.expat import ExpatError

from ansible_collections.cti.misp_platform.plugins.module_utils._connection import (
    describe_connection_error,
    positive_seconds,
)

# Keep in sync with plugins/doc_fragments/supervisor.py.
SUPERVISOR_ARGSPEC = {
    "supervisor_url": {"type": "str", "required": True},
    # Not no_log: a user name is no secret, and Ansible masks a no_log value wherever it appears
    # in any message ("supervisor" would mangle every "supervisord").
    "supervisor_user": {"type": "str"},
    "supervisor_password": {"type": "str", "no_log": True},
    "supervisor_validate_certs": {"type": "bool", "default": True},
    "supervisor_ca_path": {"type": "path"},
    "supervisor_timeout": {"type": "float", "default": 10},
}
SUPERVISOR_REQUIRED_TOGETHER = [["supervisor_user", "supervisor_password"]]

# supervisor.xmlrpc.Faults codes the callers act on.
BAD_NAME = 10
ALREADY_STARTED = 60
NOT_RUNNING = 70
SUCCESS = 80


class SupervisorError(Exception):
    """A call to supervisord failed; ``fault`` is supervisord's fault code when it answered one."""

    def __init__(self, message, fault=None):
        super().__init__(message)
        self.message = message
        self.fault = fault


def rpc_url(url):
    """The XML-RPC endpoint for ``url``: ``/RPC2`` unless the URL names its own path."""
    if not url:
        raise SupervisorError("supervisor_url is required: the URL of supervisord's inet_http_server")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        # Not echoed: the URL carries a secret.
        raise SupervisorError("supervisor_url must not embed credentials; use supervisor_user and supervisor_password")
    try:
        # urlsplit checks the port only when asked for it.
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        valid = False
    if not valid:
        raise SupervisorError(f"Invalid supervisor_url '{url}': expected http(s)://host:port[/RPC2]")
    path = parts.path if parts.path not in ("", "/") else "/RPC2"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class _TimeoutMixin:
    """xmlrpc.client transports have no timeout; a hung supervisord would hang the task."""

    timeout = None

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class _Transport(_TimeoutMixin, xmlrpc.client.Transport):
    pass


class _SafeTransport(_TimeoutMixin, xmlrpc.client.SafeTransport):
    pass


def _ssl_context(validate_certs, ca_path):
    context = ssl.create_default_context(cafile=ca_path)
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Supervisor:
    """Talks to one supervisord.

    ``params`` is a mapping with the keys of SUPERVISOR_ARGSPEC (a module's ``params``, or any
    dict). Credentials go in an ``Authorization`` header built here rather than in the URL,
    because xmlrpc.client quotes the URL's host part, credentials included, in its errors.
    """

    def __init__(self, params):
        self.url = rpc_url(params.get("supervisor_url"))
        try:
            self.timeout = positive_seconds("supervisor_timeout", params.get("supervisor_timeout"), 10)
        except ValueError as exc:
            raise SupervisorError(str(exc)) from None
        user, password = params.get("supervisor_user"), params.get("supervisor_password")
        if (user is None) != (password is None):
            raise SupervisorError("supervisor_user and supervisor_password go together: set both or neither")
        headers = []
        if user is not None:
            token = f"{user}:{password}"
            headers.append(("Authorization", "Basic " + base64.b64encode(token.encode()).decode("ascii")))
        if self.url.startswith("https:"):
            ca_path = params.get("supervisor_ca_path")
            try:
                context = _ssl_context(params.get("supervisor_validate_certs", True), ca_path)
            except (OSError, ssl.SSLError) as exc:
                raise SupervisorError(f"Cannot load supervisor_ca_path '{ca_path}': {exc}") from None
            self._transport = _SafeTransport(headers=headers, context=context)
        else:
            self._transport = _Transport(headers=headers)
        self._transport.timeout = self.timeout

    def call(self, method, *args):
        """Call ``method`` (``supervisor.getState``...) and return its answer, or raise SupervisorError."""
        proxy = xmlrpc.client.ServerProxy(self.url, transport=self._transport, allow_none=True)
        try:
            return getattr(proxy, method)(*args)
        except xmlrpc.client.Fault as exc:
            raise SupervisorError(self._explain(method, exc), fault=exc.faultCode) from None
        except (OSError, http.client.HTTPException, xmlrpc.client.Error, ExpatError) as exc:
            raise SupervisorError(self._explain(method, exc)) from None
        finally:
            proxy("close")()

    def _explain(self, method, exc):
        where = f"supervisord at {self.url}"
        if isinstance(exc, xmlrpc.client.Fault):
            return f"{where} refused {method}: {exc.faultString} (fault {exc.faultCode})"
        if isinstance(exc, xmlrpc.client.ProtocolError):
            if exc.errcode == 401:
                return f"{where} rejected the credentials (HTTP 401): check supervisor_user and supervisor_password"
            hint = " (is the XML-RPC path right? supervisord serves /RPC2)" if exc.errcode in (400, 404, 405) else ""
            return f"{where} answered HTTP {exc.errcode} {exc.errmsg} to {method}{hint}"
        if isinstance(exc, TimeoutError):
            # supervisord waits forever for the end of an HTTP request it gets a TLS hello for.
            hint = (
                " (an https URL needs a TLS endpoint; supervisord itself speaks plain HTTP)"
                if self.url.startswith("https:")
                else ""
            )
            return f"{where} did not answer {method} within {self.timeout} seconds{hint}"
        described = describe_connection_error(exc, where, "its inet_http_server", option_prefix="supervisor_")
        if described:
            return described
        if isinstance(exc, (xmlrpc.client.ResponseError, ExpatError)):
            return f"{where} did not answer XML-RPC to {method} (is this supervisord's /RPC2?): {exc}"
        return f"Cannot reach {where}: {exc.__class__.__name__}: {exc}"

    def group_processes(self, group):
        """supervisord's process info structs for the processes of ``group``.

        getAllProcessInfo and a filter, as MISP does; a group with no process does not exist for
        supervisord, so it is reported like the BAD_NAME fault its group calls answer.
        """
        infos = self.call("supervisor.getAllProcessInfo")
        procs = [info for info in infos if info.get("group") == group]
        if not procs:
            groups = ", ".join(sorted({info.get("group", "") for info in infos})) or "none"
            raise SupervisorError(
                f"supervisord at {self.url} has no process group '{group}' (BAD_NAME); its groups: {groups}",
                fault=BAD_NAME,
            )
        return procs

    def start_process(self, group, name):
        """Start ``group:name`` without waiting; False if it was already starting or running."""
        try:
            return self.call("supervisor.startProcess", f"{group}:{name}", False)
        except SupervisorError as exc:
            # supervisord's autorestart may have got there first.
            if exc.fault == ALREADY_STARTED:
                return False
            raise

    def stop_group(self, group):
        self._group_call("supervisor.stopProcessGroup", group)

    def start_group(self, group):
        self._group_call("supervisor.startProcessGroup", group)

    def _group_call(self, method, group):
        """Group calls answer one status struct per process instead of a fault: raise on failures."""
        results = self.call(method, group, False)
        failed = [f"{r['name']}: {r['description']}" for r in results if r.get("status") != SUCCESS]
        if failed:
            raise SupervisorError(f"supervisord at {self.url} failed {method} for {', '.join(failed)}")
