"""misp_common_ca_certificates entries: PEM strings or {configmap|secret: NAME}, each bad one named."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.cti.misp_platform.plugins.filter.misp_ca_certificates_problems import (
    FilterModule,
    misp_ca_certificates_problems,
)
from tests.rig.peers._tls import key_pem

# misp_common_ca_pem_pattern of roles/misp_common/vars/main.yml.
PATTERN = r"^\s*(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fh\n-----END CERTIFICATE-----\n"
# Made at test time: no key is committed.
KEY = key_pem(ec.generate_private_key(ec.SECP256R1())).decode()


def test_usable_entries():
    assert misp_ca_certificates_problems([], PATTERN) == []
    assert misp_ca_certificates_problems([PEM, PEM + PEM, {"configmap": "site-ca"}, {"secret": "ca.v2"}], PATTERN) == []


def test_a_private_key_is_refused_without_printing_it():
    (problem,) = misp_ca_certificates_problems([PEM, KEY], PATTERN)
    assert problem == (
        "misp_common_ca_certificates[1] is not a PEM certificate (only -----BEGIN CERTIFICATE----- ... "
        f"-----END CERTIFICATE----- blocks), it starts with {json.dumps(KEY[:37] + '...')}"
    )
    assert KEY.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert KEY[37:77] not in problem


def test_a_short_bad_string_is_shown_whole():
    (problem,) = misp_ca_certificates_problems(["  not a certificate \n"], PATTERN)
    assert problem.endswith('it starts with "not a certificate"')


@pytest.mark.parametrize(
    "entry",
    [{"configmap": "Site_CA"}, {"configmap": "a", "secret": "b"}, {"file": "ca.crt"}, {"secret": 3}, 42, ["x"]],
)
def test_bad_object_entries_are_named(entry):
    problems = misp_ca_certificates_problems([PEM, entry], PATTERN)
    assert problems and problems[0].startswith(
        "misp_common_ca_certificates[1] must be a PEM string, {configmap: NAME} or {secret: NAME}, got "
    ), problems


@pytest.mark.parametrize("cas", [PEM, {"configmap": "x"}, None])
def test_not_a_list(cas):
    (problem,) = misp_ca_certificates_problems(cas, PATTERN)
    assert problem.startswith(
        "misp_common_ca_certificates must be a list of PEM strings or {configmap|secret: NAME}, got "
    )


def test_registered():
    assert FilterModule().filters() == {"misp_ca_certificates_problems": misp_ca_certificates_problems}
