# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with the entries of misp_common_ca_certificates, before any object is read."""

from __future__ import annotations

import json
import re

DOCUMENTATION = r"""
name: misp_ca_certificates_problems
short_description: What is wrong with misp_common_ca_certificates
version_added: 1.0.0
description:
  - Checks the extra CA certificates of the MISP roles and returns one message per bad entry,
    naming it by its index and its value (empty when every entry is usable).
  - >-
    An entry is a PEM string made only of C(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)
    blocks, or C({configmap: NAME}) or C({secret: NAME}) with a DNS-1123 name. Only the first 40
    characters of a bad PEM string are shown, so a private key pasted by mistake is not printed.
  - Whether the named objects exist and hold certificates is the filter P(cti.misp_platform.misp_ca_objects#filter).
options:
  _input:
    description: misp_common_ca_certificates.
    type: raw
    required: true
  pem_pattern:
    description: Regular expression a PEM string must match (misp_common_ca_pem_pattern).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Stop on a bad CA entry
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}"
  vars:
    __problems: >-
      {{ misp_common_ca_certificates | cti.misp_platform.misp_ca_certificates_problems(misp_common_ca_pem_pattern) }}
"""

RETURN = r"""
_value:
  description: One message per bad entry, each naming it; empty when there is none.
  type: list
  elements: str
"""

OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
SHOWN = 40
# Jinja's truncate leaves strings up to this much longer than the length whole.
LEEWAY = 5


def _start(text: str) -> str:
    """The start of a stripped string, as Jinja's truncate(40, true, '...') shows it."""
    text = text.strip()
    return text if len(text) <= SHOWN + LEEWAY else text[: SHOWN - 3] + "..."


def _object_ok(entry) -> bool:
    if not isinstance(entry, dict) or len(entry) != 1:
        return False
    ((kind, name),) = entry.items()
    return kind in ("configmap", "secret") and isinstance(name, str) and bool(OBJECT_NAME.match(name))


def misp_ca_certificates_problems(cas, pem_pattern):
    """Messages naming each bad entry of misp_common_ca_certificates; empty when all are usable."""
    if not isinstance(cas, list):
        return [
            "misp_common_ca_certificates must be a list of PEM strings or {configmap|secret: NAME}, "
            f"got {json.dumps(cas)}"
        ]
    pem = re.compile(pem_pattern)
    problems = []
    for index, entry in enumerate(cas):
        where = f"misp_common_ca_certificates[{index}]"
        if isinstance(entry, str):
            if not pem.match(entry):
                problems.append(
                    f"{where} is not a PEM certificate (only -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE----- "
                    f"blocks), it starts with {json.dumps(_start(entry))}"
                )
        elif not _object_ok(entry):
            problems.append(
                f"{where} must be a PEM string, {{configmap: NAME}} or {{secret: NAME}}, got {json.dumps(entry)}"
            )
    return problems


class FilterModule:
    def filters(self):
        return {"misp_ca_certificates_problems": misp_ca_certificates_problems}
