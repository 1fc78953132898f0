"""Unit tests of the in-controller runs of community.hashi_vault's read modules (vault_read and
vault_kv2_get's action plugins): the module's own run_module with the controller's module, the
module elsewhere. test_vault_in_controller runs them against OpenBao."""

from __future__ import annotations

import os
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible_collections.community.hashi_vault.plugins.module_utils._auth_method_token import HashiVaultAuthMethodToken
from ansible_collections.community.hashi_vault.plugins.module_utils._hashi_vault_module import HashiVaultModule
from ansible_collections.community.hashi_vault.plugins.modules import vault_kv2_get, vault_read

from ansible_collections.cti.misp_platform.plugins.action import vault_kv2_get as kv2_action
from ansible_collections.cti.misp_platform.plugins.action import vault_read as read_action
from ansible_collections.cti.misp_platform.plugins.plugin_utils import _vault_in_controller
from tests.action_plugin import action_plugin

ARGS = {"url": "http://127.0.0.1:8200", "token": "s.root-token", "path": "sys/mounts"}


class Client:
    """hvac's Client as run_module uses it: read answers from ``answers`` (a path's data or an exception)."""

    def __init__(self, seen, answers):
        self.seen, self.answers = seen, answers

    def read(self, path):
        self.seen.append(("read", path, self.token))
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def vault(monkeypatch):
    """The clients run_module makes (connection options and token as the module passes them)."""
    seen, answers = [], {"sys/mounts": {"data": {"secret/": {"type": "kv"}}}}

    def get_vault_client(self, **kwargs):
        seen.append(("client", kwargs["url"]))
        return Client(seen, answers)

    monkeypatch.setattr(_vault_in_controller.HashiVaultHelper, "get_vault_client", get_vault_client)

    def authenticate(self, client, use_token=True, lookup_self=False):
        client.token = self._options.get_option("token")

    monkeypatch.setattr(HashiVaultAuthMethodToken, "authenticate", authenticate)
    return seen, answers


def plugin(cls=read_action.ActionModule, transport="local", args=None, environment=None):
    return action_plugin(cls, dict(ARGS if args is None else args), transport=transport, environment=environment)


def test_a_local_connection_runs_the_modules_own_code_here(vault):
    seen, _answers = vault
    result = plugin().run(task_vars={})
    assert result["data"] == {"data": {"secret/": {"type": "kv"}}}
    assert seen == [("client", "http://127.0.0.1:8200"), ("read", "sys/mounts", "s.root-token")]
    # The token is masked as AnsibleModule masks a no_log option.
    assert result["invocation"]["module_args"]["token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert vault_read.HashiVaultModule is HashiVaultModule


def test_the_tasks_environment_reaches_the_options_fallbacks(vault, monkeypatch):
    seen, _answers = vault
    monkeypatch.setattr(os, "environ", {"PATH": "/usr/bin"})
    args = {"path": "sys/mounts", "token": "s.root-token"}
    plugin(args=args, environment=[{"VAULT_ADDR": "http://vault.example:8200"}]).run(task_vars={})
    assert seen[0] == ("client", "http://vault.example:8200")


def test_a_failed_read_has_the_modules_message_and_the_module_is_put_back(vault):
    _seen, answers = vault
    answers["sys/policies/acl/absent"] = None
    result = plugin(args={**ARGS, "path": "sys/policies/acl/absent"}).run(task_vars={})
    assert (result["failed"], result["msg"]) == (True, "The path 'sys/policies/acl/absent' doesn't seem to exist.")
    # What the module's process would end with if hvac raised: a failed result naming the error.
    answers["sys/mounts"] = ConnectionError("connection reset")
    result = plugin().run(task_vars={})
    assert (result["failed"], result["msg"]) == (True, "ConnectionError: connection reset")
    assert vault_read.HashiVaultModule is HashiVaultModule


def test_bad_arguments_fail_naming_them_before_any_request(vault):
    seen, _answers = vault
    with pytest.raises(AnsibleActionFail, match="missing required arguments: path"):
        plugin(args={"url": "http://127.0.0.1:8200"}).run(task_vars={})
    with pytest.raises(AnsibleActionFail, match=r"version.*int"):
        plugin(kv2_action.ActionModule, args={**ARGS, "path": "app", "version": "latest"}).run(task_vars={})
    with pytest.raises(
        AnsibleActionFail, match=r"Unsupported parameters for \(community.hashi_vault.vault_read\).*mount"
    ):
        plugin(args={**ARGS, "mount": "misp"}).run(task_vars={})
    assert seen == []


def test_a_module_whose_options_changed_is_refused(vault, monkeypatch):
    # As if community.hashi_vault's vault_kv2_get took an option the arguments were not checked for.
    original = vault_kv2_get.run_module

    def run_module():
        spec = vault_kv2_get.HashiVaultModule.generate_argspec(
            path={"type": "str", "required": True}, cas={"type": "int"}
        )
        vault_kv2_get.HashiVaultModule(argument_spec=spec, supports_check_mode=True)

    monkeypatch.setattr(vault_kv2_get, "run_module", run_module)
    result = plugin(kv2_action.ActionModule, args={**ARGS, "path": "app"}).run(task_vars={})
    assert result["failed"]
    assert "not the one its arguments were checked against" in result["msg"]
    monkeypatch.setattr(vault_kv2_get, "run_module", original)
    assert vault_kv2_get.HashiVaultModule is HashiVaultModule


@pytest.mark.parametrize("local_without_library", [False, True])
def test_another_connection_or_no_hvac_runs_community_hashi_vaults_module(vault, monkeypatch, local_without_library):
    monkeypatch.setattr(_vault_in_controller, "HAS_HVAC", not local_without_library)
    task = plugin(kv2_action.ActionModule, transport="local" if local_without_library else "ssh")
    task._execute_module = MagicMock(return_value={"changed": False, "secret": {}})
    task._remove_tmp_path = MagicMock()
    assert task.run(task_vars={"x": 1}) == {"changed": False, "secret": {}}
    task._execute_module.assert_called_once_with(
        module_name="community.hashi_vault.vault_kv2_get", module_args=ARGS, task_vars={"x": 1}
    )
    seen, _answers = vault
    assert seen == []
