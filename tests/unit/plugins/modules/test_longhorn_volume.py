"""Unit tests of the longhorn_volume module: argument handling, and failing before any API call."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

from ansible_collections.cti.misp_platform.plugins.module_utils import _longhorn
from ansible_collections.cti.misp_platform.plugins.modules import longhorn_volume


@pytest.fixture
def no_api(monkeypatch):
    """Fails the test if the module gets as far as building an API client."""

    def refuse(*args, **kwargs):
        raise AssertionError("the module must fail before talking to the cluster")

    monkeypatch.setattr(_longhorn, "get_api_client", refuse)


def run(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        longhorn_volume.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_argspec_offers_kubernetes_core_connection_options():
    spec = longhorn_volume.argspec()
    assert set(AUTH_ARG_SPEC) <= set(spec)
    assert spec["api_key"]["no_log"] is True
    assert spec["namespace"]["default"] == "longhorn-system"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"size": "1Gi"}, "missing required arguments: name"),
        ({"name": "v", "size": "1Gi", "number_of_replicas": "three"}, "number_of_replicas"),
        ({"name": "v", "size": "1Gi", "data_locality": "nearby"}, "data_locality must be one of"),
        ({"name": "v", "size": "1Gi", "access_mode": "rwm"}, "access_mode must be one of"),
        ({"name": "v", "size": "1Gi", "frontend": "scsi"}, "frontend must be one of"),
        ({"name": "v", "size": "1Gi", "data_engine": "v3"}, "data_engine must be one of"),
        ({"name": "v", "size": "1Gi", "wait_for_state": "ready"}, "wait_for_state must be one of"),
        ({"name": "v", "size": "1Gi", "encrypted": "maybe"}, "encrypted"),
        ({"name": "v", "size": "1Gi", "pvc": {"namespace": "misp"}}, "missing parameter(s) required by 'pvc': pv"),
        ({"name": "v", "size": "ten gigs"}, "size: cannot parse 'ten gigs'"),
        ({"name": "v", "size": -1}, "size: must be greater than zero, got -1"),
        ({"name": "v", "size": "1Gi", "number_of_replicas": 0}, "number_of_replicas: must be between 1 and 20"),
        ({"name": "Vol_1", "size": "1Gi"}, "name: 'Vol_1' is not a valid name"),
        ({"name": "v", "size": "1Gi", "wait_timeout": 0}, "wait_timeout: must be at least 1 second, got 0"),
        (
            {"name": "v", "state": "absent", "wait": True, "wait_timeout": -5},
            "wait_timeout: must be at least 1 second, got -5",
        ),
        ({"name": "v", "state": "absent", "wait": True, "wait_sleep": 0}, "wait_sleep: must be at least 1 second"),
    ],
)
def test_bad_input_fails_before_any_api_call(args, message, capsys, no_api):
    code, result = run(args, capsys)
    assert code == 1
    assert result["failed"] is True
    assert message in result["msg"]


def test_invalid_choice_names_the_value(capsys, no_api):
    result = run({"name": "v", "size": "1Gi", "data_locality": "nearby"}, capsys)[1]
    assert "got: nearby" in result["msg"]


def test_missing_kubeconfig_option_fails_before_any_api_call(tmp_path, capsys, no_api):
    result = run({"name": "v", "size": "1Gi", "kubeconfig": str(tmp_path / "absent")}, capsys)[1]
    # kubernetes.core declares kubeconfig no_log (it may hold credentials), so Ansible masks the path.
    assert result["msg"].startswith("kubeconfig: file '")
    assert result["msg"].endswith("' does not exist")


def test_missing_kubeconfig_from_environment_is_named(tmp_path, capsys, monkeypatch, no_api):
    missing = str(tmp_path / "absent")
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", missing)
    result = run({"name": "v", "size": "1Gi"}, capsys)[1]
    assert result["msg"] == f"kubeconfig: file '{missing}' does not exist"
