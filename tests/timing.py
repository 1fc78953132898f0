"""pytest plugin: prints how long each test file took as soon as its last test ends, and a table
at the end.

CI stops a run at its time limit; lines printed as files end say where the time went even then.
Under xdist the controller prints them (workers run the files, reports come back to it).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import pytest

_left: Counter[str] = Counter()
_seconds: defaultdict[str, float] = defaultdict(float)
_config: list[pytest.Config] = []


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _count(nodeids) -> None:
    if not _left:
        _left.update(_file(nodeid) for nodeid in nodeids)


def pytest_configure(config: pytest.Config) -> None:
    _config.append(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    _count(item.nodeid for item in items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    _count(ids)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = _file(report.nodeid)
    _seconds[name] += report.duration
    if report.when != "teardown" or hasattr(_config[0], "workerinput"):
        return
    _left[name] -= 1
    reporter = _config[0].pluginmanager.get_plugin("terminalreporter")
    if _left[name] == 0 and reporter is not None:
        reporter.write_line(f"[{time.strftime('%H:%M:%S')}] {name}: {_seconds[name]:.0f}s")


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.section("time per test file")
    for name, seconds in sorted(_seconds.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.0f}s  {name}")
