"""Unit tests of the pure parts of module_utils/_longhorn.py: size, validation, spec, comparison."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.module_utils import _longhorn
from ansible_collections.cti.misp_platform.plugins.module_utils._longhorn import (
    LonghornError,
    build_volume,
    parse_size,
    persistent_volume,
    persistent_volume_claim,
    spec_changes,
    validate,
    volume_ready,
)

GI = 1024**3
MI = 1024**2


def params(**overrides):
    """Module parameters as AnsibleModule hands them over (every option present)."""
    base = {option: None for option in _longhorn.VOLUME_ARG_SPEC}
    base.update(
        name="vol1",
        namespace="longhorn-system",
        state="present",
        size="10Gi",
        wait=False,
        wait_timeout=120,
        wait_sleep=2,
    )
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10Gi", 10 * GI),
        ("512Mi", 512 * MI),
        (" 2Gi ", 2 * GI),
        ("1.5Gi", 1536 * MI),
        ("1Ti", 1024 * GI),
        (1073741824, GI),
        ("1073741824", GI),
        # Decimal units and odd byte counts round up to Longhorn's 2 MiB alignment.
        ("1G", 1000341504),
        ("1", 2 * MI),
        (2 * MI + 1, 4 * MI),
    ],
)
def test_parse_size(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ten gigs", "size: cannot parse 'ten gigs'"),
        ("10GB", "size: cannot parse '10GB'"),
        ("10gi", "size: cannot parse '10gi'"),
        ("-1Gi", "size: cannot parse '-1Gi'"),
        (-5, "size: must be greater than zero, got -5"),
        (0, "size: must be greater than zero, got 0"),
        ("0Mi", "size: must be greater than zero, got '0Mi'"),
        ("1.5", "size: '1.5' is not a whole number of bytes"),
        (True, "size: expected bytes or a quantity such as 10Gi, got True"),
        (None, "size: expected bytes or a quantity such as 10Gi, got None"),
    ],
)
def test_parse_size_rejects(value, message):
    with pytest.raises(LonghornError) as err:
        parse_size(value)
    assert str(err.value).startswith(message)


def test_validate_accepts_a_full_set_of_options():
    validate(
        params(
            number_of_replicas=1,
            data_locality="strict-local",
            access_mode="rwx",
            migratable=True,
            stale_replica_timeout=30,
            pv={"name": "vol1-pv", "fs_type": "xfs", "storage_class_name": "longhorn-static"},
            pvc={"name": "vol1", "namespace": "misp"},
            wait=True,
            wait_for_state="detached",
        )
    )


def test_validate_absent_needs_no_size():
    validate(params(state="absent", size=None))


@pytest.mark.parametrize("option", ["wait_timeout", "wait_sleep"])
@pytest.mark.parametrize("value", [0, -1])
def test_validate_absent_refuses_non_positive_waits(option, value):
    # state=absent waits for the deletion with them too; 0 used to time out at once (issue 21).
    with pytest.raises(LonghornError) as err:
        validate(params(state="absent", size=None, wait=True, **{option: value}))
    assert str(err.value).startswith(f"{option}: must be at least 1 second, got {value}")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Bad_Name"}, "name: 'Bad_Name' is not a valid name"),
        ({"name": "x" * 64}, "name: 'xxxxxxxx"),
        ({"namespace": "-ns"}, "namespace: '-ns' is not a valid name"),
        ({"pvc": {"name": None, "namespace": "My.NS"}, "pv": {}}, "pvc.namespace: 'My.NS'"),
        ({"size": None}, "size: required when state is present"),
        ({"size": "ten gigs"}, "size: cannot parse 'ten gigs'"),
        ({"number_of_replicas": 0}, "number_of_replicas: must be between 1 and 20, got 0"),
        ({"number_of_replicas": 21}, "number_of_replicas: must be between 1 and 20, got 21"),
        (
            {"number_of_replicas": 3, "data_locality": "strict-local"},
            "number_of_replicas: must be 1 when data_locality is strict-local, got 3",
        ),
        ({"stale_replica_timeout": 0}, "stale_replica_timeout: must be a positive number of minutes, got 0"),
        ({"migratable": True, "access_mode": "rwo"}, "migratable: Longhorn migrates only rwx volumes"),
        ({"encrypted": True, "data_engine": "v2"}, "encrypted: Longhorn does not encrypt volumes of data_engine v2"),
        ({"frontend": "", "pv": {"fs_type": "ext4"}}, "frontend: a volume without frontend cannot back"),
        ({"wait_timeout": 0}, "wait_timeout: must be at least 1 second, got 0"),
        ({"wait": True}, "wait: set wait_for_state and/or wait_for_robustness"),
    ],
)
def test_validate_rejects(overrides, message):
    with pytest.raises(LonghornError) as err:
        validate(params(**overrides))
    assert str(err.value).startswith(message)


def test_build_volume_sends_only_the_options_given():
    volume = build_volume(params(size="1Gi", number_of_replicas=2, node_selector=["ssd"], encrypted=False))
    assert volume == {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Volume",
        "metadata": {"name": "vol1", "namespace": "longhorn-system"},
        "spec": {"size": str(GI), "numberOfReplicas": 2, "nodeSelector": ["ssd"], "encrypted": False},
    }


EXISTING = {"size": str(10 * GI), "numberOfReplicas": 3, "nodeSelector": ["a", "b"], "dataEngine": "v1"}


@pytest.mark.parametrize(
    ("desired", "changes"),
    [
        ({"size": str(10 * GI), "numberOfReplicas": 3}, {}),
        ({"size": str(20 * GI)}, {"size": str(20 * GI)}),
        ({"size": str(10 * GI), "numberOfReplicas": 2}, {"numberOfReplicas": 2}),
        ({"size": str(10 * GI), "nodeSelector": ["b", "a"]}, {}),
        ({"size": str(10 * GI), "nodeSelector": ["c"]}, {"nodeSelector": ["c"]}),
        ({"size": str(10 * GI), "dataLocality": "best-effort"}, {"dataLocality": "best-effort"}),
        # Unset on the volume means Longhorn's default: asking for the default changes nothing.
        ({"size": str(10 * GI), "encrypted": False}, {}),
        ({"size": str(10 * GI), "dataEngine": "v1"}, {}),
    ],
)
def test_spec_changes(desired, changes):
    assert spec_changes(EXISTING, desired) == changes


@pytest.mark.parametrize(
    ("desired", "message"),
    [
        (
            {"size": str(5 * GI)},
            f"size (spec.size): Longhorn volumes only grow; cannot shrink from {10 * GI} to {5 * GI} bytes",
        ),
        ({"size": str(10 * GI), "dataEngine": "v2"}, "data_engine (spec.dataEngine): cannot change from 'v1' to 'v2'"),
        ({"size": str(10 * GI), "encrypted": True}, "encrypted (spec.encrypted): cannot change from False to True"),
    ],
)
def test_spec_changes_refuses(desired, message):
    with pytest.raises(LonghornError) as err:
        spec_changes(EXISTING, desired)
    assert str(err.value).startswith(message)


class Instance:
    """Stands for kubernetes' ResourceInstance: only to_dict() is used by the predicate."""

    def __init__(self, status):
        self.status = status

    def to_dict(self):
        return {"status": self.status} if self.status is not None else {}


@pytest.mark.parametrize(
    ("state", "robustness", "status", "ready"),
    [
        ("attached", "healthy", {"state": "attached", "robustness": "healthy"}, True),
        ("attached", "healthy", {"state": "attached", "robustness": "degraded"}, False),
        ("attached", None, {"state": "attached", "robustness": "faulted"}, True),
        (None, "healthy", {"state": "detached", "robustness": "healthy"}, True),
        ("detached", None, {"state": "creating"}, False),
        ("detached", None, None, False),
    ],
)
def test_volume_ready(state, robustness, status, ready):
    assert volume_ready(state, robustness)(Instance(status)) is ready


def test_volume_ready_on_missing_volume():
    assert volume_ready("attached")(None) is False


def test_pv_and_pvc_point_at_the_volume():
    p = params(
        access_mode="rwx",
        pv={"name": None, "fs_type": "xfs", "storage_class_name": "longhorn-static"},
        pvc={"name": "data", "namespace": "misp"},
    )
    pv = persistent_volume(p, build_volume(p))
    assert pv["metadata"] == {"name": "vol1"}
    assert pv["spec"]["csi"] == {"driver": "driver.longhorn.io", "fsType": "xfs", "volumeHandle": "vol1"}
    assert pv["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pv["spec"]["capacity"] == {"storage": str(10 * GI)}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    pvc = persistent_volume_claim(p, pv)
    assert pvc["metadata"] == {"name": "data", "namespace": "misp"}
    assert pvc["spec"]["volumeName"] == "vol1"
    assert pvc["spec"]["storageClassName"] == "longhorn-static"
    assert pvc["spec"]["resources"] == {"requests": {"storage": str(10 * GI)}}


def test_pv_access_mode_defaults_to_rwo_when_unset():
    p = params(pv={"name": "x", "fs_type": "ext4", "storage_class_name": "s"})
    assert persistent_volume(p, build_volume(p))["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_missing_kubeconfig_is_named(tmp_path, monkeypatch):
    missing = str(tmp_path / "nope.yaml")
    monkeypatch.delenv("K8S_AUTH_KUBECONFIG", raising=False)
    with pytest.raises(LonghornError, match=f"kubeconfig: file '{missing}' does not exist"):
        _longhorn._check_kubeconfig({"kubeconfig": missing})
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", missing)
    with pytest.raises(LonghornError, match="does not exist"):
        _longhorn._check_kubeconfig({"kubeconfig": None})


def test_existing_kubeconfig_passes(tmp_path):
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\n")
    _longhorn._check_kubeconfig({"kubeconfig": str(config)})
