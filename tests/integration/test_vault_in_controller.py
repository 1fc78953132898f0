"""vault_read and vault_kv2_get against an OpenBao dev server: what community.hashi_vault's modules
read and the messages they fail with, read in the controller (a module process could not even
start: its interpreter does not exist)."""

from __future__ import annotations

import json
from pathlib import Path

import hvac
import pytest

pytestmark = pytest.mark.rig

PLAYBOOK = Path(__file__).parent / "targets" / "vault_in_controller" / "read.yml"
NO_PYTHON = "/nonexistent/python3"
SECRET = {"username": "misp", "password": "kept-in-vault"}


@pytest.fixture(scope="module")
def bao(openbao):
    client = hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])
    # The dev server's KV version 2 mount secret/.
    client.secrets.kv.v2.create_or_update_secret(path="vr-test/app", secret=SECRET, mount_point="secret")
    client.secrets.kv.v2.create_or_update_secret(path="vr-test/app", secret=SECRET, mount_point="secret")
    return client


@pytest.fixture(scope="module")
def weak_token(bao):
    """A token with only the default policy: it may look itself up, not read sys/mounts or secrets."""
    return bao.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]


@pytest.fixture
def read(run_playbook, openbao, tmp_path):
    def run(module, args, token=None, auth_method="token", env=None):
        extra = {
            "vr_module": module,
            "vr_args": args,
            "vr_url": openbao["VAULT_ADDR"],
            "vr_token": token or openbao["VAULT_TOKEN"],
            "vr_auth_method": auth_method,
            "vr_result_path": str(tmp_path / "result.json"),
            "vr_interpreter": NO_PYTHON,
        }
        played = run_playbook(PLAYBOOK, extra, env=env)
        assert played.rc == 0, played.stdout[-3000:]
        result = json.loads((tmp_path / "result.json").read_text())
        return result["ours"], result["core"], played

    return run


def test_a_read_gives_what_vault_read_gives(read, bao):
    ours, core, _played = read("vault_read", {"path": "sys/mounts"})
    assert not ours.get("failed"), ours
    assert ours["data"]["data"] == core["data"]["data"]
    assert "secret/" in ours["data"]["data"]


def test_a_read_without_a_token_reaches_vault_as_vault_read_does(read):
    ours, core, _played = read("vault_read", {"path": "sys/health"}, auth_method="none")
    assert (ours["data"]["initialized"], ours["data"]["sealed"]) == (True, False)
    assert sorted(ours["data"]) == sorted(core["data"])


@pytest.mark.parametrize(
    ("module", "args", "weak", "message"),
    [
        ("vault_read", {"path": "sys/policies/acl/absent"}, False, "The path 'sys/policies/acl/absent' doesn't seem"),
        ("vault_read", {"path": "sys/mounts"}, True, "Forbidden: Permission Denied to path 'sys/mounts'"),
        ("vault_kv2_get", {"engine_mount_point": "secret", "path": "vr-test/absent"}, False, "Invalid or missing path"),
        (
            "vault_kv2_get",
            {"engine_mount_point": "secret", "path": "vr-test/app"},
            True,
            "Forbidden: Permission Denied",
        ),
    ],
)
def test_a_refused_read_fails_with_the_modules_message(read, weak_token, module, args, weak, message):
    ours, core, _played = read(module, args, token=weak_token if weak else None)
    assert ours["failed"] and core["failed"]
    assert ours["msg"] == core["msg"]
    assert message in ours["msg"]


def test_a_secret_reads_as_vault_kv2_get_reads_it(read, bao):
    ours, core, _played = read("vault_kv2_get", {"engine_mount_point": "secret", "path": "vr-test/app"})
    assert ours["secret"] == core["secret"] == SECRET
    assert ours["metadata"] == core["metadata"]
    assert ours["metadata"]["version"] >= 2
    ours, core, _played = read("vault_kv2_get", {"engine_mount_point": "secret", "path": "vr-test/app", "version": 1})
    assert (ours["metadata"]["version"], core["metadata"]["version"]) == (1, 1)


def test_the_token_never_shows_in_the_result(read, openbao):
    # -vvv prints each result with the arguments the module ran with.
    ours, _core, played = read(
        "vault_kv2_get", {"engine_mount_point": "secret", "path": "vr-test/app"}, env={"ANSIBLE_VERBOSITY": "3"}
    )
    assert openbao["VAULT_TOKEN"] not in json.dumps(ours)
    assert openbao["VAULT_TOKEN"] not in played.stdout
    assert played.stdout.count("token: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER") == 2, played.stdout[-3000:]


def test_a_missing_option_is_named_before_any_request(read):
    ours, core, _played = read("vault_read", {})
    assert ours["failed"] and core["failed"]
    assert "missing required arguments: path" in ours["msg"]
