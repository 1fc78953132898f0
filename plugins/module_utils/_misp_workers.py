# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MISP's background workers as supervisord runs them: queue model, health, start/restart/wait.

Processes of the ``misp-workers`` group are named ``<queue>_NN`` (``default_00``), one program
per queue (MISP's docs/background-jobs-migration-guide.md, misp-docker's 50-workers.conf).
"""

from __future__ import annotations

import time

from ansible.module_utils.common.validation import check_type_int

from ansible_collections.cti.misp_platform.plugins.module_utils._connection import positive_seconds
from ansible_collections.cti.misp_platform.plugins.module_utils._misp_api import (
    MISP_API_ARGSPEC,
    MispApi,
    MispApiError,
)
from ansible_collections.cti.misp_platform.plugins.module_utils._port_forward import (
    PORT_FORWARD_SPEC,
    Direct,
    PortForwardError,
    reach,
)
from ansible_collections.cti.misp_platform.plugins.module_utils._supervisor import (
    SUPERVISOR_ARGSPEC,
    SUPERVISOR_REQUIRED_TOGETHER,
    Supervisor,
    SupervisorError,
)

# MISP's BackgroundJobsTool::VALID_QUEUES; the first five are the ones `cake start_worker` serves.
VALID_QUEUES = ("default", "email", "cache", "prio", "update", "scheduler")
DEFAULT_QUEUES = VALID_QUEUES[:5]

# Keep in sync with the module's DOCUMENTATION. ``queues`` is checked by wanted_counts() rather
# than by suboptions: ansible-core drops every no_log value from the failure output when a
# suboption element is not a mapping, and this module carries passwords.
WORKERS_ARGSPEC = {
    "state": {"type": "str", "default": "present", "choices": ["present", "running", "restarted"]},
    "group": {"type": "str", "default": "misp-workers"},
    "queues": {"type": "dict"},
    "wait_timeout": {"type": "int", "default": 60},
}

# The MISP API is an optional second opinion here, so its connection options are too.
MISP_OPINION_ARGSPEC = {name: dict(spec, required=False) for name, spec in MISP_API_ARGSPEC.items()}
MISP_OPINION_REQUIRED_TOGETHER = [["url", "api_key"]]


def argument_spec():
    """The module's options, and its checks as AnsibleModule takes them."""
    spec = dict(SUPERVISOR_ARGSPEC, port_forward=PORT_FORWARD_SPEC, **MISP_OPINION_ARGSPEC, **WORKERS_ARGSPEC)
    return spec, {"required_together": SUPERVISOR_REQUIRED_TOGETHER + MISP_OPINION_REQUIRED_TOGETHER}


# Not running, and supervisord is not trying to start it: what `state: running` starts and what
# a group stop ends in. STARTING and BACKOFF are supervisord's own attempts; startProcess refuses
# them (ALREADY_STARTED).
STOPPED_STATES = frozenset(("STOPPED", "EXITED", "FATAL"))
# Ended, or failing to start, without being stopped: what MISP's worker page marks dead. STOPPED is
# reported apart (stopped on purpose); STARTING and STOPPING are on their way and in neither.
DEAD_STATES = frozenset(("EXITED", "FATAL", "BACKOFF", "UNKNOWN"))
POLL_INTERVAL = 0.5


class WorkersError(Exception):
    """The workers could not be brought to the wanted state; ``result`` is what was seen and done."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.message = message
        self.result = result or {}


def wanted_counts(params):
    """``{queue: wanted RUNNING processes}`` from the module's ``queues``, checked."""
    if params.get("wait_timeout") is not None and params["wait_timeout"] < 1:
        raise WorkersError(f"wait_timeout must be at least 1 second, got {params['wait_timeout']}")
    queues = params.get("queues")
    if queues is None:
        return dict.fromkeys(DEFAULT_QUEUES, 1)
    if not queues:
        raise WorkersError("queues must name at least one queue")
    wanted = {}
    for name, count in queues.items():
        if name not in VALID_QUEUES:
            raise WorkersError(f"queues names unknown queue '{name}'; MISP's queues are {', '.join(VALID_QUEUES)}")
        try:
            if isinstance(count, bool):
                raise TypeError(f"{count!r} is a boolean")
            number = check_type_int(count)
        except TypeError as exc:
            raise WorkersError(f"queues.{name} must be a number of processes, got {count!r}: {exc}") from None
        if number < 1:
            raise WorkersError(f"queues.{name} must be at least 1 process, got {number}")
        wanted[name] = number
    return wanted


def queue_of(name):
    """Queue served by process ``name``: MISP splits at the first underscore."""
    return name.split("_", 1)[0]


def process_view(info):
    state = info["statename"]
    return {
        "name": info["name"],
        "state": state,
        "pid": info["pid"],
        "uptime": max(0, info["now"] - info["start"]) if state == "RUNNING" else 0,
        "description": info.get("description", ""),
    }


def _queue_entry(wanted):
    return {"wanted": wanted, "configured": 0, "running": 0, "dead": [], "stopped": [], "processes": []}


def summarize(infos, wanted, all_configured=False):
    """Per-queue report of the group's processes against ``wanted``, listed queues first.

    With ``all_configured`` (the module's ``queues`` omitted), a queue of ``wanted`` needs every
    process the group configures for it RUNNING, and at least its count.
    """
    queues = {name: _queue_entry(count) for name, count in wanted.items()}
    for info in sorted(infos, key=lambda i: i["name"]):
        entry = queues.setdefault(queue_of(info["name"]), _queue_entry(0))
        entry["processes"].append(process_view(info))
        state = info["statename"]
        entry["running"] += state == "RUNNING"
        if state in DEAD_STATES:
            entry["dead"].append(info["name"])
        elif state == "STOPPED":
            entry["stopped"].append(info["name"])
    for name, entry in queues.items():
        entry["configured"] = len(entry["processes"])
        if all_configured and name in wanted:
            entry["wanted"] = max(entry["wanted"], entry["configured"])
        entry["healthy"] = entry["running"] >= entry["wanted"]
    return queues


def short_queues(queues):
    return [name for name, entry in queues.items() if not entry["healthy"]]


def describe_short(queues):
    """``queues short of RUNNING workers: default (1/2 RUNNING; default_01 FATAL: Exited too quickly)``."""
    parts = []
    for name in short_queues(queues):
        entry = queues[name]
        others = [
            f"{p['name']} {p['state']}" + (f": {p['description']}" if p["description"] else "")
            for p in entry["processes"]
            if p["state"] != "RUNNING"
        ]
        detail = "; ".join(others) if others else "no such process in the group"
        parts.append(f"{name} ({entry['running']}/{entry['wanted']} RUNNING; {detail})")
    return "queues short of RUNNING workers: " + ", ".join(parts)


def check_capacity(queues, group):
    """Fail before changing anything when the group cannot ever satisfy a queue."""
    lacking = [
        f"{name} wants {entry['wanted']} but has {len(entry['processes'])}"
        for name, entry in queues.items()
        if len(entry["processes"]) < entry["wanted"]
    ]
    if lacking:
        raise WorkersError(
            f"supervisord group '{group}' has too few processes configured (numprocs): {', '.join(lacking)}"
        )


def _all_stopped(queues):
    return all(p["state"] in STOPPED_STATES for entry in queues.values() for p in entry["processes"])


def _describe_not_stopped(queues):
    still = [
        f"{p['name']} {p['state']}"
        for entry in queues.values()
        for p in entry["processes"]
        if p["state"] not in STOPPED_STATES
    ]
    return "still running: " + ", ".join(still)


def _states(queues):
    return {
        p["name"]: f"{p['state']} pid {p['pid']}" if p["pid"] else p["state"]
        for entry in queues.values()
        for p in entry["processes"]
    }


class WorkersRunner:
    """Reports, starts or restarts the workers of one supervisord group."""

    def __init__(self, supervisor, params, check_mode=False, clock=time.monotonic, sleep=time.sleep):
        self.supervisor = supervisor
        self.group = params["group"]
        self.state = params["state"]
        self.wait_timeout = params["wait_timeout"]
        self.wanted = wanted_counts(params)
        # Without queues, every configured worker of MISP's queues must run, as MISP's worker page
        # marks any that does not dead.
        self.all_configured = params.get("queues") is None
        self.check_mode = check_mode
        self._clock = clock
        self._sleep = sleep
        self.started = []
        self.restarted = []

    def read(self):
        return summarize(self.supervisor.group_processes(self.group), self.wanted, self.all_configured)

    def run(self):
        before = self.read()
        if self.state != "present":
            try:
                check_capacity(before, self.group)
            except WorkersError as exc:
                exc.result = self._report(before, before)
                raise
        deadline = self._clock() + self.wait_timeout
        try:
            if self.state == "running":
                self._start_stopped(before)
            elif self.state == "restarted":
                self._restart(before, deadline)
            if self.state == "present" or self.check_mode:
                return self._report(before, before)
            after = self._wait(deadline, "start", lambda qs: not short_queues(qs), describe_short)
        except WorkersError as exc:
            exc.result = self._report(exc.result["queues"], before)
            raise
        return self._report(after, before)

    def _start_stopped(self, before):
        """Start what supervisord gave up on or never started, like MISP's restartDeadWorkers."""
        names = [p["name"] for queue in self.wanted for p in before[queue]["processes"] if p["state"] in STOPPED_STATES]
        if self.check_mode:
            self.started = names
        else:
            self.started = [name for name in names if self.supervisor.start_process(self.group, name)]

    def _restart(self, before, deadline):
        """Stop the whole group, then start it, like MISP's restartWorkers."""
        self.restarted = [p["name"] for entry in before.values() for p in entry["processes"]]
        if self.check_mode:
            return
        self.supervisor.stop_group(self.group)
        self._wait(deadline, "stop", _all_stopped, _describe_not_stopped)
        self.supervisor.start_group(self.group)

    def _report(self, after, before):
        touched = self.started or self.restarted
        predicted = _states(after)
        if self.check_mode:
            predicted.update((name, "RUNNING") for name in touched)
        return {
            "changed": bool(touched),
            "queues": after,
            "healthy": not short_queues(after),
            "short": short_queues(after),
            "started": self.started,
            "restarted": self.restarted,
            "diff": {"before": _states(before), "after": predicted},
        }

    def _wait(self, deadline, what, done, describe):
        while True:
            queues = self.read()
            if done(queues):
                return queues
            if self._clock() >= deadline:
                raise WorkersError(
                    f"Timed out after {self.wait_timeout}s waiting for the workers of group '{self.group}' "
                    f"to {what}: {describe(queues)}",
                    {"queues": queues},
                )
            self._sleep(POLL_INTERVAL)


def misp_opinion(api, queues):
    """MISP's own view (GET /servers/getWorkers), beside supervisord's; reported, never judged.

    MISP decides ``alive`` from /proc/<pid> on the pod that answers, so workers in another pod
    look dead to it (MISP issue 8616): ``disagree`` lists the queues where the two differ.
    """
    try:
        answer = api.get("/servers/getWorkers")
    except MispApiError as exc:
        return {"answer": None, "error": exc.message, "disagree": []}
    disagree = []
    if isinstance(answer, dict):
        disagree = [
            name
            for name, entry in queues.items()
            if entry["wanted"]
            and isinstance(answer.get(name), dict)
            and bool(answer[name].get("ok")) != entry["healthy"]
        ]
    return {"answer": answer, "error": None, "disagree": disagree}


def execute(params, check_mode=False, route=None):
    """Everything the module does; raises WorkersError, SupervisorError or MispApiError.

    Both clients are built, and so every option checked, before supervisord is asked anything
    and before ``route`` (a _port_forward.reach() result for ``supervisor_url``) is opened.
    """
    runner = WorkersRunner(Supervisor(params), params, check_mode)
    if params.get("url"):
        api = MispApi(params)
    else:
        api = None
        try:
            # Unused without url, but a bad value is a mistake all the same.
            positive_seconds("timeout", params.get("timeout"), 30)
        except ValueError as exc:
            raise WorkersError(str(exc)) from None
    with route or Direct() as reached:
        try:
            runner.supervisor = Supervisor(dict(params, supervisor_url=reached.url(params["supervisor_url"])))
            result = runner.run()
        except WorkersError as exc:
            exc.message = reached.explain(exc.message)
            if api:
                exc.result["misp_workers"] = misp_opinion(api, exc.result["queues"])
            raise
        except SupervisorError as exc:
            exc.message = reached.explain(exc.message)
            raise
    if api:
        result["misp_workers"] = misp_opinion(api, result["queues"])
    return result


def run_module(module):
    """Entry point of the misp_worker_status module: report or act; errors become fail_json."""
    try:
        result = execute(module.params, module.check_mode, reach(module.params, "supervisor_url"))
    except WorkersError as exc:
        module.fail_json(msg=exc.message, **exc.result)
    except (SupervisorError, MispApiError) as exc:
        module.fail_json(msg=exc.message)
    except PortForwardError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)
