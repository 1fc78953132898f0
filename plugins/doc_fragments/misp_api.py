# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the MISP REST API connection; matches MISP_API_ARGSPEC in module_utils/_misp_api.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the MISP instance, for example V(https://misp.example.org).
      - If not set, the value of the E(MISP_URL) environment variable is used.
    type: str
    required: true
  api_key:
    description:
      - Authentication key of a site administrator, sent in the C(Authorization) header.
      - If not set, the value of the E(MISP_API_KEY) environment variable is used.
      - Never logged nor returned.
    type: str
    required: true
  validate_certs:
    description:
      - Whether to verify the TLS certificate of O(url).
      - Only set to V(false) against a test instance.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the certificate authorities that signed the certificate of O(url), when not
        in the system trust store.
    type: path
  timeout:
    description:
      - Seconds to wait for each answer of MISP.
      - Must be a positive number; V(0) and negative values are refused before anything is sent.
    type: float
    default: 30
"""
