# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the supervisord XML-RPC connection; matches SUPERVISOR_ARGSPEC in module_utils/_supervisor.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  supervisor_url:
    description:
      - URL of the C([inet_http_server]) of the supervisord that runs the MISP workers, for
        example V(http://misp-workers:9001). The XML-RPC path C(/RPC2) is added when the URL
        has no path; give the full path when a proxy serves the API elsewhere.
      - MISP's own settings C(SimpleBackgroundJobs.supervisor_host) and C(supervisor_port) point
        at the same place.
      - Must not embed credentials; use O(supervisor_user) and O(supervisor_password).
    type: str
    required: true
  supervisor_user:
    description:
      - User name of the C([inet_http_server]) section (MISP's C(SimpleBackgroundJobs.supervisor_user)).
      - Sent with HTTP basic auth. A user name is not a secret, so it is not masked in the
        output; only O(supervisor_password) is.
      - Omit both O(supervisor_user) and O(supervisor_password) when supervisord asks for none.
    type: str
  supervisor_password:
    description:
      - Password of the C([inet_http_server]) section (MISP's C(SimpleBackgroundJobs.supervisor_password)).
      - Never logged nor returned.
    type: str
  supervisor_validate_certs:
    description:
      - Whether to verify the TLS certificate when O(supervisor_url) is C(https://), for example
        behind stunnel or an ingress. supervisord itself only speaks plain HTTP.
    type: bool
    default: true
  supervisor_ca_path:
    description:
      - PEM file of the certificate authorities that signed the certificate of O(supervisor_url),
        when not in the system trust store.
    type: path
  supervisor_timeout:
    description:
      - Seconds to wait for each answer of supervisord.
      - Must be a positive number; V(0) and negative values are refused before anything is sent.
    type: float
    default: 10
"""
