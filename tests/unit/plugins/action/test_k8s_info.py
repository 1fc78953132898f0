"""Unit tests of k8s_info's action plugin: kubernetes.core.k8s_info's code in the controller on a
local connection, kubernetes.core.k8s_info's module elsewhere."""

from __future__ import annotations

import os
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

from ansible_collections.cti.misp_platform.plugins.action import k8s_info as action
from tests.action_plugin import action_plugin

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "misp-frontend", "namespace": "misp"}}


def plugin(transport="local", args=None, environment=None):
    args = args if args is not None else {"kind": "Service", "namespace": "misp", "name": "misp-frontend"}
    return action_plugin(action.ActionModule, args, transport=transport, environment=environment)


@pytest.fixture
def cluster(monkeypatch):
    """kubernetes.core's client and service stand-ins: what they were given, and the find's answer."""
    seen = {"answer": {"api_found": True, "resources": [SERVICE]}, "errors": []}

    def get_api_client(module):
        seen["kubeconfig"] = os.environ.get("K8S_AUTH_KUBECONFIG")
        seen["dry_run"] = module.server_side_dry_run
        return "client"

    class Service:
        def __init__(self, client, module):
            seen["client"] = client

        def find(self, kind, api_version, **kwargs):
            seen["find"] = {"kind": kind, "api_version": api_version, **kwargs}
            if seen["errors"]:
                raise seen["errors"][0]
            return seen["answer"]

    monkeypatch.setattr(action, "get_api_client", get_api_client)
    monkeypatch.setattr(action, "K8sService", Service)
    return seen


def test_a_local_connection_reads_in_this_process_with_the_tasks_environment(cluster, monkeypatch):
    # The plugin sets the worker's environment; this test's process gets it back afterwards.
    monkeypatch.setattr(os, "environ", {"PATH": "/usr/bin"})
    result = plugin(environment=[{"K8S_AUTH_KUBECONFIG": "/play/kubeconfig"}]).run(task_vars={})
    assert (result["changed"], result["api_found"], result["resources"]) == (False, True, [SERVICE])
    assert (cluster["kubeconfig"], cluster["dry_run"], cluster["client"]) == ("/play/kubeconfig", False, "client")
    # kubernetes.core.k8s_info's own find, with its spec's defaults filled in.
    assert cluster["find"] == {
        "kind": "Service",
        "api_version": "v1",
        "name": "misp-frontend",
        "namespace": "misp",
        "label_selectors": [],
        "field_selectors": [],
        "wait": False,
        "wait_sleep": 5,
        "wait_timeout": 120,
        "condition": None,
        "hidden_fields": None,
    }
    assert result["invocation"]["module_args"]["kind"] == "Service"


def test_a_failed_read_is_reported_with_kubernetes_cores_message(cluster):
    cluster["errors"].append(CoreException("Failed to get client due to 401 Unauthorized"))
    result = plugin().run(task_vars={})
    assert (result["failed"], result["msg"]) == (True, "Failed to get client due to 401 Unauthorized")


def test_bad_arguments_fail_naming_them_before_any_read(cluster):
    with pytest.raises(AnsibleActionFail, match="missing required arguments: kind"):
        plugin(args={"namespace": "misp"}).run(task_vars={})
    with pytest.raises(AnsibleActionFail, match=r"Unsupported parameters for \(kubernetes.core.k8s_info\).*colour"):
        plugin(args={"kind": "Service", "colour": "blue"}).run(task_vars={})
    assert "find" not in cluster


@pytest.mark.parametrize("local_without_library", [False, True])
def test_another_connection_or_no_library_runs_kubernetes_cores_module(cluster, monkeypatch, local_without_library):
    monkeypatch.setattr(action, "HAS_KUBERNETES", not local_without_library)
    task = plugin(transport="local" if local_without_library else "ssh")
    task._execute_module = MagicMock(return_value={"changed": False, "resources": []})
    task._remove_tmp_path = MagicMock()
    assert task.run(task_vars={"x": 1}) == {"changed": False, "resources": []}
    task._execute_module.assert_called_once_with(
        module_name="kubernetes.core.k8s_info",
        module_args={"kind": "Service", "namespace": "misp", "name": "misp-frontend"},
        task_vars={"x": 1},
    )
    assert "find" not in cluster


def test_a_kubeconfig_is_found_and_decrypted_as_kubernetes_cores_plugin_does(cluster, tmp_path, monkeypatch):
    kubeconfig = tmp_path / "files" / "rig.kubeconfig"
    kubeconfig.parent.mkdir()
    kubeconfig.write_text("apiVersion: v1\n")
    seen = []
    monkeypatch.setattr(action, "get_api_client", lambda module: seen.append(module.params["kubeconfig"]))
    task = plugin(args={"kind": "Node", "kubeconfig": "rig.kubeconfig"})
    task._find_needle = MagicMock(return_value=str(kubeconfig))
    task._loader.get_real_file = MagicMock(return_value="/decrypted/rig.kubeconfig")
    assert task.run(task_vars={})["resources"] == [SERVICE]
    task._find_needle.assert_called_once_with("files", "rig.kubeconfig")
    task._loader.get_real_file.assert_called_once_with(str(kubeconfig), decrypt=True)
    assert seen == ["/decrypted/rig.kubeconfig"]
