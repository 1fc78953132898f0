"""Backup and restore of MISP: the scripts against a real MariaDB, the roles on the rig.

The scripts are rendered from the roles' templates (targets/backup/render.yml) and run as they
are, the same bytes the ConfigMaps carry (checked against the ConfigMap on the rig). Every check
of the outcome asks MariaDB, the file system, the S3 server (S3Proxy, through rclone as a separate
client) or the API server, never the scripts themselves.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymysql
import pytest
from kubernetes.dynamic.exceptions import NotFoundError

from tests.integration._helpers import bucket_listing, rclone, rclone_env, static_storage_class, static_volume

TARGET = Path(__file__).parent / "targets" / "backup"
DB_NAME = "misp_backup_test"
NAME_FORMAT = "misp-%Y%m%dT%H%M%SZ"

# A slice of MISP's schema (MISP 2.5 MYSQL.sql): the real table and column names.
SCHEMA = [
    """CREATE TABLE organisations (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL,
    uuid VARCHAR(40), description TEXT, type VARCHAR(255), nationality VARCHAR(255), sector VARCHAR(255),
    created_by INT NOT NULL DEFAULT 0, date_created DATETIME NOT NULL, local TINYINT(1) NOT NULL DEFAULT 0)
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, password VARCHAR(255) NOT NULL,
    org_id INT NOT NULL, email VARCHAR(255) NOT NULL, authkey VARCHAR(40), role_id INT NOT NULL DEFAULT 0,
    gpgkey LONGTEXT, disabled TINYINT(1) NOT NULL DEFAULT 0, date_created BIGINT, INDEX (org_id))
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, org_id INT NOT NULL, date DATE NOT NULL,
    info TEXT NOT NULL, user_id INT NOT NULL, uuid VARCHAR(40) NOT NULL, published TINYINT(1) NOT NULL DEFAULT 0,
    analysis TINYINT NOT NULL, attribute_count INT UNSIGNED DEFAULT 0, orgc_id INT NOT NULL,
    timestamp INT NOT NULL DEFAULT 0, distribution TINYINT NOT NULL DEFAULT 0, threat_level_id INT NOT NULL,
    UNIQUE (uuid)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE objects (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(131), `meta-category` VARCHAR(255),
    description TEXT, template_uuid VARCHAR(40), template_version INT NOT NULL, event_id INT NOT NULL,
    uuid VARCHAR(40), timestamp INT NOT NULL DEFAULT 0, distribution TINYINT NOT NULL DEFAULT 0,
    comment TEXT, deleted TINYINT(1) NOT NULL DEFAULT 0, INDEX (event_id))
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE attributes (id INT AUTO_INCREMENT PRIMARY KEY, event_id INT NOT NULL, object_id INT NOT NULL
    DEFAULT 0, object_relation VARCHAR(255), category VARCHAR(255) NOT NULL, type VARCHAR(100) NOT NULL,
    value1 TEXT NOT NULL, value2 TEXT NOT NULL, to_ids TINYINT(1) NOT NULL DEFAULT 1,
    uuid VARCHAR(40) NOT NULL, timestamp INT NOT NULL DEFAULT 0, distribution TINYINT NOT NULL DEFAULT 0,
    comment TEXT, deleted TINYINT(1) NOT NULL DEFAULT 0, INDEX (event_id))
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE tags (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, colour VARCHAR(7) NOT NULL,
    exportable TINYINT(1) NOT NULL, org_id INT NOT NULL DEFAULT 0, hide_tag TINYINT(1) NOT NULL DEFAULT 0,
    UNIQUE (name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE event_tags (id INT AUTO_INCREMENT PRIMARY KEY, event_id INT NOT NULL, tag_id INT NOT NULL,
    local TINYINT(1) NOT NULL DEFAULT 0, INDEX (event_id), INDEX (tag_id))
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE system_settings (setting VARCHAR(255) NOT NULL PRIMARY KEY, value BLOB NOT NULL)
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    # Not MISP's, but what --routines, --triggers and --events must carry over.
    """CREATE TRIGGER attributes_count AFTER INSERT ON attributes FOR EACH ROW
    UPDATE events SET attribute_count = attribute_count + 1 WHERE id = NEW.event_id""",
    "CREATE PROCEDURE event_count() SELECT COUNT(*) FROM events",
    "CREATE EVENT purge_deleted ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM attributes WHERE deleted = 1",
]
TABLES = ["organisations", "users", "events", "objects", "attributes", "tags", "event_tags", "system_settings"]
TEXTS = [
    "Phishing campaign 🎣 targeting banks",
    "Кампания APT28",
    "勒索软件 LockBit 3.0",
    'naïve façade — «quotes» \\ "x"',
]


def uid(i: int, kind: str) -> str:
    return hashlib.sha256(f"{kind}{i}".encode()).hexdigest()[:8] + "-0000-4000-8000-" + f"{i:012d}"


def seed(conn) -> None:
    with conn.cursor() as cur:
        for statement in SCHEMA:
            cur.execute(statement)
        cur.executemany(
            "INSERT INTO organisations (name, uuid, description, date_created) VALUES (%s, %s, %s, NOW())",
            [
                (
                    f"ORG {i} {TEXTS[i % 4]}",
                    uid(i, "o"),
                    TEXTS[(i + 1) % 4],
                )
                for i in range(5)
            ],
        )
        cur.executemany(
            "INSERT INTO users (password, org_id, email, authkey, gpgkey, date_created)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (
                    f"$2y$10${secrets.token_hex(26)}",
                    i % 5 + 1,
                    f"user{i}@example.org",
                    secrets.token_hex(20),
                    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n" + secrets.token_urlsafe(300),
                    1700000000 + i,
                )
                for i in range(10)
            ],
        )
        cur.executemany(
            "INSERT INTO events (org_id, date, info, user_id, uuid, analysis, orgc_id, timestamp, threat_level_id)"
            " VALUES (%s, CURDATE(), %s, 1, %s, 2, %s, %s, 1)",
            [(i % 5 + 1, f"{TEXTS[i % 4]} #{i}", uid(i, "e"), i % 5 + 1, 1700000000 + i) for i in range(40)],
        )
        cur.executemany(
            "INSERT INTO objects (name, `meta-category`, template_uuid, template_version, event_id, uuid)"
            " VALUES ('file', 'file', %s, 24, %s, %s)",
            [(uid(1, "t"), i % 40 + 1, uid(i, "ob")) for i in range(60)],
        )
        cur.executemany(
            "INSERT INTO attributes (event_id, object_id, category, type, value1, value2, uuid, comment)"
            " VALUES (%s, %s, 'Network activity', %s, %s, '', %s, %s)",
            [
                (
                    i % 40 + 1,
                    i % 60 + 1 if i % 3 else 0,
                    "domain" if i % 2 else "ip-dst",
                    f"bad{i}.example.联通" if i % 2 else f"198.51.100.{i % 250}",
                    uid(i, "a"),
                    TEXTS[i % 4],
                )
                for i in range(300)
            ],
        )
        cur.executemany(
            "INSERT INTO tags (name, colour, exportable) VALUES (%s, %s, 1)",
            [
                (
                    f"tlp:{c}" if i < 4 else f'misp-galaxy:threat-actor="Actor {i} 🐻"',
                    f"#ff00{i:02x}",
                )
                for i, c in enumerate(["clear", "green", "amber", "red"] + [""] * 16)
            ],
        )
        cur.executemany(
            "INSERT INTO event_tags (event_id, tag_id, local) VALUES (%s, %s, %s)",
            [(i % 40 + 1, i % 20 + 1, i % 2) for i in range(80)],
        )
        # Every byte value, NULs and invalid UTF-8 included.
        cur.executemany(
            "INSERT INTO system_settings (setting, value) VALUES (%s, %s)",
            [(f"Plugin.setting_{i}", bytes(range(256)) + os.urandom(64)) for i in range(12)],
        )
    conn.commit()


def fingerprint(conn) -> dict:
    """CHECKSUM TABLE and row count per table, plus the trigger, routine and event names."""
    with conn.cursor() as cur:
        cur.execute("CHECKSUM TABLE " + ", ".join(f"{DB_NAME}.{t}" for t in TABLES))
        sums = {row[0].split(".", 1)[1]: row[1] for row in cur.fetchall()}
        counts = {}
        for table in TABLES:
            cur.execute(f"SELECT COUNT(*) FROM {DB_NAME}.{table}")  # noqa: S608 - names from the constants
            counts[table] = cur.fetchone()[0]
        cur.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (DB_NAME,))
        triggers = sorted(r[0] for r in cur.fetchall())
        cur.execute("SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s", (DB_NAME,))
        routines = sorted(r[0] for r in cur.fetchall())
        cur.execute("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (DB_NAME,))
        events = sorted(r[0] for r in cur.fetchall())
    return {"checksums": sums, "counts": counts, "triggers": triggers, "routines": routines, "events": events}


def tree(root: Path) -> dict:
    """Relative path -> (mode, sha256 or symlink target) of everything under root."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            content = "-> " + os.readlink(path)
        elif path.is_file():
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = "dir"
        out[str(path.relative_to(root))] = (st.st_mode & 0o7777, content)
    return out


def fake_backup(backup_dir: Path, when: datetime) -> str:
    name = when.strftime(NAME_FORMAT)
    (backup_dir / name).mkdir()
    (backup_dir / name / "SHA256SUMS").write_text("")
    return name


@pytest.fixture(scope="module")
def scripts(run_playbook, tmp_path_factory):
    out = tmp_path_factory.mktemp("scripts")
    extravars = {
        "br_render_dir": str(out),
        "misp_backup_database_name": DB_NAME,
        "misp_backup_keep": 3,
        "misp_backup_keep_days": 30,
    }
    result = run_playbook(TARGET / "render.yml", extravars)
    assert result.rc == 0, result.stdout + result.stderr
    return out


def test_bad_settings_are_named_at_once_before_anything_is_rendered(run_playbook, tmp_path):
    secret = "never-shown-7f3a"
    extravars = {
        "br_render_dir": str(tmp_path),
        "misp_backup_schedule": "@daily",
        "misp_backup_keep": 0,
        "misp_backup_target": "s3",
        "misp_backup_s3_endpoint": "https://s3.example.org",
        "misp_backup_s3_bucket": "Bad_Bucket",
        "misp_backup_s3_credentials": {"access_key_id": "AKIA", "secret": secret},
    }
    result = run_playbook(TARGET / "render.yml", extravars)
    assert result.rc != 0
    text = " ".join((result.stdout + result.stderr).split())
    for expected in (
        'misp_backup_schedule must be five cron fields, got "@daily"',
        "misp_backup_keep must be a number of at least 1, got 0",
        'misp_backup_s3_bucket must be an S3 bucket name with misp_backup_target s3, got "Bad_Bucket"',
        "misp_backup_s3_credentials must be empty or hold access_key_id and secret_access_key,"
        ' got keys ["access_key_id", "secret"]',
    ):
        assert expected in text, text[-3000:]
    assert secret not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def db(mariadb):
    conn = pymysql.connect(
        host=mariadb["MARIADB_HOST"],
        port=int(mariadb["MARIADB_PORT"]),
        user=mariadb["MARIADB_USER"],
        password=mariadb["MARIADB_PASSWORD"],
        charset="utf8mb4",
    )
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        cur.execute(f"CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.select_db(DB_NAME)
    yield conn
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    conn.close()


def script_env(mariadb, tmp_path: Path) -> dict:
    """What the pod gives the scripts: paths, database address, user, and a password file."""
    password_file = tmp_path / "root-password"
    password_file.write_text(mariadb["MARIADB_PASSWORD"])
    password_file.chmod(0o400)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "MISP_BACKUP_DIR": str(tmp_path / "backup"),
        "MISP_FILES_DIR": str(tmp_path / "files"),
        "DB_HOST": mariadb["MARIADB_HOST"],
        "DB_PORT": str(mariadb["MARIADB_PORT"]),
        "DB_USER": mariadb["MARIADB_USER"],
        "DB_PASSWORD_FILE": str(password_file),
    }


def run(script: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/sh", str(script), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_backup_restore_round_trip(scripts, db, mariadb, tmp_path):
    seed(db)
    before = fingerprint(db)
    assert before["counts"]["attributes"] == 300 and before["triggers"] == ["attributes_count"]
    assert before["routines"] == ["event_count"] and before["events"] == ["purge_deleted"]

    env = script_env(mariadb, tmp_path)
    files = tmp_path / "files"
    (files / ".gnupg").mkdir(parents=True)
    (files / ".gnupg").chmod(0o700)
    (files / ".gnupg" / "pubring.kbx").write_bytes(os.urandom(4096))
    (files / "42" / "1337").mkdir(parents=True)
    (files / "42" / "1337" / "malware.zip").write_bytes(os.urandom(100_000))
    (files / "feeds cache").mkdir()
    (files / "feeds cache" / "ünïcode-😀.json").write_text('{"x": "é"}')
    (files / "link").symlink_to("42/1337/malware.zip")
    files_before = tree(files)

    # Retention (keep 3, 30 days): of the new backup and these, the 40-day-old one goes by age,
    # the 400-day-old one by count; a leftover partial backup goes too.
    backup_dir = tmp_path / "backup"
    backup_dir.mkdir()
    now = datetime.now(UTC)
    recent = fake_backup(backup_dir, now - timedelta(days=1))
    fake_backup(backup_dir, now - timedelta(days=40))
    fake_backup(backup_dir, now - timedelta(days=400))
    (backup_dir / ".partial-misp-20200101T000000Z").mkdir()

    started = time.monotonic()
    result = run(scripts / "backup.sh", "dump", env=env)
    dump_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in backup_dir.iterdir())
    assert len(names) == 2 and names[0] == recent, names
    name = names[1]
    assert sorted(p.name for p in (backup_dir / name).iterdir()) == ["SHA256SUMS", "database.sql.gz", "files.tar.gz"]
    assert mariadb["MARIADB_PASSWORD"] not in result.stderr

    # A name that is not a backup, and a backup that does not exist, are refused unchanged.
    for bad in ("misp-latest", "misp-20991231T235959Z", ""):
        refused = run(scripts / "restore.sh", "run", bad, env=env)
        assert refused.returncode != 0 and (bad or "''") in refused.stderr, refused.stderr
    assert fingerprint(db) == before
    # A damaged archive fails the check before anything is dropped.
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / name).mkdir()
    for part in ("database.sql.gz", "SHA256SUMS"):
        (damaged / name / part).write_bytes((backup_dir / name / part).read_bytes())
    (damaged / name / "files.tar.gz").write_bytes(b"not the archive")
    refused = run(scripts / "restore.sh", "run", name, env={**env, "MISP_BACKUP_DIR": str(damaged)})
    assert refused.returncode != 0 and "checksums" in refused.stderr
    assert fingerprint(db) == before

    # Disaster: the database is gone and the files volume holds something else.
    with db.cursor() as cur:
        cur.execute(f"DROP DATABASE {DB_NAME}")
    (files / "42" / "1337" / "malware.zip").unlink()
    (files / "stray").write_text("written after the backup")

    assert run(scripts / "restore.sh", "check", name, env=env).returncode == 0
    started = time.monotonic()
    result = run(scripts / "restore.sh", "run", name, env=env)
    restore_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    db.select_db(DB_NAME)
    assert fingerprint(db) == before
    assert tree(files) == files_before
    print(f"dump {dump_seconds:.1f}s, restore {restore_seconds:.1f}s, rows {sum(before['counts'].values())}")


# --- the S3 target against a real S3 API (S3Proxy) --------------------------------------------------

PREFIX = "misp"


def render(run_playbook, out: Path, **extravars) -> Path:
    out.mkdir()
    result = run_playbook(TARGET / "render.yml", {"br_render_dir": str(out), **extravars})
    assert result.rc == 0, result.stdout + result.stderr
    return out


def s3_vars(s3: dict, bucket: str | None = None) -> dict:
    return {
        "misp_backup_database_name": DB_NAME,
        "misp_backup_keep": 3,
        "misp_backup_keep_days": 30,
        "misp_backup_target": "s3",
        "misp_backup_s3_endpoint": s3["S3_ENDPOINT"],
        "misp_backup_s3_region": s3["S3_REGION"],
        "misp_backup_s3_bucket": bucket or s3["S3_BUCKET"],
        "misp_backup_s3_prefix": PREFIX,
    }


@pytest.fixture(scope="module")
def s3_scripts(run_playbook, tmp_path_factory, s3):
    return render(run_playbook, tmp_path_factory.mktemp("s3") / "scripts", **s3_vars(s3))


def test_s3_upload_retention_and_restore(s3_scripts, db, mariadb, s3, tmp_path):
    seed(db)
    before = fingerprint(db)
    files = tmp_path / "files"
    (files / "42" / "1337").mkdir(parents=True)
    (files / "42" / "1337" / "sample.zip").write_bytes(os.urandom(300_000))
    (files / "feeds cache").mkdir()
    (files / "feeds cache" / "ünïcode-😀.json").write_text('{"x": "é"}')
    files_before = tree(files)
    env = {**script_env(mariadb, tmp_path), **rclone_env(s3)}

    # In the bucket already: complete backups 2, 3, 40 and 400 days old, an upload that stopped
    # half way (no SHA256SUMS) a day ago, and something that is no backup. Keep 3 and 30 days:
    # the new backup, 2 and 3 days stay; the half upload would otherwise count as one of the 3.
    now = datetime.now(UTC)
    seeded = tmp_path / "seeded"
    names = {days: (now - timedelta(days=days)).strftime(NAME_FORMAT) for days in (1, 2, 3, 40, 400)}
    for days, name in names.items():
        (seeded / name).mkdir(parents=True)
        (seeded / name / "database.sql.gz").write_bytes(os.urandom(64))
        if days != 1:
            (seeded / name / "SHA256SUMS").write_text("")
    (seeded / "notes").mkdir()
    (seeded / "notes" / "README").write_text("not a backup")
    rclone(s3, "copy", str(seeded), f"s3:{s3['S3_BUCKET']}/{PREFIX}")

    result = run(s3_scripts / "backup.sh", "dump", env=env)
    assert result.returncode == 0, result.stderr
    (name,) = [p.name for p in (tmp_path / "backup").iterdir()]
    started = time.monotonic()
    result = run(s3_scripts / "backup.sh", "upload", env=env)
    upload_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert s3["S3_SECRET_ACCESS_KEY"] not in result.stderr

    remote = f"s3:{s3['S3_BUCKET']}/{PREFIX}"
    listing = rclone(s3, "lsf", "-R", "--files-only", remote).stdout.decode().splitlines()
    kept = sorted({line.split("/")[0] for line in listing})
    assert kept == sorted([name, names[2], names[3], "notes"]), (kept, result.stderr)
    assert sorted(line for line in listing if line.startswith(name)) == [
        f"{name}/SHA256SUMS",
        f"{name}/database.sql.gz",
        f"{name}/files.tar.gz",
    ]
    local = tmp_path / "backup" / name
    for part in ("SHA256SUMS", "database.sql.gz", "files.tar.gz"):
        assert rclone(s3, "cat", f"{remote}/{name}/{part}").stdout == (local / part).read_bytes(), part
    rclone(s3, "check", str(local), f"{remote}/{name}")

    # Disaster: the database, the files and the backup volume (an emptyDir in the pod) are gone.
    with db.cursor() as cur:
        cur.execute(f"DROP DATABASE {DB_NAME}")
    (files / "42" / "1337" / "sample.zip").unlink()
    (files / "stray").write_text("written after the backup")
    restore_env = {**env, "MISP_BACKUP_DIR": str(tmp_path / "fetched")}
    missing = run(s3_scripts / "restore.sh", "fetch", "misp-20991231T235959Z", env=restore_env)
    assert missing.returncode != 0 and "misp-20991231T235959Z not found" in missing.stderr, missing.stderr
    started = time.monotonic()
    for step in ("fetch", "check", "run"):
        result = run(s3_scripts / "restore.sh", step, name, env=restore_env)
        assert result.returncode == 0, f"{step}: {result.stderr}"
    restore_seconds = time.monotonic() - started
    db.select_db(DB_NAME)
    assert fingerprint(db) == before
    assert tree(files) == files_before
    print(f"upload {upload_seconds:.1f}s, fetch and restore {restore_seconds:.1f}s")


def test_s3_refuses_bad_credentials_and_missing_bucket(s3_scripts, run_playbook, db, mariadb, s3, tmp_path):
    env = {**script_env(mariadb, tmp_path), **rclone_env(s3)}
    (tmp_path / "files").mkdir()
    assert run(s3_scripts / "backup.sh", "dump", env=env).returncode == 0
    before = bucket_listing(s3)
    bucket = s3["S3_BUCKET"]

    wrong_secret = secrets.token_urlsafe(30)
    for override, cause in (
        ({"RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": wrong_secret}, "SignatureDoesNotMatch"),
        ({"RCLONE_CONFIG_S3_ACCESS_KEY_ID": "AKUNKNOWN0000000000"}, "InvalidAccessKeyId"),
    ):
        for script, action in (("backup.sh", "upload"), ("restore.sh", "fetch")):
            args = [action] if action == "upload" else [action, "misp-20260101T000000Z"]
            result = run(s3_scripts / script, *args, env={**env, **override})
            assert result.returncode != 0, result.stderr
            assert f"bucket {bucket} at {s3['S3_ENDPOINT']} refuses the credentials" in result.stderr, result.stderr
            assert cause in result.stderr and wrong_secret not in result.stderr, result.stderr

    typo = render(run_playbook, tmp_path / "typo", **s3_vars(s3, bucket=f"{bucket}-typo"))
    for script, args in (("backup.sh", ["upload"]), ("restore.sh", ["fetch", "misp-20260101T000000Z"])):
        result = run(typo / script, *args, env=env)
        assert result.returncode != 0, result.stderr
        assert f"bucket {bucket}-typo at {s3['S3_ENDPOINT']} does not exist" in result.stderr, result.stderr

    # Nothing was written: no bucket created, no object (a SHA256SUMS least of all) added.
    assert bucket_listing(s3) == before
    assert sorted(rclone(s3, "lsf", "s3:").stdout.decode().split()) == [f"{bucket}/"]


# --- the roles on the rig --------------------------------------------------------------------------


@pytest.fixture
def ns(dyn):
    """A namespace enforcing Pod Security restricted, with static PVs bound to MISP's claims."""
    name = f"ops-backup-{secrets.token_hex(3)}"
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    pvs = dyn.resources.get(api_version="v1", kind="PersistentVolume")
    classes = dyn.resources.get(api_version="storage.k8s.io/v1", kind="StorageClass")
    classes.create(body=static_storage_class(f"{name}-static"))
    namespaces.create(
        body={
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        }
    )
    claims = {"misp-files": "ReadWriteMany", "misp-backup": "ReadWriteOnce"}
    for claim, mode in claims.items():
        pvs.create(body=static_volume(name, claim, mode, f"{name}-static"))
    dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim").create(
        namespace=name,
        body={
            "metadata": {"name": "misp-files"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": f"{name}-static",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    yield name
    namespaces.delete(name=name)
    for claim in claims:
        pvs.delete(name=f"{name}-{claim}")
    classes.delete(name=f"{name}-static")


@pytest.fixture
def play(k8s_cluster, run_playbook, ns):
    def call(playbook, check=False, **extravars):
        extravars = {
            "misp_namespace": ns,
            "cti_kubeconfig": k8s_cluster["kubeconfig"],
            # Bounded waits: kwok completes the Jobs' pods within seconds.
            "misp_backup_run_timeout": 120,
            "misp_restore_timeout": 120,
            "misp_restore_stop_timeout": 120,
            # The static volumes of the fixture ns.
            "misp_backup_pvc_storage_class": f"{ns}-static",
            "misp_backup_pvc_size": "1Gi",
            # kwok runs these Jobs, not the real node inventories/local places MISP on.
            "misp_common_node_selector": {},
            "misp_common_tolerations": [],
            **extravars,
        }
        return run_playbook(playbook, extravars, check=check, env={"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]})

    return call


def test_backup_role_admitted_restricted(play, dyn, ns, scripts, run_playbook, tmp_path):
    pvc_vars = {
        "misp_backup_database_name": DB_NAME,
        "misp_backup_keep": 3,
        "misp_backup_keep_days": 30,
    }
    assert play(TARGET / "apply.yml", check=True, **pvc_vars).rc == 0
    first = play(TARGET / "apply.yml", **pvc_vars)
    assert first.rc == 0 and first.changed == 1, first.stdout
    second = play(TARGET / "apply.yml", **pvc_vars)
    assert second.rc == 0 and second.changed == 0, second.stdout

    cronjob = dyn.resources.get(api_version="batch/v1", kind="CronJob").get(namespace=ns, name="misp-backup")
    assert cronjob.spec.concurrencyPolicy == "Forbid"
    assert cronjob.metadata.labels["app.kubernetes.io/component"] == "backup"
    configmap = dyn.resources.get(api_version="v1", kind="ConfigMap").get(namespace=ns, name="misp-backup")
    # The ConfigMap carries the very script the round-trip test ran.
    assert configmap.data["backup.sh"] == (scripts / "backup.sh").read_text()

    # Pods are admitted only if they meet "restricted": run a backup now, kwok completes its pod.
    now = play("playbooks/backup.yml", **pvc_vars)
    assert now.rc == 0, now.stdout
    pods = (
        dyn.resources.get(api_version="v1", kind="Pod")
        .get(namespace=ns, label_selector="app.kubernetes.io/component=backup")
        .items
    )
    assert pods and all(p.status.phase == "Succeeded" for p in pods)

    # The S3 target: the credentials Secret (never in the output) and the two-container pod.
    key = secrets.token_hex(16)
    s3_vars = {
        "misp_backup_target": "s3",
        "misp_backup_s3_endpoint": "http://127.0.0.1:9000",
        "misp_backup_s3_bucket": "misp-backups",
        "misp_backup_s3_credentials": {"access_key_id": "backup", "secret_access_key": key},
    }
    s3 = play(TARGET / "apply.yml", **s3_vars)
    assert s3.rc == 0 and key not in s3.stdout + s3.stderr, s3.stdout
    secret = dyn.resources.get(api_version="v1", kind="Secret").get(namespace=ns, name="misp-backup-s3")
    assert set(secret.to_dict()["data"]) == {"access-key-id", "secret-access-key"}
    assert play("playbooks/backup.yml", **s3_vars).rc == 0

    bad = play(TARGET / "apply.yml", misp_backup_target="s3", misp_backup_s3_endpoint="", misp_backup_s3_bucket="b")
    assert bad.rc != 0 and "misp_backup_s3_endpoint" in bad.stdout


def writers(dyn, ns):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    cronjobs = dyn.resources.get(api_version="batch/v1", kind="CronJob")
    return (
        {
            d.metadata.name: (d.spec.replicas, dict(d.metadata.annotations or {}))
            for d in deployments.get(namespace=ns).items
        },
        {
            c.metadata.name: (c.spec.suspend, dict(c.metadata.annotations or {}))
            for c in cronjobs.get(namespace=ns).items
        },
    )


def test_restore_stops_and_brings_back_writers(play, dyn, ns):
    labels = {"app.kubernetes.io/part-of": "misp"}
    pod = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 33, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "c",
                "image": "stand-in",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    for name, component, replicas in (("misp-frontend-blue", "frontend", 2), ("misp-workers", "workers", 1)):
        sel = {**labels, "app.kubernetes.io/component": component, "app.kubernetes.io/name": name}
        deployments.create(
            namespace=ns,
            body={
                "metadata": {"name": name, "labels": sel},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": sel},
                    "template": {"metadata": {"labels": sel}, "spec": pod},
                },
            },
        )
    cronjobs = dyn.resources.get(api_version="batch/v1", kind="CronJob")
    for name, suspend in (("misp-cron-pullall", False), ("misp-cron-pushall", True)):
        cronjobs.create(
            namespace=ns,
            body={
                "metadata": {"name": name, "labels": {**labels, "app.kubernetes.io/component": "cron"}},
                "spec": {
                    "schedule": "0 * * * *",
                    "suspend": suspend,
                    "jobTemplate": {"spec": {"template": {"spec": {**pod, "restartPolicy": "Never"}}}},
                },
            },
        )
    assert play(TARGET / "apply.yml").rc == 0
    before = writers(dyn, ns)

    # Refused before any change: no name, and a name that is no backup.
    missing = play(
        "playbooks/restore.yml",
    )
    assert missing.rc != 0 and "misp_restore_backup_name" in missing.stdout
    bad = play("playbooks/restore.yml", misp_restore_backup_name="latest")
    assert bad.rc != 0 and "'latest'" in bad.stdout
    assert writers(dyn, ns) == before

    seen = {"misp-frontend-blue": set(), "misp-workers": set(), "suspended": set()}
    done = threading.Event()

    def watch():
        while not done.is_set():
            for d in deployments.get(namespace=ns).items:
                seen[d.metadata.name].add(d.spec.replicas)
            seen["suspended"].add(cronjobs.get(namespace=ns, name="misp-cron-pullall").spec.suspend)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = play("playbooks/restore.yml", misp_restore_backup_name="misp-20261123T011500Z")
    finally:
        done.set()
        watcher.join()
    assert result.rc == 0, result.stdout
    assert seen == {"misp-frontend-blue": {2, 0}, "misp-workers": {1, 0}, "suspended": {False, True}}, seen
    # Back where it was, annotations gone; both steps ran as Jobs that completed.
    assert writers(dyn, ns) == before
    jobs = dyn.resources.get(api_version="batch/v1", kind="Job")
    for step in ("check", "run"):
        job = jobs.get(namespace=ns, name=f"misp-restore-{step}-misp-20261123t011500z")
        assert job.status.succeeded == 1
        assert job.spec.template.spec.containers[0].command[-2:] == [step, "misp-20261123T011500Z"]
    with pytest.raises(NotFoundError):
        jobs.get(namespace=ns, name="misp-restore-run-latest")
