"""Counts task results per action, loop items included, and writes them as JSON at the end.

The rerun benchmark (bench/rerun/run.py) enables it only for its own runs, through
ANSIBLE_CALLBACK_PLUGINS and ANSIBLE_CALLBACKS_ENABLED=count_modules. Each ansible-playbook run
appends one JSON line to the file named by CTI_BENCH_COUNTS (scripts/site.sh runs two). Each loop
item is one module process, so items are what is counted: the loop task's own summary result is
not counted again. Plays carry their wall-clock start and end, so that the benchmark can tell
which objects a play created.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: count_modules
type: aggregate
short_description: count task results per action, loop items included (bench/rerun)
description:
  - Appends one JSON line per run to the file named by the environment variable CTI_BENCH_COUNTS.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""

# Actions the controller carries out itself: they start no module process. The action plugins of
# k8s_apply, k8s_info, misp_settings, misp_worker_status, vault_read and vault_kv2_get run them in
# the controller on a local connection, which every Kubernetes, MISP and Vault play uses
# (test_k8s_apply, test_k8s_info, test_misp_settings, test_misp_worker_status and
# test_vault_in_controller show it with a module interpreter that does not exist).
CONTROLLER_ONLY = frozenset(
    f"cti.misp_platform.{name}"
    for name in ("k8s_apply", "k8s_info", "misp_settings", "misp_worker_status", "vault_read", "vault_kv2_get")
) | frozenset(
    f"ansible.builtin.{name}"
    for name in (
        "add_host",
        "assert",
        "debug",
        "fail",
        "group_by",
        "include_role",
        "include_tasks",
        "include_vars",
        "meta",
        "set_fact",
        "set_stats",
        "validate_argument_spec",
    )
)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "count_modules"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("CTI_BENCH_COUNTS")
        # outcome ("ok", "changed", "failed", "skipped") -> action -> count
        self._outcomes = defaultdict(Counter)
        # play name -> action -> executed results (ok, changed or failed)
        self._per_play = defaultdict(Counter)
        # role name ("" outside roles) -> action -> executed results
        self._per_role = defaultdict(Counter)
        self._changed_tasks = []
        # play name -> changed results
        self._changed_per_play = Counter()
        # play name -> task results of any outcome, skipped included (each is a forked worker)
        self._tasks_per_play = Counter()
        self._play = ""
        # [{"name", "start", "end"}], epoch seconds
        self._plays = []
        self._playbook = ""

    def v2_playbook_on_start(self, playbook):
        self._playbook = playbook._file_name

    def _end_play(self):
        if self._plays:
            self._plays[-1]["end"] = time.time()

    def v2_playbook_on_play_start(self, play):
        self._end_play()
        self._play = play.get_name()
        self._plays.append({"name": self._play, "start": time.time()})

    def _count(self, result, outcome):
        task = result.task
        # Skipped tasks never ran: their action may be an unresolved template, so only the
        # literal name is used there.
        action = task.action if outcome == "skipped" else (task.resolved_action or task.action)
        self._outcomes[outcome][action] += 1
        self._tasks_per_play[self._play] += 1
        if outcome == "skipped":
            return
        self._per_play[self._play][action] += 1
        self._per_role[task._role.get_name() if task._role else ""][action] += 1
        if outcome == "changed":
            self._changed_per_play[self._play] += 1
            self._changed_tasks.append(f"{result.host.get_name()}: {task.get_name()}")

    @staticmethod
    def _is_loop_summary(result):
        return bool(result.task.loop or result.task.loop_with)

    def _ok(self, result):
        self._count(result, "changed" if result.result.get("changed") else "ok")

    def v2_runner_on_ok(self, result):
        if not self._is_loop_summary(result):
            self._ok(result)

    def v2_runner_item_on_ok(self, result):
        self._ok(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self._is_loop_summary(result):
            self._count(result, "failed")

    def v2_runner_item_on_failed(self, result):
        self._count(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._count(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._count(result, "skipped")

    def v2_runner_item_on_skipped(self, result):
        self._count(result, "skipped")

    def v2_playbook_on_stats(self, stats):
        self._end_play()
        if not self._path:
            return
        executed = Counter()
        for outcome in ("ok", "changed", "failed"):
            executed.update(self._outcomes[outcome])
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        report = {
            "executed": dict(executed.most_common()),
            "module_invocations": sum(n for action, n in executed.items() if action not in CONTROLLER_ONLY),
            "controller_only": sum(n for action, n in executed.items() if action in CONTROLLER_ONLY),
            "outcomes": {outcome: dict(counts) for outcome, counts in self._outcomes.items()},
            "per_play": {play: dict(counts) for play, counts in self._per_play.items()},
            "module_invocations_per_play": {
                play: sum(n for action, n in counts.items() if action not in CONTROLLER_ONLY)
                for play, counts in self._per_play.items()
            },
            "per_role": {role: dict(counts) for role, counts in self._per_role.items()},
            "changed_tasks": self._changed_tasks,
            "changed_per_play": dict(self._changed_per_play),
            "tasks_per_play": dict(self._tasks_per_play),
            "recap": recap,
            "playbook": self._playbook,
            "plays": self._plays,
        }
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(report, sort_keys=True) + "\n")
