"""Unit tests of the worker queue model and the start/restart/wait logic.

``Table`` plays supervisord's process table: what the client methods see and change, with the
state changes supervisord makes between two polls. A fake clock makes the waits instant.
"""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_api import MispApiError
from ansible_collections.cti.misp_platform.plugins.module_utils._misp_workers import (
    DEFAULT_QUEUES,
    WorkersError,
    WorkersRunner,
    check_capacity,
    describe_short,
    execute,
    misp_opinion,
    queue_of,
    summarize,
    wanted_counts,
)
from ansible_collections.cti.misp_platform.plugins.module_utils._supervisor import SupervisorError

GROUP = "misp-workers"


def info(name, state="RUNNING", pid=None, start=1000, now=1060, description=""):
    running = state in ("RUNNING", "STARTING", "BACKOFF", "STOPPING")
    return {
        "name": name,
        "group": GROUP,
        "statename": state,
        "pid": pid if pid is not None else (abs(hash(name)) % 30000 + 100 if running else 0),
        "start": start,
        "now": now,
        "description": description,
    }


class Table:
    """A supervisord process table; ``crashing`` processes end FATAL whenever started."""

    def __init__(self, states, crashing=()):
        self.procs = {name: info(name, state) for name, state in states.items()}
        self.crashing = set(crashing)
        self.calls = []
        self.next_pid = 50000

    def _settle(self):
        for name, proc in self.procs.items():
            if proc["statename"] == "STARTING":
                crashed = name in self.crashing
                proc.update(statename="FATAL" if crashed else "RUNNING", pid=0 if crashed else proc["pid"])
            elif proc["statename"] == "STOPPING":
                proc.update(statename="STOPPED", pid=0)

    def group_processes(self, group):
        self.calls.append(("read", group))
        procs = [dict(p) for p in self.procs.values()]
        self._settle()
        return procs

    def _start(self, name):
        self.next_pid += 1
        self.procs[name].update(statename="STARTING", pid=self.next_pid)

    def start_process(self, group, name):
        self.calls.append(("start", name))
        self._start(name)
        return True

    def stop_group(self, group):
        self.calls.append(("stop_group", group))
        for proc in self.procs.values():
            if proc["statename"] == "RUNNING":
                proc["statename"] = "STOPPING"

    def start_group(self, group):
        self.calls.append(("start_group", group))
        for name, proc in self.procs.items():
            if proc["statename"] in ("STOPPED", "EXITED", "FATAL"):
                self._start(name)

    def changes(self):
        return [c for c in self.calls if c[0] != "read"]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def params(state="present", queues=None, wait_timeout=10):
    return {"group": GROUP, "state": state, "queues": queues, "wait_timeout": wait_timeout}


def runner(table, check_mode=False, clock=None, **kwargs):
    clock = clock or Clock()
    return WorkersRunner(table, params(**kwargs), check_mode, clock=clock, sleep=clock.sleep)


ALL_RUNNING = {f"{q}_00": "RUNNING" for q in DEFAULT_QUEUES}


# --- argument checks -------------------------------------------------------------------------


def test_default_queues_want_one_process_each():
    assert wanted_counts(params()) == {"default": 1, "email": 1, "cache": 1, "prio": 1, "update": 1}


def test_listed_queues_keep_their_order_and_counts():
    assert wanted_counts(params(queues={"prio": 3, "default": "2"})) == {"prio": 3, "default": 2}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queues": {"email": 0}}, "queues.email must be at least 1 process, got 0"),
        ({"queues": {"default": 1, "email": -2}}, "queues.email must be at least 1 process, got -2"),
        ({"queues": {"default": "many"}}, "queues.default must be a number of processes, got 'many'"),
        ({"queues": {"default": 1.5}}, "queues.default must be a number of processes, got 1.5"),
        ({"queues": {"default": True}}, "queues.default must be a number of processes, got True"),
        ({"queues": {"default": None}}, "queues.default must be a number of processes, got None"),
        ({"queues": {"default": [2]}}, "queues.default must be a number of processes, got [2]"),
        ({"queues": {"mail": 1}}, "queues names unknown queue 'mail'; MISP's queues are default, email, cache"),
        ({"queues": {}}, "queues must name at least one queue"),
        ({"wait_timeout": 0}, "wait_timeout must be at least 1 second, got 0"),
        ({"wait_timeout": -5}, "wait_timeout must be at least 1 second, got -5"),
    ],
)
def test_bad_arguments_name_the_bad_value(kwargs, message):
    with pytest.raises(WorkersError) as caught:
        wanted_counts(params(**kwargs))
    assert message in caught.value.message


# --- queue model -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "queue"),
    [("default_00", "default"), ("prio_12", "prio"), ("scheduler_00", "scheduler"), ("odd", "odd")],
)
def test_queue_of(name, queue):
    assert queue_of(name) == queue


def test_summarize_counts_running_and_reports_unlisted_queues_unjudged():
    infos = [
        info("default_01", "FATAL", description="Exited too quickly (process log may have details)"),
        info("default_00", "RUNNING", pid=11, start=1000, now=1060),
        info("email_00", "STOPPED"),
        info("scheduler_00", "STOPPED"),
    ]
    queues = summarize(infos, {"default": 2, "email": 1, "update": 1})
    assert list(queues) == ["default", "email", "update", "scheduler"]
    assert queues["default"]["processes"][0] == {
        "name": "default_00",
        "state": "RUNNING",
        "pid": 11,
        "uptime": 60,
        "description": "",
    }
    assert queues["default"]["processes"][1]["uptime"] == 0
    assert [(q["running"], q["wanted"], q["healthy"]) for q in queues.values()] == [
        (1, 2, False),
        (0, 1, False),
        (0, 1, False),
        (0, 0, True),
    ]


def test_uptime_is_never_negative_when_the_clock_went_back():
    assert (
        summarize([info("default_00", start=2000, now=1000)], {"default": 1})["default"]["processes"][0]["uptime"] == 0
    )


def test_describe_short_names_queues_and_non_running_processes():
    queues = summarize(
        [info("default_00"), info("default_01", "FATAL", description="Exited too quickly")], {"default": 2, "email": 1}
    )
    assert describe_short(queues) == (
        "queues short of RUNNING workers: default (1/2 RUNNING; default_01 FATAL: Exited too quickly), "
        "email (0/1 RUNNING; no such process in the group)"
    )


def test_check_capacity_refuses_counts_the_group_cannot_reach():
    queues = summarize([info("default_00"), info("email_00")], {"default": 3, "email": 1, "update": 1})
    with pytest.raises(WorkersError) as caught:
        check_capacity(queues, GROUP)
    assert caught.value.message == (
        "supervisord group 'misp-workers' has too few processes configured (numprocs): "
        "default wants 3 but has 1, update wants 1 but has 0"
    )


# --- present ---------------------------------------------------------------------------------


ONE_EACH = dict.fromkeys(DEFAULT_QUEUES, 1)


@pytest.mark.parametrize(
    ("states", "queues", "healthy", "short"),
    [
        (ALL_RUNNING, None, True, []),
        ({**ALL_RUNNING, "email_00": "EXITED"}, None, False, ["email"]),
        ({**ALL_RUNNING, "prio_00": "BACKOFF", "update_00": "FATAL"}, None, False, ["prio", "update"]),
        # A configured worker that does not run counts unless queues asks for fewer (issue 21).
        ({**ALL_RUNNING, "default_01": "STOPPED"}, ONE_EACH, True, []),
        ({**ALL_RUNNING, "default_01": "STOPPED"}, None, False, ["default"]),
        ({**ALL_RUNNING, "default_01": "RUNNING", "default_02": "EXITED"}, None, False, ["default"]),
        ({**ALL_RUNNING, "default_01": "RUNNING", "default_02": "EXITED"}, {**ONE_EACH, "default": 2}, True, []),
    ],
)
def test_present_reports_and_changes_nothing(states, queues, healthy, short):
    table = Table(states)
    result = runner(table, queues=queues).run()
    assert (result["healthy"], result["short"], result["changed"]) == (healthy, short, False)
    assert table.changes() == []


def test_present_reports_dead_and_stopped_processes_per_queue():
    states = {
        **ALL_RUNNING,
        "default_01": "EXITED",
        "default_02": "STOPPED",
        "default_03": "FATAL",
        "default_04": "STARTING",
        "email_00": "BACKOFF",
        "scheduler_00": "STOPPED",
    }
    result = runner(Table(states)).run()
    default = result["queues"]["default"]
    assert (default["wanted"], default["configured"], default["running"], default["healthy"]) == (5, 5, 1, False)
    assert default["dead"] == ["default_01", "default_03"]
    assert default["stopped"] == ["default_02"]
    assert (result["queues"]["email"]["dead"], result["queues"]["email"]["stopped"]) == (["email_00"], [])
    assert (result["queues"]["cache"]["dead"], result["queues"]["cache"]["stopped"]) == ([], [])
    # Queues beyond MISP's five stay unjudged, but their dead and stopped are reported too.
    scheduler = result["queues"]["scheduler"]
    assert (scheduler["wanted"], scheduler["healthy"], scheduler["stopped"]) == (0, True, ["scheduler_00"])
    assert result["short"] == ["default", "email"]


def test_summarize_wants_every_configured_process_only_when_asked():
    infos = [info("default_00"), info("default_01", "EXITED"), info("scheduler_00", "STOPPED")]
    every = summarize(infos, {"default": 1, "email": 1}, all_configured=True)
    assert [(q["wanted"], q["configured"], q["healthy"]) for q in every.values()] == [
        (2, 2, False),
        (1, 0, False),
        (0, 1, True),
    ]
    counted = summarize(infos, {"default": 1, "email": 1})
    assert counted["default"]["wanted"] == 1
    assert counted["default"]["healthy"] is True
    assert counted["default"]["dead"] == ["default_01"]


def test_present_on_a_group_too_small_reports_unhealthy_instead_of_failing():
    table = Table({"default_00": "RUNNING"})
    result = runner(table, queues={"default": 2}).run()
    assert result["short"] == ["default"]


# --- running ---------------------------------------------------------------------------------


def test_running_starts_stopped_exited_and_fatal_but_not_starting_or_backoff():
    states = {
        "default_00": "STOPPED",
        "default_01": "RUNNING",
        "email_00": "EXITED",
        "cache_00": "FATAL",
        "prio_00": "BACKOFF",
        "update_00": "STARTING",
        "scheduler_00": "STOPPED",
    }
    table = Table(states)
    table.procs["prio_00"]["statename"] = "STARTING"  # supervisord's own retry succeeds
    result = runner(table, state="running").run()
    assert table.changes() == [("start", "default_00"), ("start", "email_00"), ("start", "cache_00")]
    assert result["started"] == ["default_00", "email_00", "cache_00"]
    assert result["changed"] is True
    assert result["healthy"] is True
    assert result["diff"]["before"]["default_00"] == "STOPPED"
    assert result["diff"]["after"]["default_00"].startswith("RUNNING pid 5")
    # Unlisted queues are left alone.
    assert result["queues"]["scheduler"]["processes"][0]["state"] == "STOPPED"


def test_running_without_queues_waits_for_every_configured_process():
    table = Table({**ALL_RUNNING, "default_01": "EXITED", "default_02": "STOPPED"})
    result = runner(table, state="running").run()
    assert result["started"] == ["default_01", "default_02"]
    assert result["queues"]["default"]["running"] == 3
    assert result["healthy"] is True


def test_running_when_healthy_changes_nothing():
    table = Table(ALL_RUNNING)
    result = runner(table, state="running").run()
    assert (result["changed"], result["started"], table.changes()) == (False, [], [])


def test_running_only_starts_the_listed_queues():
    table = Table({**ALL_RUNNING, "default_00": "STOPPED", "email_00": "STOPPED"})
    result = runner(table, state="running", queues={"email": 1}).run()
    assert result["started"] == ["email_00"]
    assert result["queues"]["default"]["processes"][0]["state"] == "STOPPED"


def test_running_in_check_mode_says_what_it_would_start_and_starts_nothing():
    table = Table({**ALL_RUNNING, "default_00": "STOPPED", "update_00": "FATAL"})
    result = runner(table, check_mode=True, state="running").run()
    assert table.changes() == []
    assert result["started"] == ["default_00", "update_00"]
    assert result["changed"] is True
    assert result["healthy"] is False
    assert result["diff"]["after"]["default_00"] == "RUNNING"
    assert result["diff"]["before"]["default_00"] == "STOPPED"


def test_running_fails_at_the_timeout_naming_the_crashing_queue():
    clock = Clock()
    table = Table({**ALL_RUNNING, "update_00": "FATAL"}, crashing={"update_00"})
    with pytest.raises(WorkersError) as caught:
        runner(table, clock=clock, state="running", wait_timeout=7).run()
    error = caught.value
    assert error.message.startswith("Timed out after 7s waiting for the workers of group 'misp-workers' to start")
    assert "update (0/1 RUNNING; update_00 FATAL)" in error.message
    assert "default" not in error.message.split("workers:", 1)[1]
    assert 7 <= clock.now <= 7.5
    assert error.result["short"] == ["update"]
    assert error.result["started"] == ["update_00"]
    assert error.result["changed"] is True


def test_running_refuses_before_starting_anything_when_numprocs_is_too_small():
    table = Table({**ALL_RUNNING, "default_00": "STOPPED"})
    with pytest.raises(WorkersError, match="default wants 2 but has 1") as caught:
        runner(table, state="running", queues={"default": 2}).run()
    assert table.changes() == []
    assert caught.value.result["changed"] is False


# --- restarted -------------------------------------------------------------------------------


def test_restarted_stops_then_starts_the_group_and_gives_new_pids():
    table = Table({**ALL_RUNNING, "scheduler_00": "STOPPED"})
    old = {name: p["pid"] for name, p in table.procs.items()}
    result = runner(table, state="restarted").run()
    assert table.changes() == [("stop_group", GROUP), ("start_group", GROUP)]
    assert result["restarted"] == [f"{q}_00" for q in DEFAULT_QUEUES] + ["scheduler_00"]
    assert result["changed"] is True
    assert result["healthy"] is True
    assert all(p["pid"] != old[p["name"]] for q in result["queues"].values() for p in q["processes"])


def test_restarted_in_check_mode_restarts_nothing():
    table = Table(ALL_RUNNING)
    result = runner(table, check_mode=True, state="restarted").run()
    assert table.changes() == []
    assert result["changed"] is True
    assert result["restarted"] == [f"{q}_00" for q in DEFAULT_QUEUES]


class StuckTable(Table):
    """cache_00 ignores SIGTERM and stays STOPPING."""

    def _settle(self):
        for name, proc in self.procs.items():
            if proc["statename"] == "STOPPING" and name != "cache_00":
                proc.update(statename="STOPPED", pid=0)


def test_restarted_fails_at_the_timeout_when_a_worker_will_not_stop():
    table = StuckTable(ALL_RUNNING)
    with pytest.raises(WorkersError) as caught:
        runner(table, state="restarted", wait_timeout=3).run()
    assert caught.value.message.endswith("to stop: still running: cache_00 STOPPING")
    assert table.changes() == [("stop_group", GROUP)]


# --- MISP's second opinion -------------------------------------------------------------------


class Misp:
    """Answers GET /servers/getWorkers with ``answer``, or raises it when it is an exception."""

    def __init__(self, answer):
        self.answer = answer
        self.paths = []

    def get(self, path):
        self.paths.append(path)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _queues():
    infos = [info("default_00"), info("email_00", "FATAL"), info("scheduler_00", "STOPPED")]
    return summarize(infos, {"default": 1, "email": 1})


@pytest.mark.parametrize(
    ("answer", "disagree"),
    [
        # MISP on another pod sees no live default worker (issue 8616), but email it agrees on.
        ({"default": {"ok": False}, "email": {"ok": False}, "scheduler": {"ok": False}}, ["default"]),
        ({"default": {"ok": True}, "email": {"ok": True}}, ["email"]),
        ({"default": {"ok": True}}, []),
        (["Background jobs not enabled"], []),
    ],
)
def test_misp_opinion_lists_listed_queues_judged_differently(answer, disagree):
    misp = Misp(answer)
    opinion = misp_opinion(misp, _queues())
    assert misp.paths == ["/servers/getWorkers"]
    assert opinion == {"answer": answer, "error": None, "disagree": disagree}


def test_misp_opinion_reports_a_failure_instead_of_raising():
    opinion = misp_opinion(Misp(MispApiError("GET https://misp/servers/getWorkers failed: HTTP 403")), _queues())
    assert opinion == {"answer": None, "error": "GET https://misp/servers/getWorkers failed: HTTP 403", "disagree": []}


# --- timeouts (issue 21, point 6) ----------------------------------------------------------------


def module_params(**extra):
    return {
        "supervisor_url": "http://127.0.0.1:9",
        "supervisor_user": None,
        "supervisor_password": None,
        "supervisor_validate_certs": True,
        "supervisor_ca_path": None,
        "supervisor_timeout": 10.0,
        "url": None,
        "api_key": None,
        "validate_certs": True,
        "ca_path": None,
        "timeout": 30.0,
        **params(),
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        ({"supervisor_timeout": -1.0}, SupervisorError, "supervisor_timeout must be a positive number of seconds"),
        ({"supervisor_timeout": 0.0}, SupervisorError, "supervisor_timeout must be a positive number of seconds"),
        ({"timeout": 0.0}, WorkersError, "timeout must be a positive number of seconds, got 0.0"),
        (
            {"timeout": -2.0, "url": "https://misp.test", "api_key": "k"},
            MispApiError,
            "timeout must be a positive number of seconds, got -2.0",
        ),
    ],
)
def test_non_positive_timeouts_are_refused_before_supervisord_is_asked(extra, error, message):
    # Port 9 (discard) is closed here: reaching it would fail with "Connection refused" instead.
    with pytest.raises(error) as caught:
        execute(module_params(**extra))
    assert caught.value.message.startswith(message)
    assert str(next(iter(extra.values()))) in caught.value.message
