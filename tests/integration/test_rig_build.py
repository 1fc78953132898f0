"""Two set-ups sharing one rig cache: tests/rig/lib.sh build_once locks, re-checks and renames.

Each test runs a fake build (a shell script that records its run, sleeps and writes a file) in
two shells at once on an empty cache in a temporary directory, the way scripts/site.sh and
tests/rig/setup.sh run build.sh together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.rig import RIG_DIR

# Appends its pid to $RUNS, then writes $BUILD_OUT in two steps with a pause between them, so a
# reader of the final name during the build would see a half-written file.
FAKE_BUILD = """\
echo "$$" >>"$RUNS"
echo first-half >"$BUILD_OUT"
sleep "$PAUSE"
echo second-half >>"$BUILD_OUT"
"""


def start(tmp_path: Path, dest: Path, pause: float = 2.0) -> subprocess.Popen:
    script = tmp_path / "fake-build.sh"
    script.write_text(FAKE_BUILD)
    env = {
        **os.environ,
        "CTI_RIG_CACHE": str(tmp_path / "cache"),
        "RUNS": str(tmp_path / "runs"),
        "PAUSE": str(pause),
    }
    return subprocess.Popen(
        ["bash", "-c", '. "$1"; build_once "$2" bash "$3"', "_", RIG_DIR / "lib.sh", dest, script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_second_setup_waits_for_the_first_and_finds_the_result(tmp_path):
    dest = tmp_path / "cache" / "bin" / "thing-v1"
    first = start(tmp_path, dest)
    wait_for(tmp_path / "runs")  # the first holds the lock and is building
    second = start(tmp_path, dest)
    # While the first still builds, the final name does not exist yet: it appears by rename.
    time.sleep(0.5)
    assert not dest.exists()

    err1 = first.communicate(timeout=30)[1]
    err2 = second.communicate(timeout=30)[1]
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert len((tmp_path / "runs").read_text().split()) == 1  # built once
    assert dest.read_text() == "first-half\nsecond-half\n"
    assert f"waiting for lock thing-v1 (held by pid {first.pid})" in err2
    assert "thing-v1: cached (made by another set-up)" in err2
    assert "waiting" not in err1
    # Nothing temporary is left beside the result.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["thing-v1"]


def test_interrupted_build_leaves_no_result_and_the_next_one_cleans_up(tmp_path):
    dest = tmp_path / "cache" / "bin" / "thing-v1"
    first = start(tmp_path, dest, pause=30)
    wait_for(tmp_path / "runs")
    os.killpg(first.pid, signal.SIGKILL)  # as an interrupted set-up: the build dies with it
    first.communicate(timeout=10)
    leftovers = [p.name for p in dest.parent.iterdir()]
    assert leftovers == [f".thing-v1.tmp.{first.pid}"]

    second = start(tmp_path, dest, pause=0)
    err = second.communicate(timeout=30)[1]
    assert second.returncode == 0, err
    assert dest.read_text() == "first-half\nsecond-half\n"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["thing-v1"]


def test_cached_result_is_not_rebuilt(tmp_path):
    dest = tmp_path / "cache" / "bin" / "thing-v1"
    dest.parent.mkdir(parents=True)
    dest.write_text("made earlier\n")
    run = start(tmp_path, dest)
    err = run.communicate(timeout=30)[1]
    assert run.returncode == 0, err
    assert "thing-v1: cached" in err
    assert not (tmp_path / "runs").exists()
    assert dest.read_text() == "made earlier\n"
