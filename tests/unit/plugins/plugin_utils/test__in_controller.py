"""Unit tests of plugin_utils/_in_controller: the collection's modules run in the controller on a
local connection, as their modules would run, and on their host elsewhere."""

from __future__ import annotations

import os
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.cti.misp_platform.plugins.action import misp_settings as settings_action
from ansible_collections.cti.misp_platform.plugins.plugin_utils._in_controller import ControllerModule
from tests.action_plugin import action_plugin
from tests.doubles.misp_api import MispApiDouble

KEY = "controller-unit-key-5d2a9c7e3f1b8046"
# What AnsibleModule shows of a no_log value.
MASKED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def plugin(args, transport="local", environment=None, check_mode=False):
    return action_plugin(
        settings_action.ActionModule,
        args,
        transport=transport,
        environment=environment,
        check_mode=check_mode,
        diff=True,
    )


@pytest.fixture
def misp(monkeypatch):
    # The plugin writes the task's environment into this process's; the test gets it back.
    monkeypatch.setattr(os, "environ", {"PATH": os.environ.get("PATH", "")})
    with MispApiDouble(api_key=KEY) as double:
        yield double


def test_a_local_connection_runs_the_module_here_with_its_defaults(misp):
    result = plugin({"url": misp.url, "api_key": KEY, "settings": {"MISP.live": False}}).run(task_vars={})
    assert (result["changed"], result["changed_settings"]) == (True, ["MISP.live"])
    assert misp.settings["MISP.live"] is False
    # As AnsibleModule returns it: the arguments with the spec's defaults, the key masked.
    args = result["invocation"]["module_args"]
    assert (args["api_key"], args["read_strategy"], args["redacted"]) == (MASKED, "auto", "skip")


def test_check_mode_reaches_the_module(misp):
    result = plugin({"url": misp.url, "api_key": KEY, "settings": {"MISP.live": False}}, check_mode=True).run(
        task_vars={}
    )
    assert (result["changed"], misp.posts()) == (True, [])


def test_the_spec_s_fallbacks_read_the_task_s_environment(misp):
    environment = [{"MISP_URL": misp.url, "MISP_API_KEY": KEY}]
    result = plugin({"settings": {"MISP.live": False}}, environment=environment).run(task_vars={})
    assert result["changed_settings"] == ["MISP.live"], result


def test_a_failure_masks_the_values_never_to_show(misp):
    secret = "redis-canary-5150"
    args = {"url": misp.url, "api_key": "wrong-" + secret, "secret_settings": {"MISP.redis_password": secret}}
    result = plugin(args).run(task_vars={})
    assert result["failed"] is True
    assert secret not in repr(result)
    assert result["invocation"]["module_args"]["secret_settings"] == {"MISP.redis_password": MASKED}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"api_key": KEY}, "missing required arguments: url"),
        ({"url": "http://127.0.0.1:9", "api_key": KEY, "redacted": "always"}, "redacted must be one of: skip, write"),
        ({"url": "http://127.0.0.1:9", "api_key": KEY, "colour": 1}, r"Unsupported parameters for \(cti.misp_platform"),
    ],
)
def test_bad_arguments_fail_naming_them_before_anything_is_sent(misp, args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        plugin(args).run(task_vars={})
    assert misp.requests == []


def test_another_connection_runs_the_module_on_that_host():
    args = {"url": "https://misp.example.org", "api_key": KEY}
    remote = plugin(args, transport="ssh")
    remote._execute_module = MagicMock(return_value={"changed": False})
    remote._remove_tmp_path = MagicMock()
    assert remote.run(task_vars={"x": 1}) == {"changed": False}
    remote._execute_module.assert_called_once_with(
        module_name="cti.misp_platform.misp_settings", module_args=args, task_vars={"x": 1}
    )


def test_warnings_are_returned_as_a_module_returns_them():
    def entry_point(module):
        module.warn("careful")
        module.exit_json(changed=False)

    module = ControllerModule({"a": 1}, check_mode=False, diff=False, no_log_values=set())
    expected = {"changed": False, "warnings": ["careful"], "invocation": {"module_args": {"a": 1}}}
    assert module.run(entry_point) == expected


def test_an_entry_point_that_never_exits_is_a_bug_named_as_such():
    module = ControllerModule({}, check_mode=False, diff=False, no_log_values=set())
    with pytest.raises(RuntimeError, match="without exit_json or fail_json"):
        module.run(lambda module: None)


def test_an_entry_point_that_raises_fails_as_a_module_process_would_with_values_masked():
    # A module process that raises ends with a failed result, which failed_when and ignore_errors
    # see; an exception out of the action plugin would end the task whatever they say.
    def entry_point(module):
        raise ConnectionError(f"cannot reach http://admin:{module.params['password']}@vault:8200")

    module = ControllerModule({"password": "s3cret"}, check_mode=False, diff=False, no_log_values={"s3cret"})
    result = module.run(entry_point)
    assert result["failed"] is True
    assert result["msg"] == "ConnectionError: cannot reach http://admin:********@vault:8200"
    assert "s3cret" not in str(result)
    assert "Traceback" in result["exception"]
