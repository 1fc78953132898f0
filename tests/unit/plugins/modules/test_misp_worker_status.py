"""Unit tests of misp_worker_status's arguments: documentation, argspec and bad input.

Every bad-input case points supervisor_url at a closed loopback port: an error other than the
expected one (such as "Connection refused") would show the module went to the network first.
"""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cti.misp_platform.plugins.doc_fragments import misp_api, port_forward, supervisor
from ansible_collections.cti.misp_platform.plugins.modules import misp_worker_status

USER = "wrk-admin-7f3k"
PASSWORD = "Sup3r-secret-pw"
API_KEY = "misp-key-0123456789abcdef0123456789abcdef"
# Leaves the option out of the module's arguments altogether.
OMIT = object()


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_module(capsys, **args):
    base = {
        "supervisor_url": f"http://127.0.0.1:{closed_port()}",
        "supervisor_user": USER,
        "supervisor_password": PASSWORD,
    }
    base.update(args)
    base = {name: value for name, value in base.items() if value is not OMIT}
    with patch_module_args(base), pytest.raises(SystemExit):
        misp_worker_status.main()
    out = capsys.readouterr().out
    for secret in (PASSWORD, API_KEY):
        assert secret not in out
    return json.loads(out)


def documented_options():
    options = yaml.safe_load(misp_worker_status.DOCUMENTATION)["options"]
    merged = {}
    for fragment in (supervisor, port_forward, misp_api):
        merged.update(yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"])
    # The module's own entries refine the fragment's, as ansible-doc merges them.
    for name, doc in options.items():
        merged[name] = {**merged.get(name, {}), **doc}
    return merged


def test_documentation_matches_the_argspec():
    docs = documented_options()
    spec, _checks = misp_worker_status.argument_spec()
    assert sorted(docs) == sorted(spec)
    for name, entry in spec.items():
        doc = docs[name]
        assert doc["type"] == entry["type"], name
        assert doc.get("default") == entry.get("default"), name
        assert bool(doc.get("required")) == bool(entry.get("required")), name
        assert doc.get("choices") == entry.get("choices"), name


def test_secrets_are_no_log_and_only_they():
    # A user name is no secret: as no_log, Ansible masked it in every message (issue 21).
    spec, _checks = misp_worker_status.argument_spec()
    assert {name for name, entry in spec.items() if entry.get("no_log")} == {"supervisor_password", "api_key"}


@pytest.mark.parametrize("user", ["sup", "supervisor"])
def test_a_user_name_that_is_a_common_word_leaves_messages_readable(capsys, user):
    result = run_module(capsys, supervisor_user=user)
    assert result["msg"].startswith("Connection refused by supervisord at http://127.0.0.1:")
    assert result["invocation"]["module_args"]["supervisor_user"] == user
    assert "********" not in json.dumps(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"state": "stopped"}, "value of state must be one of: present, running, restarted, got: stopped"),
        ({"wait_timeout": "soon"}, "argument 'wait_timeout' is of type str and we were unable to convert to int"),
        ({"wait_timeout": 0}, "wait_timeout must be at least 1 second, got 0"),
        ({"supervisor_timeout": "fast"}, "argument 'supervisor_timeout' is of type str and we were unable to convert"),
        ({"queues": "default"}, "argument 'queues' is of type str and we were unable to convert to dict"),
        ({"queues": ["default"]}, "argument 'queues' is of type list and we were unable to convert to dict"),
        ({"queues": {"mail": 1}}, "queues names unknown queue 'mail'"),
        ({"queues": {"default": -1}}, "queues.default must be at least 1 process, got -1"),
        ({"queues": {"default": "many"}}, "queues.default must be a number of processes, got 'many'"),
        ({"supervisor_url": "127.0.0.1:9001"}, "Invalid supervisor_url '127.0.0.1:9001'"),
        ({"supervisor_url": "http://127.0.0.1:99999"}, "Invalid supervisor_url 'http://127.0.0.1:99999'"),
        ({"supervisor_url": OMIT}, "missing required arguments: supervisor_url"),
        ({"supervisor_url": None}, "supervisor_url is required"),
        ({"supervisor_password": OMIT}, "parameters are required together: supervisor_user, supervisor_password"),
        ({"supervisor_password": None}, "supervisor_user and supervisor_password go together"),
        ({"url": "https://misp.example.org"}, "parameters are required together: url, api_key"),
        ({"url": "misp.example.org", "api_key": API_KEY}, "Invalid MISP url 'misp.example.org'"),
        ({"colour": "blue"}, "Unsupported parameters for (basic.py) module: colour"),
        ({"supervisor_timeout": -1}, "supervisor_timeout must be a positive number of seconds, got -1.0"),
        ({"supervisor_timeout": 0}, "supervisor_timeout must be a positive number of seconds, got 0.0"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0.0"),
        (
            {"url": "https://misp.example.org", "api_key": API_KEY, "timeout": -1},
            "timeout must be a positive number of seconds, got -1.0",
        ),
    ],
)
def test_bad_input_fails_before_any_request(capsys, args, message):
    result = run_module(capsys, **args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert "refused" not in result["msg"]


def test_url_with_credentials_is_refused_without_echoing_the_password(capsys):
    result = run_module(capsys, supervisor_url=f"http://admin:{PASSWORD}@127.0.0.1:9001")
    assert "must not embed credentials" in result["msg"]


def test_unreachable_supervisord_fails_clearly(capsys):
    result = run_module(capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("Connection refused by supervisord at http://127.0.0.1:")
