"""The extra CA volume from the objects misp_common_ca_certificates names, as k8s_info results."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.cti.misp_platform.plugins.filter.misp_ca_objects import FilterModule, misp_ca_objects
from tests.rig.peers._tls import key_pem

PATTERN = r"^\s*(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fh\n-----END CERTIFICATE-----\n"
NS = "misp"
# Made at test time: no key is committed.
KEY = key_pem(ec.generate_private_key(ec.SECP256R1())).decode()


def read(item, data=None):
    """A k8s_info loop result for ``item``; ``data`` None: the object does not exist."""
    return {"item": item, "resources": [] if data is None else [{"data": data}]}


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_sources_list_the_crt_keys_under_distinct_paths():
    results = [
        read({"configmap": "site-ca"}, {"ca.crt": PEM, "README": "x", "b.crt": PEM}),
        read({"secret": "partner-ca"}, {"ca.crt": b64(PEM)}),
    ]
    got = misp_ca_objects(results, [PEM], NS, PATTERN)
    assert got["problems"] == []
    assert got["sources"] == [
        {"configMap": {"name": "misp-ca-certificates"}},
        {
            "configMap": {
                "name": "site-ca",
                "items": [
                    {"key": "b.crt", "path": "configmap-site-ca-b.crt"},
                    {"key": "ca.crt", "path": "configmap-site-ca-ca.crt"},
                ],
            }
        },
        {"secret": {"name": "partner-ca", "items": [{"key": "ca.crt", "path": "secret-partner-ca-ca.crt"}]}},
    ]


def test_fingerprint_is_what_the_role_computed_and_follows_the_data():
    results = [read({"configmap": "site-ca"}, {"ca.crt": PEM})]
    got = misp_ca_objects(results, [PEM], NS, PATTERN)
    # to_json(sort_keys=true) | hash('sha256') of [pems, data...], as the Jinja of the role did.
    expected = hashlib.sha256(json.dumps([[PEM], {"ca.crt": PEM}], sort_keys=True).encode()).hexdigest()
    assert got["fingerprint"] == expected
    changed = misp_ca_objects([read({"configmap": "site-ca"}, {"ca.crt": PEM + PEM})], [PEM], NS, PATTERN)
    assert changed["fingerprint"] != expected


def test_nothing_configured():
    assert misp_ca_objects([], [], NS, PATTERN) == {"sources": [], "problems": [], "fingerprint": ""}


def test_pem_strings_only():
    got = misp_ca_objects([], [PEM], NS, PATTERN)
    assert got["sources"] == [{"configMap": {"name": "misp-ca-certificates"}}]
    assert got["fingerprint"]


def test_bad_objects_are_named():
    results = [
        read({"configmap": "no-such-ca"}),
        read({"secret": "empty"}, None),
        read({"configmap": "no-crt"}, {"ca.pem": PEM}),
        read({"configmap": "not-pem"}, {"ca.crt": "hello", "ok.crt": PEM}),
        read({"secret": "key"}, {"tls.crt": b64(KEY)}),
        read({"secret": "not-base64"}, {"ca.crt": "%%%"}),
        read({"secret": "der"}, {"ca.crt": base64.b64encode(b"\x30\x82\xff\xfe").decode()}),
    ]
    got = misp_ca_objects(results, [], NS, PATTERN)
    assert got["problems"] == [
        "misp_common_ca_certificates: ConfigMap no-such-ca not found in namespace misp",
        "misp_common_ca_certificates: Secret empty not found in namespace misp",
        "misp_common_ca_certificates: ConfigMap no-crt has no *.crt key",
        "misp_common_ca_certificates: ConfigMap not-pem key ca.crt is not a PEM certificate",
        "misp_common_ca_certificates: Secret key key tls.crt is not a PEM certificate",
        "misp_common_ca_certificates: Secret not-base64 key ca.crt is not a PEM certificate",
        "misp_common_ca_certificates: Secret der key ca.crt is not a PEM certificate",
    ]
    # A missing object is still a source (without items), as before: the check stops the run first.
    assert got["sources"][0] == {"configMap": {"name": "no-such-ca", "items": []}}


def test_registered():
    assert FilterModule().filters() == {"misp_ca_objects": misp_ca_objects}
