# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wording and checks shared by the collection's HTTP clients (internal).

The clients raise their own error types; this keeps what they say about TLS, refused
connections and their timeout options the same, so a user reads one explanation whichever
module hit it.
"""

from __future__ import annotations

import math
import ssl


def positive_seconds(option, value, default):
    """``value`` (``default`` when None) as seconds; ValueError naming ``option`` unless it is positive.

    A socket takes 0 as "do not wait at all" and refuses a negative value with a bare ValueError:
    both are refused here, naming the option, before anything is sent.
    """
    seconds = default if value is None else value
    number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if not (number and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{option} must be a positive number of seconds, got {value!r}")
    return seconds


def describe_connection_error(exc, where, listener, option_prefix=""):
    """Explain a TLS or refused-connection ``exc`` met talking to ``where``; None for any other error.

    ``listener`` is what should be listening at ``where``; ``option_prefix`` is the client's prefix
    of its ``ca_path`` and ``validate_certs`` options.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed for {where}: {exc.verify_message or exc}"
            f" (set {option_prefix}ca_path, or {option_prefix}validate_certs=false)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure on {where}: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"Connection refused by {where} (is {listener} listening there?)"
    return None
