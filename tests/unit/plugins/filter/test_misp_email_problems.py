"""MISP's e-mail settings beyond the argument spec: host, port, SMTP AUTH over TLS, sender address."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.misp_email_problems import FilterModule, misp_email_problems

GOOD = {"host": "smtp.example.org", "port": 587, "tls": "starttls", "auth": True, "sender": "misp@example.org"}


def problems(**change):
    settings = {**GOOD, **change}
    return misp_email_problems(
        settings["host"], settings["port"], settings["tls"], settings["auth"], settings["sender"]
    )


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"host": "localhost", "port": 25, "tls": "none", "auth": False},
        {"host": "10.0.0.5", "port": "465", "tls": "implicit"},
    ],
)
def test_usable_settings(change):
    assert problems(**change) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"host": "ssl://smtp.example.org"},
            'misp_common_smtp_host must be a host name without scheme, got "ssl://smtp.example.org" '
            "(TLS is misp_common_smtp_tls: starttls or implicit)",
        ),
        (
            {"host": "smtp.example.org:587"},
            'misp_common_smtp_host must be a host name or IPv4 address, got "smtp.example.org:587"',
        ),
        ({"host": None}, "misp_common_smtp_host must be a host name or IPv4 address, got null"),
        ({"port": 0}, "misp_common_smtp_port must be a number from 1 to 65535, got 0"),
        ({"port": 70000}, "misp_common_smtp_port must be a number from 1 to 65535, got 70000"),
        ({"port": "smtp"}, 'misp_common_smtp_port must be a number from 1 to 65535, got "smtp"'),
        ({"port": True}, "misp_common_smtp_port must be a number from 1 to 65535, got true"),
        ({"auth": "yes"}, 'misp_common_smtp_auth must be true or false, got "yes"'),
        (
            {"tls": "none"},
            "misp_common_smtp_auth needs misp_common_smtp_tls starttls or implicit:"
            " without TLS the password would cross the network in clear text",
        ),
        ({"sender": "misp"}, 'misp_common_email_from must be an e-mail address, got "misp"'),
        ({"sender": "it's@example.org"}, 'misp_common_email_from must be an e-mail address, got "it\'s@example.org"'),
        (
            {"sender": ["misp@example.org"]},
            'misp_common_email_from must be an e-mail address, got ["misp@example.org"]',
        ),
    ],
)
def test_bad_values_are_named(change, message):
    assert problems(**change) == [message]


def test_every_problem_at_once():
    assert len(problems(host="a b", port=0, auth="no", sender="x")) == 4


def test_registered():
    assert FilterModule().filters() == {"misp_email_problems": misp_email_problems}
