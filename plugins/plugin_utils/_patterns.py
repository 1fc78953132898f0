# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patterns the controller-side checks share (internal to this collection)."""

from __future__ import annotations

import re

# A host name or IPv4 address as the MISP containers' programs take it (no scheme, port or path).
HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
DIGITS = re.compile(r"^[0-9]+$")
# A DNS label (RFC 1123), as Kubernetes names namespaces: at most 63 lower-case letters, digits
# and '-', starting and ending with a letter or digit.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def whole_number(value) -> int | None:
    """``value`` as a whole number when it is one or its digits (a port, a count), else None; the
    range is checked by whoever reads it. A YAML boolean is no number, though Python counts it as
    an int."""
    text = str(value)
    return None if isinstance(value, bool) or not DIGITS.match(text) else int(text)
