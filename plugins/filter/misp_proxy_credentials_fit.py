# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the proxy account fits unencoded in the HTTP_PROXY URL of the MISP pods."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: misp_proxy_credentials_fit
short_description: Whether a proxy username and password fit unencoded in a proxy URL
version_added: 1.0.0
description:
  - >-
    The pods' HTTP_PROXY embeds the proxy account as it is, since Kubernetes cannot percent-encode
    a value from a Secret, so characters with a meaning in URLs would break it. Returns false when
    the username holds one of C(@ : / ? # [ ] %) or white space, or the password one of C(@ / ? # [ ] %)
    or white space.
  - The values are never part of the result, so the task using it can print its outcome.
options:
  _input:
    description: The account, a mapping with C(username) and C(password) (misp_secrets.proxy, or Secret
      misp-proxy decoded by P(cti.misp_platform.k8s_secret_data#filter)); missing keys count as empty.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Find out whether the proxy credentials fit in a URL
  ansible.builtin.set_fact:
    misp_common_proxy_credentials_fit: "{{ misp_secrets.proxy | cti.misp_platform.misp_proxy_credentials_fit }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: True when both values can stand unencoded in the URL.
  type: bool
"""

USERNAME_BAD = re.compile(r"[@:/?#\[\]%\s]")
PASSWORD_BAD = re.compile(r"[@/?#\[\]%\s]")


def misp_proxy_credentials_fit(credentials):
    """True when the proxy account can stand unencoded in http://user:password@host:port."""
    credentials = credentials or {}
    username = str(credentials.get("username", ""))
    password = str(credentials.get("password", ""))
    return not USERNAME_BAD.search(username) and not PASSWORD_BAD.search(password)


class FilterModule:
    def filters(self):
        return {"misp_proxy_credentials_fit": misp_proxy_credentials_fit}
