"""Re-run cost of the host plays on the five-host scenario, with and without pipelining and facts kept.

On the rig's molecule scenario rke2_ha (five Debian podman hosts: three servers, two agents; the
stand-in RKE2), in one run: `molecule create` and a first `molecule converge` (playbooks/hosts.yml
then playbooks/cluster.yml), then the same converge played again with ansible-playbook and
molecule's own environment and inventory, once per variant of the connection and fact settings:

- Ansible's defaults: no pipelining, facts gathered by every play (gathering=implicit);
- pipelining (the project's ansible.cfg), gathering=implicit;
- pipelining and gathering=smart: a host's facts gathered once per run, by its first play;
- pipelining, gathering=smart and a jsonfile fact cache that an earlier run filled: no gathering.

For each: wall time, module invocations (bench/rerun's count_modules callback; loop items
counted), fact gatherings, changed (an idempotent re-run must report 0). Prints a table, writes
JSON (results/<date>-<commit>.json unless --json FILE), keeps each run's output under
$CTI_RIG_STATE/bench-hosts/<date>/, and destroys the hosts unless --keep. Run from the
repository root, with the cluster of CTI_RIG_CLUSTER / CTI_RIG_STATE up (the scenario registers
its hosts there as kwok nodes; the benchmark does not start it):

    export CTI_RIG_CLUSTER=cti-dev CTI_RIG_STATE=~/.cache/cti-misp-rig/state-dev
    bash tests/rig/cluster.sh up
    .venv/bin/python bench/hosts/run.py [--runs 2] [--keep]

The scenario's hosts have fixed names: do not run it while the test suite runs molecule.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Also runnable as a plain script: the rig's paths come from the repository.
sys.path.insert(0, str(REPO))

from bench._shared import markdown_table, median_sample, must, new_logdir, run
from tests.rig import RIG_CACHE

HERE = Path(__file__).resolve().parent
SCENARIO = "rke2_ha"
STATE = Path(os.environ.get("CTI_RIG_STATE", RIG_CACHE / "state-bench"))
COUNTER = REPO / "bench" / "rerun" / "callback_plugins"
GATHER = "ansible.builtin.gather_facts"
# The settings the variants set; molecule.yml's own values of them are left out.
VARIED = ("ANSIBLE_PIPELINING", "ANSIBLE_GATHERING")
VARIANTS = (
    ("no pipelining, gathering=implicit (Ansible's defaults)", {"ANSIBLE_PIPELINING": "false"}, False),
    ("pipelining, gathering=implicit", {"ANSIBLE_PIPELINING": "true"}, False),
    ("pipelining, gathering=smart", {"ANSIBLE_PIPELINING": "true", "ANSIBLE_GATHERING": "smart"}, False),
    (
        "pipelining, gathering=smart, jsonfile fact cache (warm)",
        {"ANSIBLE_PIPELINING": "true", "ANSIBLE_GATHERING": "smart", "ANSIBLE_CACHE_PLUGIN": "jsonfile"},
        True,
    ),
)


def base_env(ephemeral: Path) -> dict[str, str]:
    """The test suite's environment for molecule (test_molecule), on this state's cluster."""
    return {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        "CTI_RIG_STATE": str(STATE),
        "K8S_AUTH_KUBECONFIG": str(STATE / "kubeconfig"),
        "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def molecule_env(env: dict[str, str]) -> tuple[dict[str, str], Path, Path]:
    """What molecule gives ansible-playbook for the scenario's converge: environment, inventory
    directory and playbook, from molecule's own configuration code."""
    code = (
        "import json, sys\n"
        "from molecule import config\n"
        "c = config.Config(molecule_file=sys.argv[1], args={'base_config': [sys.argv[2]]},"
        " command_args={'subcommand': 'converge'})\n"
        "print(json.dumps([c.provisioner.env, c.scenario.inventory_directory, c.provisioner.playbooks.converge]))\n"
    )
    argv = [REPO / ".venv" / "bin" / "python", "-c", code]
    argv += [REPO / "molecule" / SCENARIO / "molecule.yml", REPO / ".config" / "molecule" / "config.yml"]
    provisioner, inventory, playbook = json.loads(must(argv, env=env).splitlines()[-1])
    return {**env, **provisioner}, Path(inventory), Path(playbook)


def measure(name: str, argv: list, env: dict[str, str], logdir: Path) -> dict:
    counts = logdir / "counts.jsonl"
    counts.unlink(missing_ok=True)
    env = {
        **env,
        "ANSIBLE_CALLBACK_PLUGINS": str(COUNTER),
        "ANSIBLE_CALLBACKS_ENABLED": "count_modules",
        "CTI_BENCH_COUNTS": str(counts),
        # Plain logs: molecule's environment forces colour.
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    load = os.getloadavg()
    start = time.monotonic()
    result = run(argv, env=env)
    elapsed = time.monotonic() - start
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    (logdir / f"{slug}.log").write_text(result.stdout + result.stderr)
    sample = {"name": name, "rc": result.returncode, "wall_s": round(elapsed, 1), "load_before": list(load)}
    reports = [json.loads(line) for line in counts.read_text().splitlines()] if counts.exists() else []
    if reports:
        report = reports[-1]
        sample["module_invocations"] = report["module_invocations"]
        sample["fact_gatherings"] = report["executed"].get(GATHER, 0)
        sample["executed"] = report["executed"]
        sample["changed"] = sum(host["changed"] for host in report["recap"].values())
        sample["failed"] = sum(host["failures"] + host["unreachable"] for host in report["recap"].values())
        sample["changed_tasks"] = report["changed_tasks"]
    if result.returncode:
        sample["error"] = (result.stdout + result.stderr)[-3000:]
    return sample


def table(samples: list[dict]) -> str:
    base = samples[0]["wall_s"]
    header = [
        "re-run of hosts.yml + cluster.yml",
        "wall s",
        "of defaults",
        "module invocations",
        "fact gatherings",
        "changed",
    ]
    rows = [
        [
            s["name"] + ("" if s["rc"] == 0 else f" (rc={s['rc']})"),
            f"{s['wall_s']:.1f}",
            f"{s['wall_s'] / base:.0%}",
            str(s.get("module_invocations", "-")),
            str(s.get("fact_gatherings", "-")),
            str(s.get("changed", "-")),
        ]
        for s in samples
    ]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--json", type=Path, help="where to write the results (default: bench/hosts/results/)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per variant (median)")
    parser.add_argument("--keep", action="store_true", help="leave the hosts running afterwards")
    args = parser.parse_args()

    started, logdir = new_logdir(STATE, "bench-hosts")
    commit = must(["git", "rev-parse", "HEAD"]).strip()
    dirty = [line[3:] for line in must(["git", "status", "--porcelain"]).splitlines() if line[3:][:6] != "bench/"]
    env = base_env(STATE / "bench-hosts" / "molecule")
    molecule = [REPO / ".venv" / "bin" / "molecule"]
    print(f"[bench] scenario {SCENARIO}, state {STATE}, commit {commit[:12]}, logs {logdir}", file=sys.stderr)
    try:
        print("[bench] molecule create and a first converge", file=sys.stderr)
        must([*molecule, "create", "-s", SCENARIO], env=env)
        start = time.monotonic()
        first = run([*molecule, "converge", "-s", SCENARIO], env=env)
        first_s = round(time.monotonic() - start, 1)
        (logdir / "first-converge.log").write_text(first.stdout + first.stderr)
        if first.returncode:
            raise SystemExit(f"the first converge failed: see {logdir / 'first-converge.log'}")
        converge_env, inventory, playbook = molecule_env(env)
        argv = [REPO / ".venv" / "bin" / "ansible-playbook", "--inventory", inventory, playbook]
        samples = []
        with tempfile.TemporaryDirectory(prefix="cti-bench-hosts-facts-") as facts:
            for name, overrides, warm in VARIANTS:
                variant = {k: v for k, v in converge_env.items() if k not in VARIED}
                variant.update(overrides)
                if warm:
                    variant["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = facts
                    print(f"[bench] {name}: filling the cache", file=sys.stderr)
                    measure(f"{name} filling", argv, variant, logdir)
                print(f"[bench] {name}", file=sys.stderr)
                samples.append(median_sample([measure(name, argv, variant, logdir) for _run in range(args.runs)]))
    finally:
        if not args.keep:
            run([*molecule, "destroy", "-s", SCENARIO], env=env)

    problems = [
        f"{s['name']}: rc={s['rc']}, changed={s.get('changed')}" for s in samples if s["rc"] or s.get("changed")
    ]
    results = {
        "date": started.isoformat(timespec="seconds"),
        "commit": commit,
        "dirty_outside_bench": dirty,
        "machine": {"cpus": os.cpu_count(), "host": platform.node()},
        "ansible_core": must([REPO / ".venv" / "bin" / "ansible-playbook", "--version"]).splitlines()[0],
        "scenario": SCENARIO,
        "first_converge_s": first_s,
        "samples": samples,
        "problems": problems,
    }
    out = args.json or HERE / "results" / f"{started:%Y%m%dT%H%M}-{commit[:7]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"first converge {first_s} s; commit {commit[:12]}; results in {out}\n")
    print(table(samples))
    for problem in problems:
        print(f"\nNOT IDEMPOTENT OR FAILED: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
