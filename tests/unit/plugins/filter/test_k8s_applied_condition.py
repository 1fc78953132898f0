"""k8s_applied_condition: reads a condition of an object in k8s_apply's result."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.k8s_applied_condition import (
    FilterModule,
    k8s_applied_condition,
)


def applied(*objects: dict) -> dict:
    return {"changed": False, "objects": list(objects)}


def obj(kind: str, name: str, conditions: list[str]) -> dict:
    return {"kind": kind, "api_version": "batch/v1", "namespace": "misp", "name": name, "conditions": conditions}


RESULT = applied(
    obj("ServiceAccount", "misp-update", []),
    obj("Job", "misp-update-old", []),
    obj("Job", "misp-update-1a2b", ["Complete", "SuccessCriteriaMet"]),
)


def test_the_named_object_is_read():
    assert k8s_applied_condition(RESULT, "Job", "Complete", "misp-update-1a2b") is True
    assert k8s_applied_condition(RESULT, "Job", "Complete", "misp-update-old") is False


def test_without_a_name_the_first_object_of_the_kind_is_read():
    assert k8s_applied_condition(RESULT, "Job", "Complete") is False
    assert k8s_applied_condition(applied(obj("Job", "account", ["Complete"])), "Job", "Complete") is True


def test_an_absent_object_or_one_without_conditions_has_none():
    assert k8s_applied_condition(RESULT, "Job", "Complete", "misp-update-2c3d") is False
    assert k8s_applied_condition(RESULT, "CronJob", "Complete") is False
    assert k8s_applied_condition(applied({"kind": "Job", "name": "j"}), "Job", "Complete") is False


@pytest.mark.parametrize("bad", [None, "changed", {"changed": True}, {"objects": "Job"}, {"objects": ["Job"]}])
def test_anything_but_a_k8s_apply_result_is_refused_by_name(bad):
    refused = r"k8s_applied_condition: expected the result of cti\.misp_platform\.k8s_apply"
    with pytest.raises(AnsibleFilterError, match=refused):
        k8s_applied_condition(bad, "Job", "Complete")


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"k8s_applied_condition": k8s_applied_condition}
