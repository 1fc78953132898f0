"""Re-run cost of the MISP layer and of site.yml against a no-op `helm upgrade` of the same objects.

On the rig (tests/rig), in one run: converges inventories/local with scripts/site.sh, makes a Helm
chart of the objects the MISP layer created in its namespace and installs it into a copy namespace,
then times side by side the layer's idempotent second run, its `--check --diff`, site.yml's second
run and `--check --diff`, a no-op `helm upgrade --install` of the chart and a no-op
`kubectl apply --server-side` of the same objects. For each it records the wall time, the ratio to
the helm no-op, the module invocations (callback_plugins/count_modules.py, loop items included)
and the API requests (delta of kube-apiserver's apiserver_request_total, less the background rate
of the idle cluster). Prints a Markdown table and writes JSON. Run from the repository root:

    CTI_RIG_CLUSTER=cti-bench CTI_RIG_STATE=~/.cache/cti-misp-rig/state-bench \\
        .venv/bin/python bench/rerun/run.py [--json FILE] [--repeat 3]

It measures whatever the tree holds (the collection resolves to this checkout, as
scripts/bootstrap.sh links it). The cluster keeps running afterwards; stop it with
`scripts/site.sh down` and the same environment.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# Also runnable as a plain script: the rig's paths come from the repository.
sys.path.insert(0, str(REPO))

from bench._shared import markdown_table, median_sample, must, new_logdir, run
from tests.rig import RIG_CACHE, rig_binary

HERE = Path(__file__).resolve().parent
CLUSTER = os.environ.get("CTI_RIG_CLUSTER", "cti-misp-bench")
STATE = Path(os.environ.get("CTI_RIG_STATE", RIG_CACHE / "state-bench"))
KUBECONFIG = STATE / "kubeconfig"
NAMESPACE = yaml.safe_load((REPO / "inventories/local/group_vars/all/platform.yml").read_text())["misp_namespace"]
COPY = f"{NAMESPACE}-bench-copy"
RELEASE = "misp-bench"
MISP_PLAY = yaml.safe_load((REPO / "playbooks/misp.yml").read_text())[0]["name"]
LABEL = "app.kubernetes.io/managed-by=cti.misp_platform"
# Kept between runs: when the MISP play of the first converge ran (see layer_objects).
WINDOW_FILE = STATE / "bench-rerun-misp-window.json"
# Objects that the API server or its controllers derive from the layer's objects.
DERIVED_KINDS = {"Endpoints", "EndpointSlice", "Event"}
# Written by the API server or controllers; an exported object must not carry them into the copy.
SERVER_METADATA = ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation", "selfLink")
SERVER_ANNOTATIONS = re.compile(
    r"^(kubectl\.kubernetes\.io/last-applied-configuration|deployment\.kubernetes\.io/|pv\.kubernetes\.io/"
    r"|volume\.kubernetes\.io/|volume\.beta\.kubernetes\.io/|batch\.kubernetes\.io/|meta\.helm\.sh/)"
)
PLAY = """\
- name: {name}
  hosts: controller
  gather_facts: false
  tasks:
{tasks}"""
NOOP_TASK = """\
    - name: Nothing
      ansible.builtin.meta: noop
"""
# A task that forks a worker, as each of misp.yml's tasks does (a meta task forks none), and does
# nothing in it.
TRIVIAL_TASK = """\
    - name: Nothing {n}
      ansible.builtin.assert: {{that: true, quiet: true}}
"""
JOB_LABELS = ("controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name")


def kubectl(*args, stdin=None) -> str:
    return must([rig_binary("kubectl"), "--kubeconfig", KUBECONFIG, *args], input=stdin)


def helm(*args) -> str:
    return must([rig_binary("helm"), "--kubeconfig", str(KUBECONFIG), *args])


def requests_total() -> dict[str, float]:
    """apiserver_request_total summed per verb, read from /metrics with the admin kubeconfig."""
    per_verb: dict[str, float] = {}
    for line in kubectl("get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{"):
            labels, value = line.rsplit(" ", 1)
            verb = re.search(r'verb="([^"]*)"', labels)
            key = verb[1] if verb else "?"
            per_verb[key] = per_verb.get(key, 0.0) + float(value)
    return per_verb


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(after[k] - before.get(k, 0)) for k in sorted(after) if after[k] != before.get(k, 0)}


def ansible_env(counts: Path) -> dict[str, str]:
    """scripts/site.sh's environment (.venv on PATH, the rig's cluster and state) plus the counter."""
    enabled = ",".join(filter(None, [os.environ.get("ANSIBLE_CALLBACKS_ENABLED"), "count_modules"]))
    plugins = ":".join(filter(None, [str(HERE / "callback_plugins"), os.environ.get("ANSIBLE_CALLBACK_PLUGINS")]))
    return {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        "CTI_RIG_CLUSTER": CLUSTER,
        "CTI_RIG_STATE": str(STATE),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_CALLBACKS_ENABLED": enabled,
        "ANSIBLE_CALLBACK_PLUGINS": plugins,
        "CTI_BENCH_COUNTS": str(counts),
    }


def vault_env() -> dict[str, str]:
    """VAULT_ADDR and VAULT_TOKEN of the OpenBao dev server that scripts/site.sh started."""
    bao = json.loads((STATE / "site" / "openbao" / "env.json").read_text())
    return {"VAULT_ADDR": bao["VAULT_ADDR"], "VAULT_TOKEN": bao["VAULT_TOKEN"]}


def read_counts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def converge(logdir: Path) -> dict:
    """scripts/site.sh once (set-up, cluster, volumes, OpenBao, site.yml, healthcheck)."""
    counts = logdir / "converge.counts.jsonl"
    start = time.monotonic()
    result = run(["bash", "scripts/site.sh"], env=ansible_env(counts))
    elapsed = time.monotonic() - start
    (logdir / "converge.log").write_text(result.stdout + result.stderr)
    if result.returncode:
        raise SystemExit(f"scripts/site.sh failed after {elapsed:.0f}s; log {logdir / 'converge.log'}")
    runs = read_counts(counts)
    site = next(r for r in runs if r["playbook"].endswith("site.yml"))
    misp = next(p for p in site["plays"] if p["name"] == MISP_PLAY)
    changed = sum(site["outcomes"].get("changed", {}).values())
    if site["changed_per_play"].get(MISP_PLAY):
        remember_window(misp)
    return {"wall_s": round(elapsed, 1), "changed": changed, "load": os.getloadavg()}


def namespace_uid() -> str:
    return json.loads(kubectl("get", "namespace", NAMESPACE, "-o", "json"))["metadata"]["uid"]


def remember_window(play: dict) -> None:
    """Adds the time span of a MISP play that changed something, for this namespace (see layer_objects)."""
    uid = namespace_uid()
    stored = json.loads(WINDOW_FILE.read_text()) if WINDOW_FILE.exists() else {}
    windows = stored.get("windows", []) if stored.get("namespace_uid") == uid else []
    windows.append([play["start"], play["end"]])
    WINDOW_FILE.write_text(json.dumps({"namespace_uid": uid, "windows": windows}))


def timestamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def layer_objects() -> tuple[list[dict], str]:
    """The objects the MISP layer created in its namespace, as exported by kubectl.

    Every layer labels its objects alike and writes them with the same field manager, so the MISP
    layer's objects are told apart by creation time: the collection's objects of the namespace
    that no controller owns and that were created while a MISP play of this benchmark's converge
    ran and changed something (windows kept in the state directory for this namespace's uid).
    Without such a window (a namespace converged outside this benchmark) every object of the
    collection in the namespace is taken, which the results then say.
    """
    resources = kubectl("api-resources", "--namespaced", "--verbs=list,create,patch", "-o", "name").split()
    items = json.loads(kubectl("get", ",".join(resources), "-n", NAMESPACE, "-l", LABEL, "-o", "json"))["items"]
    # A StatefulSet's claims (<template>-<set>-<ordinal>) have no owner reference by default.
    claim_prefixes = {
        f"{t['metadata']['name']}-{o['metadata']['name']}"
        for o in items
        if o["kind"] == "StatefulSet"
        for t in o["spec"].get("volumeClaimTemplates", [])
    }

    def derived(obj):
        prefix, _sep, ordinal = obj["metadata"]["name"].rpartition("-")
        return (
            obj["kind"] in DERIVED_KINDS
            or obj["metadata"].get("ownerReferences")
            or (obj["kind"] == "PersistentVolumeClaim" and prefix in claim_prefixes and ordinal.isdigit())
        )

    objects = [o for o in items if not derived(o)]
    stored = json.loads(WINDOW_FILE.read_text()) if WINDOW_FILE.exists() else {}
    if stored.get("namespace_uid") != namespace_uid():
        return objects, f"every object labelled {LABEL} (no MISP play of this benchmark created the namespace's)"
    # creationTimestamp has whole seconds.
    windows = [(int(start), end + 1) for start, end in stored["windows"]]

    def created_by_layer(obj):
        created = timestamp(obj["metadata"]["creationTimestamp"])
        return any(low <= created <= high for low, high in windows)

    return [o for o in objects if created_by_layer(o)], f"labelled {LABEL}, created while a MISP play ran"


def portable(obj: dict) -> dict:
    """The object as its author would write it: no status, no server-set fields, no namespace."""
    obj = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in obj["metadata"].items() if k not in (*SERVER_METADATA, "namespace")}
    annotations = {k: v for k, v in meta.get("annotations", {}).items() if not SERVER_ANNOTATIONS.match(k)}
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    obj["metadata"] = meta
    spec = obj.get("spec")
    if obj["kind"] == "Service":
        # Addresses are allocated per Service: the copy gets its own.
        for key in ("clusterIP", "clusterIPs", "healthCheckNodePort"):
            spec.pop(key, None)
        for port in spec.get("ports", []):
            port.pop("nodePort", None)
    elif obj["kind"] == "PersistentVolumeClaim":
        # Bound to the layer's volume; the copy's claim stays pending.
        spec.pop("volumeName", None)
    elif obj["kind"] == "Job":
        # The Job controller's selector and labels, generated per Job.
        spec.pop("selector", None)
        labels = spec["template"].get("metadata", {}).get("labels", {})
        for key in JOB_LABELS:
            labels.pop(key, None)
    return obj


def prepare_copy(objects: list[dict], workdir: Path) -> Path:
    """A chart of the objects, installed into the copy namespace, and their manifest for kubectl."""
    if run([rig_binary("kubectl"), "--kubeconfig", KUBECONFIG, "get", "namespace", COPY]).returncode == 0:
        kubectl("delete", "namespace", COPY, "--wait=true", "--timeout=300s")
    kubectl("create", "namespace", COPY)
    # The copy's controllers create no pod: no second MISP competes for the machine's two cores.
    kubectl("create", "quota", "no-pods", "--hard=pods=0", "-n", COPY)
    manifest = workdir / "objects.yaml"
    manifest.write_text(yaml.safe_dump_all([portable(o) for o in objects], sort_keys=False))
    manifest.chmod(0o600)
    chart = workdir / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": RELEASE, "version": "0.1.0", "type": "application"})
    )
    # .Files.Get puts the manifest in verbatim: Helm must not read {{ }} in MISP's config as its own.
    shutil.copy(manifest, chart / "objects.yaml")
    (chart / "templates" / "objects.yaml").write_text('{{ .Files.Get "objects.yaml" }}\n')
    helm("upgrade", "--install", RELEASE, str(chart), "-n", COPY)
    # The first server-side apply adds kubectl's field manager to every object; later ones are no-ops.
    kubectl(*KUBECTL_APPLY, "-f", str(manifest))
    # The first upgrade after that apply patches every object (80 PATCH requests on the rig); the
    # ones after it, the measured no-ops, patch only what the API server normalises (3 objects).
    helm("upgrade", "--install", RELEASE, str(chart), "-n", COPY)
    return chart


KUBECTL_APPLY = ("apply", "--server-side", "--force-conflicts", "--field-manager=cti-bench", "-n", COPY)


def background_rate(seconds: float) -> float:
    """API requests per second of the idle cluster (controllers, node heartbeats, the copy's quota)."""
    before = requests_total()
    time.sleep(seconds)
    return sum(delta(requests_total(), before).values()) / seconds


def measure(name: str, argv: list, env: dict | None, counts: Path | None, rate: float, logdir: Path) -> dict:
    load = os.getloadavg()
    before = requests_total()
    start = time.monotonic()
    result = run(argv, env=env)
    elapsed = time.monotonic() - start
    per_verb = delta(requests_total(), before)
    raw = sum(per_verb.values())
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    (logdir / f"{slug}.log").write_text(result.stdout + result.stderr)
    sample = {
        "name": name,
        "command": " ".join(map(str, argv)),
        "rc": result.returncode,
        "wall_s": round(elapsed, 2),
        "api_requests_raw": raw,
        "api_requests": max(0, round(raw - rate * elapsed)),
        "api_requests_per_verb": per_verb,
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    if counts is not None:
        runs = read_counts(counts)
        counts.unlink(missing_ok=True)
        if runs:
            report = runs[-1]
            sample["module_invocations"] = report["module_invocations"]
            sample["controller_only"] = report["controller_only"]
            sample["executed"] = report["executed"]
            sample["per_play"] = report["per_play"]
            sample["per_role"] = report["per_role"]
            sample["changed"] = sum(host["changed"] for host in report["recap"].values())
            sample["failed"] = sum(host["failures"] + host["unreachable"] for host in report["recap"].values())
            sample["changed_tasks"] = report["changed_tasks"]
            sample["tasks"] = sum(report["tasks_per_play"].values())
    if result.returncode:
        sample["error"] = (result.stdout + result.stderr)[-3000:]
    return sample


def tree_state() -> dict:
    commit = must(["git", "rev-parse", "HEAD"]).strip()
    paths = [line[3:] for line in must(["git", "status", "--porcelain"]).splitlines()]
    dirty = [path for path in paths if not path.startswith("bench/")]
    return {"commit": commit, "dirty_outside_bench": dirty}


def versions() -> dict:
    return {
        "ansible_core": must([REPO / ".venv" / "bin" / "ansible-playbook", "--version"]).splitlines()[0],
        "helm": must([rig_binary("helm"), "version", "--short"]).strip(),
        "kubectl": str(rig_binary("kubectl").name),
        "python": platform.python_version(),
    }


def table(samples: list[dict], helm_s: float) -> str:
    header = ["run", "wall s", "x helm no-op", "module invocations", "API requests", "changed", "load 1/5/15"]
    rows = [
        [
            s["name"] + ("" if s["rc"] == 0 else f" (rc={s['rc']})"),
            f"{s['wall_s']:.1f}",
            f"{s['wall_s'] / helm_s:.1f}",
            str(s.get("module_invocations", "-")),
            str(s["api_requests"]),
            str(s.get("changed", "-")),
            "/".join(f"{x:.1f}" for x in s["load_before"]),
        ]
        for s in samples
    ]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--json", type=Path, help="where to write the results (default: bench/rerun/results/)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command (the median is reported)")
    parser.add_argument("--idle", type=float, default=30, help="seconds to measure the idle request rate")
    args = parser.parse_args()

    started, logdir = new_logdir(STATE, "bench-rerun")
    tree = tree_state()
    print(f"[bench] cluster {CLUSTER}, state {STATE}, commit {tree['commit'][:12]}, logs {logdir}", file=sys.stderr)

    print("[bench] converging with scripts/site.sh", file=sys.stderr)
    converged = converge(logdir)
    objects, selection = layer_objects()
    kinds: dict[str, int] = {}
    for obj in objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    print(f"[bench] {len(objects)} objects of namespace {NAMESPACE} ({selection}): {kinds}", file=sys.stderr)

    counts = logdir / "counts.jsonl"
    env = {**ansible_env(counts), **vault_env()}
    playbook = [REPO / ".venv" / "bin" / "ansible-playbook", "-i", "inventories/local"]
    with tempfile.TemporaryDirectory(prefix="cti-bench-rerun-") as tmp:
        chart = prepare_copy(objects, Path(tmp))
        manifest = Path(tmp) / "objects.yaml"
        rate = background_rate(args.idle)
        print(f"[bench] idle cluster: {rate:.2f} API requests/s", file=sys.stderr)

        def median_of(runs):
            chosen = median_sample(runs)
            # Every run must have been a no-op, not only the median one.
            chosen["rc"] = max(r["rc"] for r in runs)
            if any("changed" in r for r in runs):
                chosen["changed"] = max(r.get("changed", 0) for r in runs)
                chosen["changed_tasks"] = [t for r in runs for t in r.get("changed_tasks", [])]
            return chosen

        def repeated(name, argv, env=None, counts=None):
            return median_of([measure(name, argv, env, counts, rate, logdir) for _repeat in range(args.repeat)])

        helm_argv = [rig_binary("helm"), "--kubeconfig", KUBECONFIG, "upgrade", "--install", RELEASE, chart, "-n", COPY]
        kubectl_argv = [rig_binary("kubectl"), "--kubeconfig", KUBECONFIG, *KUBECTL_APPLY, "-f", manifest]
        noop = Path(tmp) / "noop.yml"
        noop.write_text(PLAY.format(name="One no-op task", tasks=NOOP_TASK))
        # The helm no-op and misp.yml's second run alternate, so that a change of the machine's
        # load during the benchmark weighs on both sides of their ratio alike.
        print("[bench] helm no-op and misp.yml second run, alternately", file=sys.stderr)
        helm_runs, misp_runs = [], []
        misp_argv = [*playbook, "playbooks/misp.yml"]
        for _repeat in range(args.repeat):
            helm_runs.append(measure("helm upgrade --install no-op", helm_argv, None, None, rate, logdir))
            misp_runs.append(measure("misp.yml second run", misp_argv, env, counts, rate, logdir))
        # What Ansible charges for misp.yml's number of tasks alone: as many tasks that do nothing.
        task_count = median_of(misp_runs).get("tasks", 0)
        trivial = Path(tmp) / "trivial.yml"
        tasks = "".join(TRIVIAL_TASK.format(n=n) for n in range(task_count))
        trivial.write_text(PLAY.format(name=f"{task_count} trivial tasks", tasks=tasks))
        samples = [
            median_of(helm_runs),
            repeated("kubectl apply --server-side no-op", kubectl_argv),
            # What any run pays before its first task: ansible-playbook's start, the inventory, and
            # for misp.yml the parsing of its roles.
            repeated("floor: ansible-playbook of one no-op task", [*playbook, noop], env, counts),
            repeated("floor: misp.yml --list-tasks", [*playbook, "playbooks/misp.yml", "--list-tasks"], env, counts),
            repeated(f"floor: {task_count} trivial tasks (misp.yml's count)", [*playbook, trivial], env, counts),
            median_of(misp_runs),
        ]
        for name, argv in (
            ("misp.yml --check --diff", [*playbook, "playbooks/misp.yml", "--check", "--diff"]),
            ("site.yml second run", [*playbook, "site.yml"]),
            ("site.yml --check --diff", [*playbook, "site.yml", "--check", "--diff"]),
        ):
            print(f"[bench] {name}", file=sys.stderr)
            samples.append(repeated(name, argv, env, counts))
        helm("uninstall", RELEASE, "-n", COPY)
        kubectl("delete", "namespace", COPY, "--wait=false")

    helm_s = samples[0]["wall_s"]
    for sample in samples:
        sample["ratio_to_helm"] = round(sample["wall_s"] / helm_s, 2)
    problems = [
        f"{s['name']}: rc={s['rc']}, changed={s.get('changed')}: {s.get('changed_tasks')}"
        for s in samples
        if s["rc"] or s.get("changed")
    ]
    results = {
        "date": started.isoformat(timespec="seconds"),
        **tree,
        "machine": {"cpus": os.cpu_count(), "host": platform.node()},
        "versions": versions(),
        "cluster": CLUSTER,
        "converge": converged,
        "objects": {"count": len(objects), "kinds": kinds, "selection": selection},
        "idle_requests_per_s": round(rate, 3),
        "samples": samples,
        "problems": problems,
    }
    out = args.json or HERE / "results" / f"{started:%Y%m%dT%H%M}-{tree['commit'][:7]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{len(objects)} objects of namespace {NAMESPACE}; commit {tree['commit'][:12]}; results in {out}\n")
    print(table(samples, helm_s))
    for problem in problems:
        print(f"\nNOT IDEMPOTENT OR FAILED: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
