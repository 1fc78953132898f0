"""longhorn_volume against the rig's kube-apiserver, with the stand-in Longhorn CRDs.

Longhorn-manager cannot run here: where a test needs it, a thread plays its part by patching the
Volume's status subresource. Each test works in its own namespace, deleted afterwards.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, UnprocessibleEntityError

from tests.integration._helpers import run_module_play

pytestmark = pytest.mark.rig

PLAYBOOK = Path(__file__).parent / "targets" / "longhorn_volume" / "volume.yml"
GI = 1024**3


@pytest.fixture(scope="module")
def dyn(k8s_cluster):
    return DynamicClient(config.new_client_from_config(config_file=k8s_cluster["kubeconfig"]))


@pytest.fixture(scope="module")
def volumes(dyn):
    return dyn.resources.get(api_version="longhorn.io/v1beta2", kind="Volume")


@pytest.fixture(scope="module")
def api_url(k8s_cluster):
    kubeconfig = yaml.safe_load(Path(k8s_cluster["kubeconfig"]).read_text())
    return kubeconfig["clusters"][0]["cluster"]["server"]


@pytest.fixture
def ns(dyn):
    name = f"lv-test-{secrets.token_hex(3)}"
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"metadata": {"name": name}})
    yield name
    pvs = dyn.resources.get(api_version="v1", kind="PersistentVolume")
    for pv in pvs.get().items:
        if pv.metadata.name.startswith(name):
            pvs.delete(name=pv.metadata.name)
    namespaces.delete(name=name)


@pytest.fixture
def play(k8s_cluster, run_playbook, tmp_path, ns):
    """Runs volume.yml with the given module options; namespace defaults to the test's own."""

    def call(check=False, diff=False, **args):
        args.setdefault("namespace", ns)
        env = {"K8S_AUTH_KUBECONFIG": k8s_cluster["kubeconfig"]}
        if diff:
            env["ANSIBLE_DIFF_ALWAYS"] = "true"
        return run_module_play(run_playbook, PLAYBOOK, tmp_path, "lv_args", "lv_result_path", args, check, env)

    return call


def snapshot(volumes, ns):
    """Every Volume in ns with its resourceVersion and spec: equal snapshots mean nothing changed."""
    return {v.metadata.name: (v.metadata.resourceVersion, v.to_dict()["spec"]) for v in volumes.get(namespace=ns).items}


def get_volume(volumes, ns, name):
    return volumes.get(name=name, namespace=ns).to_dict()


def set_status(volumes, ns, name, **status):
    volumes.status.patch(body={"status": status}, name=name, namespace=ns, content_type="application/merge-patch+json")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_create_is_idempotent(play, volumes, ns):
    first = play(name="vol", size="1Gi", number_of_replicas=2, data_locality="best-effort", access_mode="rwo")
    assert first.rc == 0, first.output
    assert first.result["changed"] is True
    assert first.result["method"] == "create"
    spec = get_volume(volumes, ns, "vol")["spec"]
    assert spec == {"size": str(GI), "numberOfReplicas": 2, "dataLocality": "best-effort", "accessMode": "rwo"}

    second = play(name="vol", size="1Gi", number_of_replicas=2, data_locality="best-effort", access_mode="rwo")
    assert second.rc == 0, second.output
    assert second.result["changed"] is False
    assert second.changed == 0


def test_plain_bytes_and_rounding_are_idempotent(play, volumes, ns):
    # 1G is not a multiple of 2 MiB: the module rounds up as Longhorn's webhook would.
    assert play(name="vol", size="1G").rc == 0
    assert get_volume(volumes, ns, "vol")["spec"]["size"] == "1000341504"
    again = play(name="vol", size=1000341504)
    assert again.rc == 0, again.output
    assert again.result["changed"] is False


def test_check_mode_creates_nothing(play, volumes, ns):
    run = play(check=True, name="vol", size="2Gi")
    assert run.rc == 0, run.output
    assert run.result["changed"] is True
    # The API server validated the object as a dry run and returned it.
    assert run.result["result"]["spec"]["size"] == str(2 * GI)
    with pytest.raises(NotFoundError):
        volumes.get(name="vol", namespace=ns)


def test_grow_updates_and_diff_shows_it(play, volumes, ns):
    assert play(name="vol", size="1Gi").rc == 0
    checked = play(check=True, diff=True, name="vol", size="2Gi")
    assert checked.result["changed"] is True
    assert checked.result["diff"]["before"]["spec"]["size"] == str(GI)
    assert checked.result["diff"]["after"]["spec"]["size"] == str(2 * GI)
    assert get_volume(volumes, ns, "vol")["spec"]["size"] == str(GI)

    grown = play(diff=True, name="vol", size="2Gi", number_of_replicas=3)
    assert grown.rc == 0, grown.output
    assert grown.result["changed"] is True
    assert grown.result["method"] == "update"
    assert grown.result["diff"]["before"]["spec"]["size"] == str(GI)
    assert grown.result["diff"]["after"]["spec"] == {"size": str(2 * GI), "numberOfReplicas": 3}
    assert "numberOfReplicas" in grown.output  # the diff is printed, as with kubernetes.core.k8s
    assert get_volume(volumes, ns, "vol")["spec"] == {"size": str(2 * GI), "numberOfReplicas": 3}


@pytest.mark.parametrize(
    ("created", "change", "message"),
    [
        ({"size": "2Gi"}, {"size": "1Gi"}, "size (spec.size): Longhorn volumes only grow"),
        (
            {"size": "1Gi", "data_engine": "v1"},
            {"size": "1Gi", "data_engine": "v2"},
            "data_engine (spec.dataEngine): cannot change from 'v1' to 'v2'",
        ),
        ({"size": "1Gi"}, {"size": "1Gi", "encrypted": True}, "encrypted (spec.encrypted): cannot change"),
    ],
    ids=["shrink", "data_engine", "encrypted"],
)
def test_refused_change_leaves_the_volume_unchanged(play, volumes, ns, created, change, message):
    assert play(name="vol", **created).rc == 0
    before = snapshot(volumes, ns)
    run = play(name="vol", **change)
    assert run.rc != 0
    assert message in run.msg
    assert snapshot(volumes, ns) == before


def test_absent_deletes(play, volumes, ns):
    assert play(name="vol", size="1Gi").rc == 0
    checked = play(check=True, name="vol", state="absent")
    assert checked.result["changed"] is True
    assert get_volume(volumes, ns, "vol")["metadata"]["name"] == "vol"
    gone = play(name="vol", state="absent", wait=True, wait_timeout=20)
    assert gone.rc == 0, gone.output
    assert gone.result["changed"] is True
    with pytest.raises(NotFoundError):
        volumes.get(name="vol", namespace=ns)
    again = play(name="vol", state="absent")
    assert again.result["changed"] is False


def test_wait_succeeds_when_longhorn_reports_the_state(play, volumes, ns):
    errors, stop = [], threading.Event()

    def longhorn_manager():
        try:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    volumes.get(name="vol", namespace=ns)
                    break
                except NotFoundError:
                    time.sleep(0.2)
            set_status(volumes, ns, "vol", state="detached", robustness="unknown")
            if not stop.wait(3):
                set_status(volumes, ns, "vol", state="attached", robustness="healthy", currentNodeID="rke2-agent-1")
        except Exception as e:  # reported by the test below
            errors.append(e)

    manager = threading.Thread(target=longhorn_manager, daemon=True)
    manager.start()
    try:
        run = play(
            name="vol",
            size="1Gi",
            wait=True,
            wait_for_state="attached",
            wait_for_robustness="healthy",
            wait_timeout=60,
            wait_sleep=1,
        )
    finally:
        stop.set()
        manager.join(timeout=10)
    assert not errors
    assert run.rc == 0, run.output
    assert run.result["result"]["status"]["state"] == "attached"
    assert run.result["result"]["status"]["robustness"] == "healthy"
    assert run.result["duration"] >= 2


def test_wait_times_out_naming_the_state_seen(play, volumes, ns):
    assert play(name="vol", size="1Gi").rc == 0
    set_status(volumes, ns, "vol", state="detached", robustness="unknown")
    started = time.monotonic()
    run = play(name="vol", size="1Gi", wait=True, wait_for_state="attached", wait_timeout=3, wait_sleep=1)
    assert run.rc != 0
    assert "timed out after 3s waiting for state=attached" in run.msg
    assert "last seen state='detached', robustness='unknown'" in run.msg
    assert time.monotonic() - started < 60


def test_pv_and_pvc_expose_the_volume(play, dyn, volumes, ns):
    pvs = dyn.resources.get(api_version="v1", kind="PersistentVolume")
    pvcs = dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim")
    options = {"name": "vol", "size": "1Gi", "pv": {"name": f"{ns}-pv", "fs_type": "xfs"}, "pvc": {"namespace": ns}}
    created = play(**options)
    assert created.rc == 0, created.output
    pv = pvs.get(name=f"{ns}-pv").to_dict()
    assert pv["spec"]["csi"] == {"driver": "driver.longhorn.io", "fsType": "xfs", "volumeHandle": "vol"}
    assert pv["spec"]["capacity"] == {"storage": str(GI)}
    pvc = pvcs.get(name="vol", namespace=ns).to_dict()
    assert pvc["spec"]["volumeName"] == f"{ns}-pv"
    assert play(**options).result["changed"] is False

    gone = play(name="vol", state="absent", pv={"name": f"{ns}-pv"}, pvc={"namespace": ns})
    assert gone.rc == 0, gone.output
    with pytest.raises(NotFoundError):
        volumes.get(name="vol", namespace=ns)
    # kube-controller-manager removes the PVC and PV protection finalizers; allow it some time.
    deadline = time.monotonic() + 30
    while True:
        left = [item.metadata.name for item in pvcs.get(namespace=ns).items]
        left += [item.metadata.name for item in pvs.get().items if item.metadata.name == f"{ns}-pv"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert left == []


@pytest.fixture
def expandable_class(dyn, ns):
    """A StorageClass that allows expansion, as Longhorn's longhorn-static does (cluster-scoped)."""
    classes = dyn.resources.get(api_version="storage.k8s.io/v1", kind="StorageClass")
    name = f"{ns}-static"
    classes.create(
        body={
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "driver.longhorn.io",
            "allowVolumeExpansion": True,
        }
    )
    yield name
    classes.delete(name=name)


def wait_bound(pvcs, ns, name):
    deadline = time.monotonic() + 60
    while pvcs.get(name=name, namespace=ns).status.phase != "Bound":
        assert time.monotonic() < deadline, f"PVC {name} not bound by kube-controller-manager within 60s"
        time.sleep(0.5)


def test_growing_a_claimed_volume_grows_the_claim_first(play, dyn, volumes, ns, expandable_class):
    pvcs = dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim")
    options = {
        "name": "vol",
        "pv": {"name": f"{ns}-pv", "storage_class_name": expandable_class},
        "pvc": {"namespace": ns},
    }
    assert play(size="1Gi", **options).rc == 0
    wait_bound(pvcs, ns, "vol")
    grown = play(size="2Gi", **options)
    assert grown.rc == 0, grown.output
    assert grown.result["changed"] is True
    assert pvcs.get(name="vol", namespace=ns).spec.resources.requests["storage"] == str(2 * GI)
    assert get_volume(volumes, ns, "vol")["spec"]["size"] == str(2 * GI)


def test_claim_refusing_to_grow_leaves_the_volume_unchanged(play, dyn, volumes, ns):
    # No StorageClass of that name allows expansion: the API server refuses to grow the claim.
    pvcs = dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim")
    options = {"name": "vol", "pv": {"name": f"{ns}-pv", "storage_class_name": f"{ns}-fixed"}, "pvc": {"namespace": ns}}
    assert play(size="1Gi", **options).rc == 0
    wait_bound(pvcs, ns, "vol")
    before = snapshot(volumes, ns)
    refused = play(size="2Gi", **options)
    assert refused.rc != 0
    assert "Failed to patch object: Kubernetes API at" in refused.msg
    assert "resize" in refused.msg
    assert snapshot(volumes, ns) == before
    assert pvcs.get(name="vol", namespace=ns).spec.resources.requests["storage"] == str(GI)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("dataLocality", "nearby", 'spec.dataLocality: Unsupported value: "nearby"'),
        ("accessMode", "rwm", 'spec.accessMode: Unsupported value: "rwm"'),
        ("frontend", "scsi", 'spec.frontend: Unsupported value: "scsi"'),
        ("numberOfReplicas", "three", "spec.numberOfReplicas in body must be of type integer"),
    ],
)
def test_schema_rejects_an_invalid_volume(volumes, ns, field, value, expected):
    """Without the module's checks, the API server's schema of the stand-in CRD refuses bad values."""
    body = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Volume",
        "metadata": {"name": "bad", "namespace": ns},
        "spec": {"size": str(GI), field: value},
    }
    with pytest.raises(UnprocessibleEntityError) as err:
        volumes.create(body=body, namespace=ns)
    assert expected in err.value.summary()
    assert snapshot(volumes, ns) == {}


BAD_INPUT = {
    "negative size": ({"size": -1}, "size: must be greater than zero, got -1"),
    "shrinking": ({"size": "512Mi"}, "size (spec.size): Longhorn volumes only grow"),
    "unknown data_locality": ({"data_locality": "nearby"}, "value of data_locality must be one of"),
    "unknown access_mode": ({"access_mode": "rwm"}, "value of access_mode must be one of"),
    "unknown data_engine": ({"data_engine": "v3"}, "value of data_engine must be one of"),
    "size in words": ({"size": "ten gigs"}, "size: cannot parse 'ten gigs'"),
    "replicas as words": ({"number_of_replicas": "three"}, "number_of_replicas"),
    "too many replicas": ({"number_of_replicas": 21}, "number_of_replicas: must be between 1 and 20, got 21"),
    "migratable rwo": ({"migratable": True, "access_mode": "rwo"}, "migratable: Longhorn migrates only rwx"),
    "missing name": ({"name": None}, "missing required arguments: name"),
    "missing kubeconfig": ({"kubeconfig": "/nonexistent/kubeconfig"}, "kubeconfig: file '"),
    "unreachable host": ({"host": "https://127.0.0.1:{port}", "api_key": "x"}, "cannot reach the Kubernetes API at"),
    "wrong token": ({"host": "{api}", "api_key": "not-a-token", "validate_certs": False}, "401"),
    "TLS not verified": (
        {"host": "{api}", "api_key": "not-a-token", "validate_certs": True},
        "CERTIFICATE_VERIFY_FAILED",
    ),
}


@pytest.mark.parametrize(("change", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_fails_clearly_and_changes_nothing(play, volumes, ns, api_url, change, message):
    volumes.create(
        body={
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "Volume",
            "metadata": {"name": "vol", "namespace": ns},
            "spec": {"size": str(GI), "numberOfReplicas": 2},
        },
        namespace=ns,
    )
    before = snapshot(volumes, ns)
    args = {"name": "vol", "size": "1Gi"}
    for key, value in change.items():
        if isinstance(value, str):
            value = value.format(port=free_port(), api=api_url)
        args[key] = value
    run = play(**{k: v for k, v in args.items() if v is not None})
    assert run.rc != 0
    assert run.result.get("failed") is True
    assert message in run.msg
    assert snapshot(volumes, ns) == before
