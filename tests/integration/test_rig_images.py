"""The rig's images (tests/rig/images.sh): built here from Debian, pushed to the loopback
registry, pulled by digest, and each keeping the contract the roles and the real node rely on.
The containers run under podman; the real node's use of them is in test_rig_nodes.py."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.rig import RIG_CACHE, RIG_DIR, rig_image

IMAGES = json.loads((RIG_CACHE / "images" / "images.json").read_text()) if (RIG_CACHE / "images").exists() else {}
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=check)


def run(image: str, *command: str, options: tuple[str, ...] = (), check: bool = True) -> subprocess.CompletedProcess:
    return podman("run", "--rm", "--tls-verify=false", *options, rig_image(image), *command, check=check)


@pytest.fixture
def container():
    """A unique container name; the container is removed afterwards."""
    name = f"cti-rig-img-{uuid.uuid4().hex[:8]}"
    yield name
    podman("rm", "-f", "-t", "0", name, check=False)


def test_registry_listens_on_loopback_only():
    port = int(IMAGES["pause"]["repository"].split("/")[0].rsplit(":", 1)[1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                listening.append(address)
    assert listening == ["0100007F"], f"port {port} listens on {listening}, not only on 127.0.0.1"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_image_is_in_the_registry_by_its_digest(name):
    entry = IMAGES[name]
    registry, repo = entry["repository"].split("/", 1)
    conn = HTTPConnection(registry, timeout=10)
    conn.request("HEAD", f"/v2/{repo}/manifests/{entry['digest']}", headers={"Accept": MANIFEST_TYPES})
    response = conn.getresponse()
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == entry["digest"]


def test_warm_build_rebuilds_and_pushes_nothing():
    out = subprocess.run(
        ["bash", str(RIG_DIR / "images.sh"), "build"], capture_output=True, text=True, timeout=300, check=True
    )
    lines = [line for line in out.stderr.splitlines() if " image " in line]
    assert sorted(line.split(" image ")[1].split(":")[0] for line in lines) == sorted(IMAGES)
    assert all(": cached (" in line for line in lines), out.stderr


def test_tools_image_has_the_clients_tests_and_jobs_use():
    out = run(
        "tools", "sh", "-c", "id -u; for c in curl nc mysqldump mariadb rclone python3 getent; do command -v $c; done"
    )
    lines = out.stdout.split()
    assert lines[0] == "33"
    assert len(lines) == 8, out.stdout


def test_pause_image_stays_up_and_stops_on_sigterm(container):
    podman("run", "-d", "--tls-verify=false", "--name", container, rig_image("pause"))
    time.sleep(1)
    assert podman("inspect", "-f", "{{.State.Running}}", container).stdout.strip() == "true"
    start = time.monotonic()
    podman("stop", "-t", "10", container)
    assert time.monotonic() - start < 5, "pause ignored SIGTERM and was killed after the timeout"


def test_redis_image_runs_as_999_with_the_roles_password_file(container):
    # The role's own start-up: the password goes through a file, not the command line.
    script = (
        'printf \'requirepass "%s"\\n\' "$REDIS_PASSWORD" > /tmp/redis.conf'
        " && exec redis-server /tmp/redis.conf --dir /data"
    )
    podman(
        "run", "-d", "--tls-verify=false", "--name", container, "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/data",
        "-e", "REDIS_PASSWORD=pw-7", "--entrypoint", "sh", rig_image("redis"), "-c", script,
    )  # fmt: skip
    ping = ["exec", "-e", "REDISCLI_AUTH=pw-7", container, "redis-cli", "ping"]
    for _attempt in range(30):
        if podman(*ping, check=False).stdout.strip() == "PONG":
            break
        time.sleep(0.5)
    assert podman(*ping).stdout.strip() == "PONG"
    assert "NOAUTH" in podman("exec", container, "redis-cli", "ping", check=False).stdout
    assert podman("exec", container, "id", "-u").stdout.strip() == "999"


def _mariadb(container: str, datadir, env: dict[str, str]) -> None:
    args = ["run", "-d", "--tls-verify=false", "--name", container, "--read-only", "-v", f"{datadir}:/var/lib/mysql"]
    for sub in ("run", "tmp"):
        path = datadir.parent / f"{datadir.name}-{sub}"
        path.mkdir(exist_ok=True)
        subprocess.run(["chown", "999:999", str(path)], check=True)
        args += ["-v", f"{path}:/{'run/mysqld' if sub == 'run' else 'tmp'}"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    podman(*args, rig_image("mariadb"), "--character-set-server=utf8mb4")


def _healthy(container: str) -> bool:
    check = ["exec", container, "healthcheck.sh", "--connect", "--innodb_initialized"]
    for _attempt in range(60):
        if podman(*check, check=False).returncode == 0:
            return True
        time.sleep(1)
    return False


def test_mariadb_image_initialises_once_with_the_roles_variables(container, tmp_path):
    datadir = tmp_path / "data"
    datadir.mkdir()
    subprocess.run(["chown", "999:999", str(datadir)], check=True)
    env = {
        "MARIADB_ROOT_PASSWORD": "r'o\\ot",
        "MARIADB_DATABASE": "misp",
        "MARIADB_USER": "misp",
        "MARIADB_PASSWORD": "pw",
    }
    _mariadb(container, datadir, env)
    assert _healthy(container), podman("logs", container, check=False).stderr
    assert podman("exec", container, "id", "-u").stdout.strip() == "999"
    sql = ["exec", container, "mariadb", "-umisp", "-ppw", "misp", "-sNe"]
    podman(*sql, "CREATE TABLE t (v INT); INSERT INTO t VALUES (42)")
    assert podman("exec", container, "mariadb", "-uroot", "-pr'o\\ot", "-sNe", "SELECT 1").stdout.strip() == "1"
    podman("rm", "-f", "-t", "5", container)
    # A second start on the same data keeps it and does not initialise again.
    _mariadb(container, datadir, {})
    assert _healthy(container), podman("logs", container, check=False).stderr
    assert podman(*sql, "SELECT v FROM t").stdout.strip() == "42"
    assert "initialising" not in podman("logs", container).stdout


def test_mariadb_image_refuses_an_empty_datadir_without_root_password(tmp_path):
    datadir = tmp_path / "data"
    datadir.mkdir()
    subprocess.run(["chown", "999:999", str(datadir)], check=True)
    out = run("mariadb", options=("-v", f"{datadir}:/var/lib/mysql"), check=False)
    assert out.returncode != 0
    assert "MARIADB_ROOT_PASSWORD is not set" in out.stderr
