"""Unit tests of the k8s_apply module: argument handling, and failing before any API call."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cti.misp_platform.plugins.module_utils import _k8s_apply
from ansible_collections.cti.misp_platform.plugins.modules import k8s_apply

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}


def test_module_refuses_bad_input_before_building_a_client(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("the module must fail before talking to the cluster")

    monkeypatch.setattr(_k8s_apply, "get_api_client", refuse)
    with patch_module_args({"definitions": [CM, {"kind": "Pod"}]}), pytest.raises(SystemExit) as exit_info:
        k8s_apply.main()
    result = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 1
    assert result["msg"] == "Pod <no name> has no apiVersion, metadata.name"
    assert result["objects"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "one of the following is required: definitions, template"),
        ({"definitions": [CM], "state": "patched"}, "value of state must be one of: present, absent"),
        ({"definitions": [CM], "wait_timeout": "soon"}, "wait_timeout"),
    ],
)
def test_module_argument_errors_name_the_option(args, message, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        k8s_apply.main()
    assert message in json.loads(capsys.readouterr().out)["msg"]
