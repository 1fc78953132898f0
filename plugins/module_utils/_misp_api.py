# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Minimal client for MISP's admin REST API (internal to this collection).

Only ansible.module_utils is used so modules run wherever Ansible runs, without extra packages.
"""

from __future__ import annotations

import json
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.common.parameters import env_fallback
from ansible.module_utils.urls import Request, SSLValidationError, make_context

from ansible_collections.cti.misp_platform.plugins.module_utils._connection import (
    describe_connection_error,
    positive_seconds,
)

# Keep in sync with plugins/doc_fragments/misp_api.py.
MISP_API_ARGSPEC = {
    "url": {"type": "str", "required": True, "fallback": (env_fallback, ["MISP_URL"])},
    "api_key": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, ["MISP_API_KEY"])},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 30},
}

USER_AGENT = "cti.misp_platform"
# How much of a body that is not what we expected to quote in an error.
_SNIPPET = 200


class MispApiError(Exception):
    """A request to MISP failed; ``status`` and ``body`` (parsed JSON when possible) when MISP answered."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


def _snippet(text):
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def misp_reason(body):
    """MISP's own explanation in an error body: ``message`` and, when it adds something, ``errors``."""
    if not isinstance(body, dict):
        return None
    parts = []
    for key in ("message", "errors"):
        value = body.get(key)
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        if value not in (None, "") and str(value) not in parts:
            parts.append(str(value))
    return ": ".join(parts) or None


class MispApi:
    """Talks to one MISP instance.

    ``params`` is a mapping with the keys of MISP_API_ARGSPEC (a module's ``params``, or any dict);
    other keys are ignored.
    """

    def __init__(self, params):
        self.url = (params.get("url") or "").rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MispApiError(f"Invalid MISP url '{params.get('url')}': expected http(s)://host[:port][/path]")
        try:
            self.timeout = positive_seconds("timeout", params.get("timeout"), 30)
        except ValueError as exc:
            raise MispApiError(str(exc)) from None
        ca_path = params.get("ca_path")
        try:
            # Built once (Request.open builds one per request otherwise, even for http): loading
            # the trust store costs more than a request to MISP.
            context = make_context(cafile=ca_path, validate_certs=params.get("validate_certs", True))
        except OSError as exc:
            raise MispApiError(f"Cannot use ca_path '{ca_path}': {exc}") from None
        self._request = Request(
            headers={
                "Authorization": params["api_key"],
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=self.timeout,
            http_agent=USER_AGENT,
            # A MISP API key is not a netrc login; never let ~/.netrc replace the header.
            use_netrc=False,
            context=context,
        )

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def request(self, method, path, body=None):
        """Send one request; return the parsed JSON answer or raise MispApiError."""
        url = self.url + "/" + path.lstrip("/")
        where = f"{method} {url}"
        data = None if body is None else json.dumps(body)
        try:
            response = self._request.open(method, url, data=data)
            status = response.getcode()
            raw = response.read()
        except HTTPError as exc:
            raise self._http_error(where, exc) from None
        except SSLValidationError as exc:
            raise MispApiError(f"TLS failure on {where}: {exc}") from None
        except URLError as exc:
            raise MispApiError(self._connection_message(where, exc.reason)) from None
        except (OSError, ValueError) as exc:
            # Timeouts, connection resets, TLS errors raised while reading, malformed URLs...
            raise MispApiError(self._connection_message(where, exc)) from None
        return self._parse(where, status, raw)

    @staticmethod
    def _parse(where, status, raw):
        text = raw.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            raise MispApiError(
                f"{where} answered HTTP {status} with a body that is not JSON (is this the MISP URL?): "
                f"{_snippet(text) or '<empty>'}",
                status=status,
                body=text,
            ) from None

    def _connection_message(self, where, reason):
        if isinstance(reason, TimeoutError):
            return f"{where} timed out after {self.timeout} seconds"
        return describe_connection_error(reason, where, "MISP") or f"Cannot reach {where}: {reason}"

    @staticmethod
    def _http_error(where, exc):
        try:
            text = exc.read().decode("utf-8", errors="replace")
        except OSError:
            # The error stays useful with the status line alone.
            text = ""
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        reason = misp_reason(body) or _snippet(text) or exc.reason
        return MispApiError(f"{where} failed: HTTP {exc.code}: {reason}", status=exc.code, body=body)
