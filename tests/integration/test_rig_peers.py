"""Smoke tests of the peer launchers: each real server works with its generated credentials.

The session fixtures (conftest.py) also check, when they stop each peer, that none of its
processes and not its port outlive it.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import hvac
import pymysql
import pytest
import redis as redis_py
from keycloak import KeycloakAdmin

from tests.rig.peers import keycloak as keycloak_peer
from tests.rig.peers._base import REPO, PeerError

TARGET = Path(__file__).parent / "targets" / "rig_peers"


def test_openbao_kv2_secret_round_trips(openbao, run_playbook):
    path = f"rig-smoke/{secrets.token_hex(4)}"
    data = {"username": "misp", "password": secrets.token_urlsafe(16)}
    extravars = {
        "vault_addr": openbao["VAULT_ADDR"],
        "vault_token": openbao["VAULT_TOKEN"],
        "secret_path": path,
        "secret_data": data,
    }

    first = run_playbook(TARGET / "vault_kv2.yml", extravars)
    assert first.rc == 0, first.stdout + first.stderr
    assert first.changed == 1  # the write; the read and the assert change nothing

    # Independently of community.hashi_vault: the secret is in OpenBao as written.
    client = hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"])
    stored = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    assert stored["data"]["data"] == data
    assert stored["data"]["metadata"]["version"] == 1

    again = run_playbook(TARGET / "vault_kv2.yml", extravars)
    assert again.rc == 0, again.stdout + again.stderr
    assert again.changed == 0
    assert client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]["current_version"] == 1


def test_openbao_refuses_a_wrong_token(openbao):
    client = hvac.Client(url=openbao["VAULT_ADDR"], token=secrets.token_urlsafe(18))
    assert not client.is_authenticated()
    assert hvac.Client(url=openbao["VAULT_ADDR"], token=openbao["VAULT_TOKEN"]).is_authenticated()


def test_keycloak_realm_created_and_converged(keycloak, run_playbook):
    realm = f"cti-smoke-{secrets.token_hex(3)}"
    extravars = {
        "keycloak_url": keycloak["KEYCLOAK_URL"],
        "keycloak_admin_username": keycloak["KEYCLOAK_ADMIN_USERNAME"],
        "keycloak_admin_password": keycloak["KEYCLOAK_ADMIN_PASSWORD"],
        "realm_name": realm,
        "realm_display_name": "CTI rig smoke test",
    }

    first = run_playbook(TARGET / "keycloak_realm.yml", extravars)
    assert first.rc == 0, first.stdout + first.stderr
    assert first.changed == 1

    admin = KeycloakAdmin(
        server_url=keycloak["KEYCLOAK_URL"] + "/",
        username=keycloak["KEYCLOAK_ADMIN_USERNAME"],
        password=keycloak["KEYCLOAK_ADMIN_PASSWORD"],
        realm_name="master",
        timeout=120,
    )
    created = admin.get_realm(realm)
    assert created["realm"] == realm
    assert created["displayName"] == "CTI rig smoke test"
    assert created["enabled"] is True

    again = run_playbook(TARGET / "keycloak_realm.yml", extravars)
    assert again.rc == 0, again.stdout + again.stderr
    assert again.changed == 0


def test_keycloak_not_fetched_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(keycloak_peer, "RIG_CACHE", tmp_path / "empty-cache")
    with pytest.raises(PeerError, match=r"tests/rig/setup\.sh"):
        keycloak_peer.Keycloak(tmp_path / "state").start()


def test_mariadb_takes_the_generated_password_only(mariadb):
    tcp = {"host": mariadb["MARIADB_HOST"], "port": mariadb["MARIADB_PORT"], "user": mariadb["MARIADB_USER"]}
    with pymysql.connect(**tcp, password=mariadb["MARIADB_PASSWORD"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0] == "root@127.0.0.1"
    with (
        pymysql.connect(
            unix_socket=mariadb["MARIADB_SOCKET"], user=mariadb["MARIADB_USER"], password=mariadb["MARIADB_PASSWORD"]
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0] == "root@localhost"

    for wrong in (secrets.token_urlsafe(18), ""):
        with pytest.raises(pymysql.err.OperationalError) as denied:
            pymysql.connect(**tcp, password=wrong)
        assert denied.value.args[0] == 1045  # ER_ACCESS_DENIED_ERROR


def test_redis_needs_auth(redis):
    address = {"host": redis["REDIS_HOST"], "port": redis["REDIS_PORT"], "socket_timeout": 5}
    with redis_py.Redis(**address) as anonymous, pytest.raises(redis_py.exceptions.AuthenticationError):
        anonymous.set("rig-smoke", "1")
    with (
        redis_py.Redis(**address, password=secrets.token_urlsafe(18)) as wrong,
        pytest.raises(redis_py.exceptions.AuthenticationError),
    ):
        wrong.ping()
    with redis_py.Redis(**address, password=redis["REDIS_PASSWORD"]) as client:
        assert client.set("rig-smoke", "1")
        assert client.get("rig-smoke") == b"1"
        # Not persisted unless asked.
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"


SHELL_PEERS = {
    "openbao": lambda env: int(env["VAULT_ADDR"].rsplit(":", 1)[1]),
    "mariadb": lambda env: env["MARIADB_PORT"],
    "redis": lambda env: env["REDIS_PORT"],
}


@pytest.mark.parametrize("name", SHELL_PEERS)
def test_shell_launcher_start_env_stop_leaves_nothing(name, tmp_path, assert_gone):
    def launcher(action):
        return subprocess.run(
            [sys.executable, "-m", f"tests.rig.peers.{name}", action, "--state-dir", str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = launcher("start")
    assert started.returncode == 0, started.stderr
    env = json.loads(started.stdout)
    sid = int((tmp_path / "pid").read_text().split()[0])
    shown = launcher("env")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == env

    stopped = launcher("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert_gone(name, sid, SHELL_PEERS[name](env))
    assert launcher("env").returncode != 0  # nothing running, nothing to hand out


def test_stop_leaves_alone_the_process_that_now_has_a_killed_runs_pid(tmp_path):
    # A killed run leaves its pid file; after a reboot its pid may be a new session leader's.
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "pid").write_text(f"{other.pid} 1")
        stopped = subprocess.run(
            [sys.executable, "-m", "tests.rig.peers.redis", "stop", "--state-dir", str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert stopped.returncode == 0, stopped.stderr
        assert other.poll() is None, "the other process was stopped"
        assert not (tmp_path / "pid").exists()
    finally:
        other.kill()
        other.wait()
