"""MISP's shared values beyond the argument spec: base URL, namespace, image."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.misp_common_problems import (
    FilterModule,
    misp_common_problems,
)

GOOD = {
    "base_url": "https://misp.example.org",
    "namespace": "misp",
    "image": {"repository": "ghcr.io/misp/misp-docker/misp-core", "tag": "v2.5.31", "digest": ""},
}


def problems(**change):
    values = {**GOOD, **change}
    return misp_common_problems(values["base_url"], values["namespace"], values["image"])


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"base_url": "http://10.0.0.5:8443/misp"},
        {"namespace": "a" * 63},
        {"namespace": "misp-prod-1"},
        {"image": {"repository": "registry.local/misp-core", "digest": "sha256:" + "0" * 64}},
    ],
)
def test_usable_values(change):
    assert problems(**change) == []


URL_RULE = "misp_base_url (misp_common_base_url) must be the public URL of MISP without a trailing slash"
NAMESPACE_RULE = "misp_namespace (misp_common_namespace) must be a DNS label"


@pytest.mark.parametrize(
    ("change", "start", "got"),
    [
        ({"base_url": "https://misp.example.org/"}, URL_RULE, 'got "https://misp.example.org/"'),
        ({"base_url": "misp.example.org"}, URL_RULE, 'got "misp.example.org"'),
        ({"base_url": "ftp://misp.example.org"}, URL_RULE, 'got "ftp://misp.example.org"'),
        ({"base_url": "https://misp example.org"}, URL_RULE, 'got "https://misp example.org"'),
        ({"base_url": ""}, URL_RULE, 'got ""'),
        ({"base_url": None}, URL_RULE, "got null"),
        ({"namespace": "MISP"}, NAMESPACE_RULE, 'got "MISP"'),
        ({"namespace": "misp-"}, NAMESPACE_RULE, 'got "misp-"'),
        ({"namespace": "a" * 64}, NAMESPACE_RULE, f'got "{"a" * 64}"'),
        ({"namespace": 7}, NAMESPACE_RULE, "got 7"),
        (
            {"image": {"repository": "misp-core"}},
            "misp_image (misp_common_image) needs repository and a tag or digest",
            'got {"repository": "misp-core"}',
        ),
        (
            {"image": {"tag": "v2.5.31"}},
            "misp_image (misp_common_image) needs repository and a tag or digest",
            'got {"tag": "v2.5.31"}',
        ),
        (
            {"image": "misp-core:v2.5.31"},
            "misp_image (misp_common_image) needs repository and a tag or digest",
            'got "misp-core:v2.5.31"',
        ),
    ],
)
def test_each_bad_value_is_named(change, start, got):
    (message,) = problems(**change)
    assert message.startswith(start), message
    assert message.endswith(got), message


def test_every_problem_is_reported_at_once():
    found = problems(base_url="misp/", namespace="Bad_NS", image={})
    assert [message.split(" ", 1)[0] for message in found] == ["misp_base_url", "misp_namespace", "misp_image"]


def test_filter_is_registered():
    assert FilterModule().filters() == {"misp_common_problems": misp_common_problems}
