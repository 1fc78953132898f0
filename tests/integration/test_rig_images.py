"""The rig's images (tests/rig/images.sh): built here from Debian, pushed to the loopback
registry, pulled by digest, and each keeping the contract the roles and the real node rely on.
The containers run under podman; the real node's use of them is in test_rig_nodes.py. A second
registry of a temporary cache, on a port of its own, shows starting, pushing and stopping without
touching the shared one."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.integration._helpers import pid_taken_after_stop
from tests.rig import RIG_CACHE, RIG_DIR, rig_image, versions

IMAGES_JSON = RIG_CACHE / "images" / "images.json"
IMAGES = json.loads(IMAGES_JSON.read_text()) if IMAGES_JSON.exists() else {}
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
# What the roles' manifests and the rig's add-ons expect of each image: a numeric user (kubelet
# checks runAsNonRoot against it; "" is root), the entrypoint and the command.
CONTRACT = {
    "pause": ("65535:65535", ["/pause", "-P"], None),
    "coredns": ("", ["/coredns"], None),
    "metrics-server": ("65534:65534", ["/metrics-server"], None),
    "kube-network-policies": ("", ["/kube-network-policies"], None),
    "tools": ("33:33", None, ["sleep", "infinity"]),
    "mariadb": ("999:999", ["docker-entrypoint.sh"], ["mariadbd"]),
    "redis": ("999:999", None, ["redis-server", "--protected-mode", "no"]),
}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=check)


def run(image: str, *command: str, options: tuple[str, ...] = (), check: bool = True) -> subprocess.CompletedProcess:
    return podman("run", "--rm", "--tls-verify=false", *options, rig_image(image), *command, check=check)


def images_sh(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(RIG_DIR / "images.sh"), *args], env=env, capture_output=True, text=True, timeout=300, check=check
    )


def get(registry: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = HTTPConnection(registry, timeout=10)
    conn.request("GET", path, headers={"Accept": MANIFEST_TYPES})
    response = conn.getresponse()
    return response.status, dict(response.headers), response.read()


def address(container: str) -> str:
    """The container's address on podman's network, not loopback."""
    return podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()


@pytest.fixture
def container():
    """A unique container name; the container is removed afterwards."""
    name = f"cti-rig-img-{uuid.uuid4().hex[:8]}"
    yield name
    podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture
def own_registry(tmp_path):
    """env for images.sh with a temporary cache (sharing the built binaries) and a free port."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "bin").symlink_to(RIG_CACHE / "bin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CTI_RIG_CACHE": str(cache), "CTI_RIG_REGISTRY_PORT": str(port)}
    yield env
    images_sh("registry-down", env=env)


def test_every_image_is_built():
    names = images_sh("names").stdout.split()
    assert set(CONTRACT) <= set(names)
    # images.json is shared by every checkout on the machine: it may also hold images that
    # another checkout builds.
    assert not set(names) - set(IMAGES), f"not built: {sorted(set(names) - set(IMAGES))}"


def test_registry_listens_on_loopback_only():
    port = int(IMAGES["pause"]["repository"].split("/")[0].rsplit(":", 1)[1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            ip, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                listening.append(ip)
    assert listening == ["0100007F"], f"port {port} listens on {listening}, not only on 127.0.0.1"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_image_is_in_the_registry_by_its_digest_with_the_expected_user_and_command(name):
    entry = IMAGES[name]
    registry, repo = entry["repository"].split("/", 1)
    status, headers, body = get(registry, f"/v2/{repo}/manifests/{entry['digest']}")
    assert status == 200
    assert headers["Docker-Content-Digest"] == entry["digest"]
    status, _headers, body = get(registry, f"/v2/{repo}/blobs/{json.loads(body)['config']['digest']}")
    assert status == 200
    config = json.loads(body)["config"]
    assert (config.get("User", ""), config.get("Entrypoint"), config.get("Cmd")) == CONTRACT[name]


def test_warm_build_rebuilds_and_pushes_nothing():
    out = images_sh("build").stderr
    progress = dict(re.findall(r" image (\S+): (.*)", out))
    assert progress == {name: f"cached ({entry['digest']})" for name, entry in IMAGES.items()}, out
    assert "base:" not in out


def test_build_refuses_an_unknown_image_name():
    out = images_sh("build", "mariadb", "postgres", check=False)
    assert out.returncode != 0
    assert "no image named 'postgres'" in out.stderr


def test_registry_without_the_images_gets_them_pushed_not_rebuilt(own_registry):
    port = own_registry["CTI_RIG_REGISTRY_PORT"]
    out = images_sh("build", "pause", "coredns", env=own_registry).stderr
    assert f"registry: starting on 127.0.0.1:{port}" in out
    assert "built and pushed" not in out, out
    pushed = json.loads((Path(own_registry["CTI_RIG_CACHE"]) / "images" / "images.json").read_text())
    assert sorted(pushed) == ["coredns", "pause"]
    for name, entry in pushed.items():
        assert f"image {name}: pushed (built before, missing from the registry)" in out
        assert entry["repository"] == f"127.0.0.1:{port}/cti-rig/{name}"
        status, headers, _body = get(f"127.0.0.1:{port}", f"/v2/cti-rig/{name}/manifests/{entry['digest']}")
        assert (status, headers["Docker-Content-Digest"]) == (200, entry["digest"])
    again = images_sh("build", "pause", env=own_registry).stderr
    assert "registry: answering" in again
    assert "image pause: cached" in again


def test_two_setups_start_one_registry_and_stop_it(own_registry):
    port = int(own_registry["CTI_RIG_REGISTRY_PORT"])
    starts = [
        subprocess.Popen(
            ["bash", str(RIG_DIR / "images.sh"), "registry"], env=own_registry, stderr=subprocess.PIPE, text=True
        )
        for _twice in range(2)
    ]
    logs = [start.communicate(timeout=60)[1] for start in starts]
    assert [start.returncode for start in starts] == [0, 0], logs
    assert sorted("registry: starting" in log for log in logs) == [False, True], logs
    pid_file = Path(own_registry["CTI_RIG_CACHE"]) / "registry" / "registry.pid"
    pid = int(pid_file.read_text())
    serving = [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p).endswith(f"serve {pid_file.parent}/config.yml")]
    assert [int(p.name) for p in serving] == [pid]

    assert "registry: stopped" in images_sh("registry-down", env=own_registry).stderr
    assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert "registry: not running" in images_sh("registry-down", env=own_registry).stderr


def test_registry_down_never_kills_what_the_registrys_pid_became(own_registry):
    # A "registry" that, asked to stop, becomes another program under the same pid: as if its pid
    # had been reused by another process before the SIGKILL that follows the grace period.
    pid_file = Path(own_registry["CTI_RIG_CACHE"]) / "registry" / "registry.pid"
    pid_file.parent.mkdir()
    with pid_taken_after_stop("serve", f"{pid_file.parent}/config.yml") as other:
        pid_file.write_text(f"{other.pid}\n")
        assert "registry: stopped" in images_sh("registry-down", env=own_registry).stderr
        assert other.poll() is None, "the process that took the registry's pid was killed"
        assert _cmdline(Path(f"/proc/{other.pid}")) == "sleep 300"
        assert not pid_file.exists()


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_tools_image_has_the_clients_tests_and_jobs_use():
    commands = "curl nc dig mariadb mariadb-dump mysqldump rclone python3 tar gzip sha256sum getent"
    out = run("tools", "sh", "-c", f"id -u; for c in {commands}; do command -v $c || echo missing $c; done")
    assert out.stdout.split()[0] == "33"
    assert "missing" not in out.stdout, out.stdout


def test_tools_image_runs_rclone_as_the_jobs_do(tmp_path):
    # As in the backup Job: uid 33, read-only root, an rclone remote "s3" from the environment only.
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "SHA256SUMS").write_text("x\n")
    options = ("--read-only", "--tmpfs", "/tmp", "-v", f"{tmp_path / 'backup'}:/backup:ro")
    out = run("tools", "rclone", "lsf", "s3:/backup", options=(*options, "-e", "RCLONE_CONFIG_S3_TYPE=local"))
    assert out.stdout.split() == ["SHA256SUMS"]


def test_coredns_image_runs_its_version():
    assert run("coredns", "-version").stdout.startswith(f"CoreDNS-{versions()['COREDNS_VERSION'].removeprefix('v')}")


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
    cli = ["exec", "-e", "REDISCLI_AUTH=pw-7", container, "redis-cli"]
    ping = [*cli, "ping"]
    for _attempt in range(30):
        if podman(*ping, check=False).stdout.strip() == "PONG":
            break
        time.sleep(0.5)
    assert podman(*ping).stdout.strip() == "PONG"
    # Clients come through the Service: the server answers on the pod's address too.
    assert podman(*cli, "-h", address(container), "ping").stdout.strip() == "PONG"
    assert "NOAUTH" in podman("exec", container, "redis-cli", "ping", check=False).stdout
    assert podman("exec", container, "id", "-u").stdout.strip() == "999"


def _mariadb(container: str, datadir: Path, env: dict[str, str], *args: str, mounts: tuple[str, ...] = ()) -> None:
    """Runs the image as roles/misp_database does: uid 999, read-only root, emptyDirs on
    /run/mysqld and /tmp, the data volume on /var/lib/mysql; ARGS are the container's."""
    options = ["--read-only", "-v", f"{datadir}:/var/lib/mysql", *mounts]
    for sub, mount in (("run", "/run/mysqld"), ("tmp", "/tmp")):
        path = datadir.parent / f"{datadir.name}-{sub}"
        path.mkdir(exist_ok=True)
        os.chown(path, 999, 999)
        options += ["-v", f"{path}:{mount}"]
    for key, value in env.items():
        options += ["-e", f"{key}={value}"]
    podman("run", "-d", "--tls-verify=false", "--name", container, *options, rig_image("mariadb"), *args)


def _healthy(container: str, *checks: str) -> bool:
    check = ["exec", container, "healthcheck.sh", *(checks or ("--connect", "--innodb_initialized"))]
    for _attempt in range(60):
        if podman(*check, check=False).returncode == 0:
            return True
        time.sleep(1)
    return False


def _datadir(tmp_path: Path) -> Path:
    datadir = tmp_path / "data"
    datadir.mkdir()
    os.chown(datadir, 999, 999)
    return datadir


def test_mariadb_image_initialises_once_with_the_roles_variables(container, tmp_path):
    datadir = _datadir(tmp_path)
    secret = tmp_path / "root-password"
    secret.write_text("r'o\\o`t\n")
    secret.chmod(0o644)
    env = {
        "MARIADB_ROOT_PASSWORD_FILE": "/run/secrets/root-password",
        "MARIADB_DATABASE": "misp",
        "MARIADB_USER": "misp",
        "MARIADB_PASSWORD": "pw",
    }
    _mariadb(container, datadir, env, mounts=("-v", f"{secret}:/run/secrets/root-password:ro"))
    assert _healthy(container), podman("logs", container, check=False).stderr
    assert podman("exec", container, "id", "-u").stdout.strip() == "999"
    # Over TCP to the container's own address, as the Service sends MISP's connections.
    tcp = ["exec", container, "mariadb", "--protocol=tcp", "-h", address(container)]
    podman(*tcp, "-umisp", "-ppw", "misp", "-e", "CREATE TABLE t (v INT); INSERT INTO t VALUES (42)")
    query = "SELECT @@skip_name_resolve, (SELECT COUNT(*) FROM mysql.user WHERE user = '')"
    root = podman(*tcp, "-uroot", "-pr'o\\o`t", "-sNe", query)
    assert root.stdout.split() == ["1", "0"], root.stdout + root.stderr
    podman("rm", "-f", "-t", "5", container)

    # A second start on the same data keeps it and does not initialise again.
    _mariadb(container, datadir, {})
    assert _healthy(container), podman("logs", container, check=False).stderr
    socket_sql = ["exec", container, "mariadb", "-umisp", "-ppw", "misp", "-sNe"]
    assert podman(*socket_sql, "SELECT v FROM t").stdout.strip() == "42"
    logs = podman("logs", container)
    assert "initialising" not in logs.stdout + logs.stderr
    podman("rm", "-f", "-t", "5", container)

    # --connect logs in over TCP: a server without networking (as while initialising) fails it.
    _mariadb(container, datadir, {}, "--skip-networking")
    assert _healthy(container, "--innodb_initialized"), podman("logs", container, check=False).stderr
    failed = podman("exec", container, "healthcheck.sh", "--connect", check=False)
    assert failed.returncode == 1
    assert "--connect failed" in failed.stderr


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({}, "MARIADB_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD_FILE) is not set"),
        ({"MARIADB_ROOT_PASSWORD": "r", "MARIADB_USER": "misp"}, "MARIADB_USER=misp is set without MARIADB_PASSWORD"),
        ({"MARIADB_ROOT_PASSWORD": "r", "MARIADB_USER": "root", "MARIADB_PASSWORD": "p"}, "MARIADB_USER=root"),
        (
            {"MARIADB_ROOT_PASSWORD": "r", "MARIADB_ROOT_PASSWORD_FILE": "/etc/hostname"},
            "both MARIADB_ROOT_PASSWORD and MARIADB_ROOT_PASSWORD_FILE are set",
        ),
        (
            {"MARIADB_ROOT_PASSWORD_FILE": "/run/secrets/none"},
            "MARIADB_ROOT_PASSWORD_FILE: cannot read /run/secrets/none",
        ),
    ],
)
def test_mariadb_image_refuses_to_initialise_with_bad_variables(tmp_path, env, error):
    options = ["-v", f"{_datadir(tmp_path)}:/var/lib/mysql"]
    for key, value in env.items():
        options += ["-e", f"{key}={value}"]
    out = run("mariadb", options=tuple(options), check=False)
    assert out.returncode != 0
    assert error in out.stderr
