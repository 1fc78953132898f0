"""pytest plugin: prints how long each test file took as soon as it ends, and a table at the end.

CI stops a run at its time limit; lines printed as files end say where the time went even then.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

_totals: dict[str, float] = defaultdict(float)
_current: list[str] = []


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _report_done(config: pytest.Config) -> None:
    if not _current:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        name = _current[0]
        reporter.write_line(f"[{time.strftime('%H:%M:%S')}] {name}: {_totals[name]:.0f}s")


def pytest_runtest_logstart(nodeid: str, location) -> None:
    name = _file(nodeid)
    if _current and _current[0] != name:
        _report_done(_CONFIG[0])
        _current.clear()
    if not _current:
        _current.append(name)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _totals[_file(report.nodeid)] += report.duration


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG.append(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    _report_done(config)
    terminalreporter.section("time per test file")
    for name, seconds in sorted(_totals.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.0f}s  {name}")
