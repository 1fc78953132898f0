"""The wording both HTTP clients give TLS and refused-connection failures."""

from __future__ import annotations

import ssl

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils._connection import (
    describe_connection_error,
    positive_seconds,
)


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


@pytest.mark.parametrize(("value", "expected"), [(None, 30), (0.5, 0.5), (10, 10), (120.0, 120.0)])
def test_positive_seconds(value, expected):
    assert positive_seconds("timeout", value, 30) == expected


@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, float("nan"), float("inf"), True, "10"])
def test_positive_seconds_refuses_naming_option_and_value(value):
    with pytest.raises(ValueError) as err:
        positive_seconds("supervisor_timeout", value, 10)
    assert str(err.value) == f"supervisor_timeout must be a positive number of seconds, got {value!r}"
