"""The wording both HTTP clients give TLS and refused-connection failures."""

from __future__ import annotations

import ssl

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils._connection import describe_connection_error


def untrusted():
    exc = ssl.SSLCertVerificationError("certificate verify failed")
    exc.verify_message = "self-signed certificate"
    return exc


@pytest.mark.parametrize(
    ("exc", "prefix", "expected"),
    [
        (
            untrusted(),
            "",
            "TLS certificate verification failed for W: self-signed certificate (set ca_path, or validate_certs=false)",
        ),
        (
            untrusted(),
            "supervisor_",
            "TLS certificate verification failed for W: self-signed certificate"
            " (set supervisor_ca_path, or supervisor_validate_certs=false)",
        ),
        (ssl.SSLError(1, "wrong version number"), "", "TLS failure on W: wrong version number"),
        (ConnectionRefusedError(111, "refused"), "", "Connection refused by W (is L listening there?)"),
    ],
)
def test_tls_and_refused_connections_are_explained(exc, prefix, expected):
    assert describe_connection_error(exc, "W", "L", option_prefix=prefix) == expected


@pytest.mark.parametrize("exc", [TimeoutError("timed out"), OSError("reset"), ValueError("bad")])
def test_other_errors_are_left_to_the_client(exc):
    assert describe_connection_error(exc, "W", "L") is None
