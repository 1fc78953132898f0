"""The MISP stand-in image (tests/rig/images/misp, PHP double tests/doubles/misp_php) run with
the files the roles render and the commands their pod templates give it.

One stack under podman for the module, shaped like the pods: MariaDB and Redis from the rig's
images, the misp-update Job's update.sh, two frontends (each a podman pod of nginx and php-fpm
sharing a network namespace, as the Deployment's containers do), the workers' supervisord and
the CronJobs' cake commands. Every MISP container runs as uid 33 with a read-only root, the
ConfigMap's files mounted one by one, emptyDirs on /tmp and app/tmp (seeded by prepare-tmp's
command) and the shared files volume. The containers sit on a podman network of their own with
fixed addresses; the tests reach the frontends only through ports published on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import socket
import subprocess
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path

import pytest
import yaml

import tests.integration.test_misp_settings as settings_cases
from tests.doubles.misp_api.cases import ERROR_ANSWERS
from tests.doubles.misp_api.catalogue import definitions
from tests.playbook import ansible_playbook
from tests.rig import RIG_CACHE, rig_image

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "tests/integration/targets/misp_image/render.yml"
SETTINGS_JSON = ROOT / "tests/doubles/misp_php/app/Lib/settings.json"
IMAGES = RIG_CACHE / "images" / "images.json"
MISP = "/var/www/MISP"
# MISP's API keys are 40 alphanumeric characters (UserShell::change_authkey refuses others).
KEY = secrets.token_hex(20)
REDIS_PASSWORD = "redis0pass0word0letters0digits0"
ENV = {
    "MISP_SALT": secrets.token_hex(20),
    "MISP_ENCRYPTION_KEY": secrets.token_hex(20),
    "MISP_UUID": str(uuid.uuid4()),
    "MISP_GPG_PASSPHRASE": "gpg-passphrase",
    "MYSQL_USER": "misp",
    "MYSQL_PASSWORD": "database-password",
    "REDIS_PASSWORD": REDIS_PASSWORD,
    "SUPERVISOR_USERNAME": "supervisor",
    "SUPERVISOR_PASSWORD": "supervisor-password",
}
# The files of ConfigMap misp-config that misp_common mounts over the image's app/Config.
CONFIG_FILES = ("config.php", "database.php", "email.php", "bootstrap.php", "core.php")
PHP_EXTENSIONS = {"redis", "pdo_mysql", "mysqli", "gd", "intl", "mbstring", "curl", "xml", "zip"}
PROGRAMS = ("nginx", "supervisord", "supervisorctl", "mysql", "mysqldump", "rsync", "gpg", "curl", "bash")
AUTH_FAILED = (
    "Authentication failed. Please make sure you pass the API key of an API enabled user along in the "
    "Authorization header."
)


def podman(*args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=check)


def template_command(role: str, template: str, container: str, binary: str) -> list[str]:
    """The ``command:`` of CONTAINER in a role's pod template (the php-fpm binary variable
    replaced by its value)."""
    text = (ROOT / "roles" / role / "templates" / template).read_text()
    match = re.search(rf"- name: {container}\n(?:\s+\S.*\n)*?\s+command: (\[.*\])\n", text)
    assert match, f"no command for {container} in {template}"
    return yaml.safe_load(match.group(1).replace("{{ misp_common_php_fpm_binary }}", binary))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """The podman objects of one test module: names, addresses and how each container runs."""

    def __init__(self, tmp: Path):
        self.id = uuid.uuid4().hex[:6]
        self.tmp = tmp
        self.network = f"cti-misp-image-{self.id}"
        self.out = tmp / "rendered"
        self.files = tmp / "files"
        self.containers: list[str] = []
        self.pods: list[str] = []
        self.ports: dict[str, int] = {}
        self.image = rig_image("misp")

    def name(self, role: str) -> str:
        return f"cti-misp-{role}-{self.id}"

    def render(self) -> None:
        self.out.mkdir()
        result = ansible_playbook(RENDER, {"out_dir": str(self.out), "misp_base_url": "https://misp.example.org"})
        assert result.rc == 0, result.stdout[-3000:]
        self.commands = json.loads((self.out / "commands.json").read_text())

    def create_network(self) -> None:
        # A subnet of its own from the module's id, so parallel runs do not collide.
        octet = int(self.id[:2], 16) % 200 + 20
        self.subnet = f"10.{octet}.{int(self.id[2:4], 16)}"
        podman("network", "create", "--subnet", f"{self.subnet}.0/24", self.network)
        # Fixed MAC addresses too: a restarted backend keeps its neighbour entries valid.
        self.mac = f"02:00:{octet:02x}:{int(self.id[2:4], 16):02x}:00"
        self.hosts = [
            *("--add-host", f"misp-db:{self.subnet}.10", "--add-host", f"misp-redis:{self.subnet}.11"),
            *("--add-host", f"misp-workers:{self.subnet}.30"),
        ]
        # A container of its own (not in a pod, which owns /etc/hosts) on that network.
        self.attach = ["--network", self.network, *self.hosts]

    def fixed(self, host: int) -> list[str]:
        """Options of a backend container with a fixed address on the network."""
        return ["--network", self.network, "--ip", f"{self.subnet}.{host}", "--mac-address", f"{self.mac}:{host}"]

    def mounts(self, app_tmp: Path, *extra: tuple[str, str]) -> list[str]:
        """misp_common_app_volume_mounts under podman, plus EXTRA (host file, path)."""
        options = ["--read-only", "--user", "33:33", "--tmpfs", "/tmp:mode=1777"]
        for name in CONFIG_FILES:
            options += ["-v", f"{self.out / name}:{MISP}/app/Config/{name}:ro"]
        options += ["-v", f"{self.out}:/etc/misp-k8s:ro", "-v", f"{self.files}:{MISP}/app/files"]
        options += ["-v", f"{app_tmp}:{MISP}/app/tmp"]
        for source, target in extra:
            options += ["-v", f"{source}:{target}:ro"]
        for key, value in ENV.items():
            options += ["-e", f"{key}={value}"]
        return options

    def app_tmp(self, pod: str) -> Path:
        """A pod's app-tmp emptyDir, seeded by the prepare-tmp init container's command."""
        path = self.tmp / f"app-tmp-{pod}"
        path.mkdir()
        path.chmod(0o777)
        podman(
            "run", "--tls-verify=false", "--rm", "--read-only", "--user", "33:33", "-v", f"{path}:/prepare/app-tmp",
            self.image, *self.commands["prepare_tmp"],
        )  # fmt: skip
        return path

    def run(self, name: str, *options: str, command: list[str], detach: bool = True) -> subprocess.CompletedProcess:
        if detach:
            self.containers.append(name)
        return podman(
            "run", "--tls-verify=false", "-d" if detach else "--rm", "--name", name, *options, self.image, *command
        )

    def start_backends(self) -> None:
        db, redis = self.name("db"), self.name("redis")
        self.containers += [db, redis]
        podman(
            "run", "--tls-verify=false", "-d", "--name", db, *self.fixed(10),
            "-e", "MARIADB_ROOT_PASSWORD=root-password", "-e", "MARIADB_DATABASE=misp",
            "-e", f"MARIADB_USER={ENV['MYSQL_USER']}", "-e", f"MARIADB_PASSWORD={ENV['MYSQL_PASSWORD']}",
            rig_image("mariadb"),
        )  # fmt: skip
        podman(
            "run", "--tls-verify=false", "-d", "--name", redis, *self.fixed(11),
            rig_image("redis"), "redis-server", "--protected-mode", "no", "--requirepass", REDIS_PASSWORD,
        )  # fmt: skip
        wait_for(lambda: self.sql("SELECT 1", check=False).returncode == 0, "MariaDB to answer")

    def sql(self, query: str, check: bool = True) -> subprocess.CompletedProcess:
        return podman(
            "exec", self.name("db"), "mariadb", f"-u{ENV['MYSQL_USER']}", f"-p{ENV['MYSQL_PASSWORD']}",
            "-sNe", query, "misp", check=check,
        )  # fmt: skip

    def update(self) -> subprocess.CompletedProcess:
        """The misp-update Job: update.sh with the admin key from Secret misp-app."""
        options = self.mounts(
            self.app_tmp(f"update-{len(self.containers)}"), (self.out / "update.sh", "/etc/misp-update/update.sh")
        )
        return self.run(
            self.name("update"),
            *self.attach,
            *options,
            "-e",
            f"MISP_ADMIN_API_KEY={KEY}",
            command=self.commands["update"],
            detach=False,
        )

    def start_frontend(self, index: int) -> None:
        """A frontend pod: nginx and php-fpm with the Deployment's commands, port 8080 published."""
        pod = self.name(f"frontend-{index}")
        port = free_port()
        podman(
            "pod", "create", "--name", pod, "--network", self.network, "--ip", f"{self.subnet}.{20 + index}",
            "-p", f"127.0.0.1:{port}:8080", *self.hosts,
        )  # fmt: skip
        self.pods.append(pod)
        self.ports[pod] = port
        mounts = self.mounts(self.app_tmp(pod))
        binary = self.commands["php_fpm_binary"]
        nginx_mounts = ["--tmpfs", "/var/log/nginx", "--tmpfs", "/var/lib/nginx"]
        nginx = template_command("misp_frontend", "frontend-deployment.yaml.j2", "nginx", binary)
        fpm = template_command("misp_frontend", "frontend-deployment.yaml.j2", "php-fpm", binary)
        self.run(f"{pod}-nginx", "--pod", pod, *mounts, *nginx_mounts, command=nginx)
        self.run(f"{pod}-php-fpm", "--pod", pod, *mounts, command=fpm)
        wait_for(lambda: self.get(pod, "/users/heartbeat")[0] == 200, f"{pod} to answer its heartbeat")

    def start_workers(self) -> None:
        name = self.name("workers")
        options = self.mounts(self.app_tmp(name), (self.out / "supervisord.conf", "/etc/misp-workers/supervisord.conf"))
        command = template_command("misp_workers", "workers-deployment.yaml.j2", "supervisord", "")
        self.run(name, *self.attach, "--ip", f"{self.subnet}.30", *options, command=command)

    def cake(self, *args: str, check: bool = True, command: list[str] | None = None) -> subprocess.CompletedProcess:
        """A CronJob's container: cake with ARGS, or COMMAND (app-tmp seeded once for all)."""
        if not hasattr(self, "cron_tmp"):
            self.cron_tmp = self.app_tmp("cron")
        options = self.mounts(self.cron_tmp)
        command = command or [f"{MISP}/app/Console/cake", *args]
        return podman("run", "--tls-verify=false", "--rm", *self.attach, *options, self.image, *command, check=check)

    def request(self, pod, method, path, body=None, headers=None) -> tuple[int, object, dict[str, str]]:
        conn = HTTPConnection("127.0.0.1", self.ports[pod], timeout=20)
        payload = json.dumps(body) if body is not None else None
        conn.request(method, path, body=payload, headers={"Accept": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = raw.decode(errors="replace")
        return response.status, answer, dict(response.headers)

    def get(self, pod, path, **kwargs):
        try:
            return self.request(pod, "GET", path, **kwargs)[:2]
        except OSError as exc:
            return 0, str(exc)

    def api(self, pod, method, path, body=None):
        return self.request(pod, method, path, body, {"Authorization": KEY})[:2]

    def remove(self) -> None:
        for pod in self.pods:
            podman("pod", "rm", "-f", "-t", "0", pod, check=False)
        for name in self.containers:
            podman("rm", "-f", "-t", "0", name, check=False)
        podman("network", "rm", "-f", self.network, check=False)


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not IMAGES.exists() or "misp" not in json.loads(IMAGES.read_text()):
        pytest.fail("the misp image is not built: run tests/rig/images.sh build misp misp-v2")
    tmp = tmp_path_factory.mktemp("misp-image")
    tmp.chmod(0o755)
    stack = Stack(tmp)
    stack.files.mkdir()
    stack.files.chmod(0o777)
    try:
        stack.render()
        stack.create_network()
        stack.start_backends()
        stack.first_update = stack.update()
        stack.start_frontend(1)
        stack.start_frontend(2)
        stack.start_workers()
        yield stack
    finally:
        stack.remove()


def test_every_php_file_of_the_double_parses_with_the_images_php():
    script = f"find {MISP} -name '*.php' | sort | while read -r f; do php -l \"$f\" || exit 1; done"
    result = podman("run", "--tls-verify=false", "--rm", rig_image("misp"), "bash", "-c", script, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = re.findall(r"No syntax errors detected in (\S+)", result.stdout)
    assert {f"{MISP}/app/webroot/index.php", f"{MISP}/app/Console/cake.php", f"{MISP}/app/Lib/Misp.php"} <= set(parsed)


def test_php_double_has_the_python_doubles_setting_definitions():
    # One catalogue for both doubles; after a change of catalogue.py regenerate settings.json:
    # python -c 'import json; from tests.doubles.misp_api.catalogue import definitions;
    #   print(json.dumps(definitions(), indent=1))' > tests/doubles/misp_php/app/Lib/settings.json
    assert json.loads(SETTINGS_JSON.read_text()) == definitions()


def test_image_is_laid_out_as_misp_dockers_core_image():
    image = rig_image("misp")
    script = (
        "id -u; id -un; command -v php-fpm8.4 "
        + " ".join(PROGRAMS)
        + f"; php -m; cd {MISP}; ls app/Config.dist app/files.dist app/tmp app/tmp/cache; test -x app/Console/cake"
    )
    out = podman("run", "--tls-verify=false", "--rm", image, "bash", "-ec", script).stdout.split()
    assert out[:2] == ["33", "www-data"]
    assert len([line for line in out if line.startswith("/usr/")]) == len(PROGRAMS) + 1
    assert set(out) >= PHP_EXTENSIONS
    assert {"bootstrap.default.php", "core.default.php", "cache", "logs", "models", "persistent"} <= set(out)


def test_variant_has_another_digest_and_the_same_layers():
    built = json.loads(IMAGES.read_text())
    first, second = built["misp"], built["misp-v2"]
    assert first["repository"] == second["repository"]
    assert (first["tag"], second["tag"]) == ("v1", "v2")
    assert first["digest"] != second["digest"]
    for name in ("misp", "misp-v2"):
        podman("pull", "--tls-verify=false", "-q", rig_image(name))
    inspected = json.loads(podman("image", "inspect", rig_image("misp"), rig_image("misp-v2")).stdout)
    assert inspected[0]["RootFS"]["Layers"] == inspected[1]["RootFS"]["Layers"]
    assert [i["Labels"]["cti.misp-stand-in.variant"] for i in inspected] == ["v1", "v2"]
    variants = [
        podman("run", "--tls-verify=false", "--rm", rig_image(name), "printenv", "MISP_STAND_IN_VARIANT").stdout.strip()
        for name in ("misp", "misp-v2")
    ]
    assert variants == ["v1", "v2"]


def test_nginx_and_php_fpm_accept_the_roles_configurations(stack):
    options = stack.mounts(stack.app_tmp("config-test"))
    nginx = podman(
        "run",
        "--tls-verify=false",
        "--rm",
        *options,
        stack.image,
        "nginx",
        "-t",
        "-c",
        "/etc/misp-k8s/nginx.conf",
        check=False,
    )
    assert nginx.returncode == 0 and "test is successful" in nginx.stderr, nginx.stderr
    binary = stack.commands["php_fpm_binary"]
    fpm = podman(
        "run",
        "--tls-verify=false",
        "--rm",
        *options,
        stack.image,
        binary,
        "-t",
        "--fpm-config",
        "/etc/misp-k8s/php-fpm.conf",
        check=False,
    )
    assert fpm.returncode == 0 and "test is successful" in fpm.stderr, fpm.stderr


def test_update_job_prepares_the_files_the_database_and_the_admin_key(stack):
    assert stack.first_update.stdout.rstrip().endswith("done"), stack.first_update.stdout
    assert stack.sql("SELECT value FROM admin_settings WHERE setting = 'db_version'").stdout.strip() == "3"
    assert stack.sql("SELECT email, authkey, role_id, change_pw FROM users").stdout.split() == [
        "admin@admin.test", KEY, "1", "0",
    ]  # fmt: skip
    assert {p.name for p in stack.files.iterdir()} >= {"scripts", "certs", "img", "taxonomies", ".gnupg"}
    assert (stack.files / ".gnupg" / "trustdb.gpg").exists()
    # A second run (a new image) finds everything in place and changes no row.
    again = stack.update()
    assert again.stdout.rstrip().endswith("done")
    assert stack.sql("SELECT COUNT(*) FROM users").stdout.strip() == "1"


def test_settings_api_answers_as_misp_does(stack):
    front, other = stack.pods
    status, body = stack.api(front, "POST", "/servers/serverSettingsEdit/MISP.language", {"value": "fra"})
    assert (status, body["message"]) == (200, "Field updated")
    status, body = stack.api(other, "GET", "/servers/getSetting/MISP.language")
    assert (status, body["value"], body["type"]) == (200, "fra", "string")
    assert stack.sql("SELECT value FROM system_settings WHERE setting = 'MISP.language'").stdout.strip() == '"fra"'
    # MISP's REST casting pitfall: the string "false" saves as true.
    stack.api(front, "POST", "/servers/serverSettingsEdit/MISP.disable_emailing", {"value": "false"})
    assert stack.api(other, "GET", "/servers/getSetting/MISP.disable_emailing")[1]["value"] is True
    # The answers the Python double gives too (tests/doubles/misp_api/cases.py).
    for method, path, body, status, key, message in ERROR_ANSWERS:
        got_status, got = stack.api(front, method, path, body)
        assert (got_status, got[key]) == (status, message), (method, path, got)
    assert stack.get(front, "/servers/getSetting/MISP.language") == (
        403, {"name": AUTH_FAILED, "message": AUTH_FAILED, "url": "/servers/getSetting/MISP.language"},
    )  # fmt: skip
    final = {e["setting"]: e for e in stack.api(other, "GET", "/servers/serverSettings")[1]["finalSettings"]}
    assert final["MISP.language"]["value"] == "fra"
    assert final["Security.salt"]["value"] == "*****"
    assert final["MISP.baseurl"]["value"] == "https://misp.example.org"


def test_misp_settings_module_converges_on_the_php_double(stack, run_playbook):
    wanted = {"MISP.live": False, "Session.timeout": "90", "MISP.default_event_distribution": 0}
    variables = {"misp_url": f"http://127.0.0.1:{stack.ports[stack.pods[0]]}", "misp_api_key": KEY}
    rc, result, _output = settings_cases.play(run_playbook, {**variables, "misp_settings": wanted})
    assert rc == 0, result["msg"]
    assert result["changed_settings"] == list(wanted)
    rc, result, _output = settings_cases.play(run_playbook, {**variables, "misp_settings": wanted})
    assert (rc, result["_stats"]["changed"], result["unchanged_settings"]) == (0, 0, list(wanted))
    rows = stack.sql("SELECT setting, value FROM system_settings ORDER BY setting").stdout
    assert {"MISP.live\tfalse", "Session.timeout\t90", 'MISP.default_event_distribution\t"0"'} <= set(rows.splitlines())


def test_session_started_on_one_frontend_is_valid_on_the_other(stack):
    front, other = stack.pods
    status, body, headers = stack.request(front, "POST", "/users/login", headers={"Authorization": KEY})
    assert (status, body["User"]["id"], body["host"]) == (200, 1, front)
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith(f"MISP-{ENV['MISP_UUID']}=")
    status, body, _headers = stack.request(other, "GET", "/users/view/me", headers={"Cookie": cookie})
    assert (status, body["User"]["email"], body["host"]) == (200, "admin@admin.test", other)
    # The session lives in Redis (the pool's save handler), not in the pod.
    session_id = cookie.split("=", 1)[1]
    keys = podman(
        "exec", stack.name("redis"), "redis-cli", "-a", REDIS_PASSWORD, "--no-auth-warning", "-n", "14", "keys", "*"
    )
    assert f"PHPREDIS_SESSION:{session_id}" in keys.stdout.split()
    assert stack.request(other, "GET", "/users/view/me")[0] == 403
    assert stack.request(other, "GET", "/users/view/me", headers={"Cookie": f"{cookie}x"})[0] == 403


def test_job_queued_through_a_frontend_is_done_by_a_worker(stack):
    status, body = stack.api(stack.pods[1], "POST", "/jobs/enqueue/default", {"job_type": "stand_in"})
    assert status == 200
    job = body["id"]

    def done():
        return stack.api(stack.pods[0], "GET", f"/jobs/view/{job}")[1]["Job"]["status"] == 4

    wait_for(done, f"job {job} to be done")
    row = stack.api(stack.pods[0], "GET", f"/jobs/view/{job}")[1]["Job"]
    assert re.fullmatch(r"default_0\d", row["process_id"]), row
    assert stack.api(stack.pods[0], "POST", "/jobs/enqueue/nothing")[0] == 405


def test_workers_run_every_queue_under_supervisord_and_a_killed_one_comes_back(stack):
    name = stack.name("workers")
    expected = sorted(
        f"misp-workers:{queue}_{n:02d}"
        for queue in stack.commands["queues"]
        for n in range(stack.commands["processes"].get(queue, 1))
    )
    ctl = ["exec", name, "supervisorctl", "-s", "http://127.0.0.1:9001", "-u", ENV["SUPERVISOR_USERNAME"],
           "-p", ENV["SUPERVISOR_PASSWORD"], "status"]  # fmt: skip

    def running() -> dict[str, str]:
        lines = podman(*ctl, check=False).stdout.splitlines()
        return {line.split()[0]: line for line in lines if " RUNNING " in line}

    wait_for(lambda: sorted(running()) == expected, "every worker RUNNING")
    pid = re.search(r"pid (\d+)", running()["misp-workers:email_00"]).group(1)
    podman("exec", name, "kill", "-9", pid)
    wait_for(lambda: f"pid {pid}," not in running().get("misp-workers:email_00", f"pid {pid},"), "email_00 restarted")


def test_get_workers_lists_supervisords_workers_dead_from_another_pod(stack):
    def frontend_pids() -> set[int]:
        listed = podman("exec", f"{stack.pods[0]}-php-fpm", "ls", "/proc").stdout.split()
        return {int(entry) for entry in listed if entry.isdigit()}

    # The frontend's own processes come and go (php-fpm children, this ls): only pids present
    # or absent both before and after the answer say what MISP must have seen.
    before = frontend_pids()
    answer = stack.api(stack.pods[0], "GET", "/servers/getWorkers")[1]
    after = frontend_pids()
    stable = before & after
    unsure = before ^ after
    ctl = podman(
        "exec",
        stack.name("workers"),
        "supervisorctl",
        "-s",
        "http://127.0.0.1:9001",
        "-u",
        ENV["SUPERVISOR_USERNAME"],
        "-p",
        ENV["SUPERVISOR_PASSWORD"],
        "status",
        check=False,
    ).stdout
    for queue in stack.commands["queues"]:
        pids = sorted(int(pid) for pid in re.findall(rf"misp-workers:{queue}_\d+ +RUNNING +pid (\d+)", ctl))
        entry = answer[queue]
        assert sorted(w["pid"] for w in entry["workers"]) == pids, (queue, entry, ctl)
        # MISP judges "alive" from /proc of the pod that answers (MISP issue 8616): a pid of the
        # workers pod is alive there only when the frontend happens to have that pid too.
        sure = [w for w in entry["workers"] if w["pid"] not in unsure]
        assert [w["alive"] for w in sure] == [w["pid"] in stable for w in sure]
        assert entry["jobCount"] == 0
    assert (answer["supervisord_status"], answer["controls"]) == (True, 1)


def test_cron_tasks_record_each_run(stack):
    def runs() -> dict[str, int]:
        rows = stack.sql("SELECT job_type, COUNT(*) FROM jobs WHERE worker = 'cron' GROUP BY job_type").stdout
        return {job_type: int(count) for job_type, count in (row.split("\t") for row in rows.splitlines())}

    tasks = stack.commands["cron"]
    # Each CronJob's command, in one container to save a start per task.
    script = "; ".join(
        shlex.join([f"{MISP}/app/Console/cake", *map(str, args)]) + " || exit 1" for args in tasks.values()
    )
    for _round in (1, 2):
        result = stack.cake(command=["sh", "-c", script], check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    assert runs() == {f"{args[0]} {args[1]}": 2 for args in tasks.values()}
    failed = stack.cake("Server", "pullAll", "99", "full", check=False)
    assert failed.returncode == 1 and "User ID do not match an existing user." in failed.stderr
    assert runs()["Server pullAll"] == 2


def test_cake_admin_settings_on_the_cli(stack):
    changed = stack.cake("Admin", "setSetting", "Security.rest_client_enable_arbitrary_urls", "true")
    assert changed.stdout.strip() == 'Setting "Security.rest_client_enable_arbitrary_urls" changed to true'
    shown = json.loads(stack.cake("Admin", "getSetting", "Security.rest_client_enable_arbitrary_urls").stdout)
    assert shown["value"] is True
    rejected = stack.cake("Admin", "setSetting", "MISP.nothing", "1", check=False)
    assert rejected.returncode == 1 and "Setting change rejected." in rejected.stderr
    assert stack.cake("Admin", "getSetting", "Security.salt").stdout.count("*****") == 1


def test_advanced_authkeys_accept_only_keys_of_table_auth_keys(stack):
    front, other = stack.pods
    refused = stack.cake("User", "change_authkey", "1", "short-key", check=False)
    assert refused.returncode == 1
    assert "The new auth key needs to be 40 characters long and only alphanumeric." in refused.stderr
    assert stack.cake("User", "change_authkey", "7", KEY, check=False).stderr.strip() == "User `7` not found."
    # As in MISP: once advanced keys are on, the key in users.authkey no longer authenticates...
    status, body = stack.api(front, "POST", "/servers/serverSettingsEdit/Security.advanced_authkeys", {"value": True})
    assert (status, body["message"]) == (200, "Field updated")
    assert stack.api(other, "GET", "/servers/getSetting/MISP.language")[0] == 403
    # ...until `cake User change_authkey` (what the update Job runs) stores it in auth_keys.
    changed = stack.cake("User", "change_authkey", "1", KEY)
    assert changed.stdout.strip() == f"Old authentication keys disabled and new key created: {KEY}"
    assert stack.api(other, "GET", "/servers/getSetting/MISP.language")[0] == 200
    stored = stack.sql("SELECT authkey, authkey_start, authkey_end, expiration FROM auth_keys").stdout.split()
    assert stored[1:] == [KEY[:4], KEY[-4:], "0"] and stored[0].startswith("$2y$") and KEY not in stored[0]
    stack.cake("Admin", "setSetting", "Security.advanced_authkeys", "false")
    assert stack.api(other, "GET", "/servers/getSetting/MISP.language")[0] == 200


def test_heartbeat_needs_the_database_and_redis(stack):
    # Last: the workers and sessions lose their connections when the backends stop.
    pod = stack.pods[0]
    assert stack.get(pod, "/users/heartbeat") == (200, {"message": "OK", "host": pod, "image": "v1"})
    for backend, reason in (("redis", "Redis unreachable"), ("db", "Database unreachable")):
        podman("stop", "-t", "5", stack.name(backend))
        try:
            status, body = stack.get(pod, "/users/heartbeat")
            assert status == 503 and body["message"].startswith(reason), body
        finally:
            podman("start", stack.name(backend))
        wait_for(lambda: stack.get(pod, "/users/heartbeat")[0] == 200, f"the heartbeat after {backend} is back")
