# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with MISP's e-mail settings beyond what the role's argument spec says."""

from __future__ import annotations

import json
import re

from ansible_collections.cti.misp_platform.plugins.plugin_utils._patterns import HOST, whole_number

DOCUMENTATION = r"""
name: misp_email_problems
short_description: What is wrong with MISP's e-mail settings
version_added: 1.0.0
description:
  - Checks the mail relay settings of the MISP roles (email.php) and returns one message per
    problem, each naming the variable and the bad value; empty when they are usable. The values
    hold no secret (the account stays in Secret misp-smtp).
  - Leaves the choices of misp_common_smtp_tls to the role's argument spec. The port and
    misp_common_smtp_auth stay strict here because the spec converts for itself only (it takes
    the string C("false") as a boolean while email.php reads the value as given).
  - misp_common_smtp_host is a host name or IPv4 address without scheme, the port a number from 1
    to 65535, SMTP AUTH needs TLS (else the password crosses the network in clear text), and
    misp_common_email_from an e-mail address.
options:
  _input:
    description: misp_common_smtp_host.
    type: raw
    required: true
  port:
    description: misp_common_smtp_port.
    type: raw
    required: true
  tls:
    description: misp_common_smtp_tls.
    type: raw
    required: true
  auth:
    description: misp_common_smtp_auth.
    type: raw
    required: true
  sender:
    description: misp_common_email_from.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check the e-mail settings
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}."
  vars:
    __problems: >-
      {{ misp_common_smtp_host | cti.misp_platform.misp_email_problems(misp_common_smtp_port, misp_common_smtp_tls,
                                                                       misp_common_smtp_auth, misp_common_email_from) }}
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the bad value; empty when there is none.
  type: list
  elements: str
"""

ADDRESS = re.compile(r"^[^@\s'\"]+@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def misp_email_problems(host, port, tls, auth, sender):
    """Messages naming each bad e-mail setting; empty when they are usable."""
    problems = []
    if isinstance(host, str) and "://" in host:
        problems.append(
            f"misp_common_smtp_host must be a host name without scheme, got {json.dumps(host)} "
            "(TLS is misp_common_smtp_tls: starttls or implicit)"
        )
    elif not isinstance(host, str) or not HOST.match(host):
        problems.append(f"misp_common_smtp_host must be a host name or IPv4 address, got {json.dumps(host)}")
    number = whole_number(port)
    if number is None or not 1 <= number <= 65535:
        problems.append(f"misp_common_smtp_port must be a number from 1 to 65535, got {json.dumps(port)}")
    if not isinstance(auth, bool):
        problems.append(f"misp_common_smtp_auth must be true or false, got {json.dumps(auth)}")
    elif auth and tls == "none":
        problems.append(
            "misp_common_smtp_auth needs misp_common_smtp_tls starttls or implicit:"
            " without TLS the password would cross the network in clear text"
        )
    if not isinstance(sender, str) or not ADDRESS.match(sender):
        problems.append(f"misp_common_email_from must be an e-mail address, got {json.dumps(sender)}")
    return problems


class FilterModule:
    def filters(self):
        return {"misp_email_problems": misp_email_problems}
