"""rollout_restart_patch: kubectl rollout restart's annotation, in UTC, bad input named."""

from __future__ import annotations

import datetime
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.rollout_restart_patch import rollout_restart_patch


def annotations(patch):
    return patch["spec"]["template"]["metadata"]["annotations"]


def test_a_time_without_zone_is_utc_as_now_utc_gives_it():
    patch = rollout_restart_patch(datetime.datetime(2026, 12, 5, 7, 8, 9, 123456))
    stamp = {"kubectl.kubernetes.io/restartedAt": "2026-12-05T07:08:09Z"}
    assert patch == {"spec": {"template": {"metadata": {"annotations": stamp}}}}


def test_a_time_with_zone_is_written_in_utc():
    cet = datetime.timezone(datetime.timedelta(hours=1))
    patch = rollout_restart_patch(datetime.datetime(2026, 12, 5, 0, 30, tzinfo=cet))
    assert annotations(patch) == {"kubectl.kubernetes.io/restartedAt": "2026-12-04T23:30:00Z"}


def test_a_later_time_is_a_new_pod_template():
    first = rollout_restart_patch(datetime.datetime(2026, 12, 5, 7, 8, 9))
    assert rollout_restart_patch(datetime.datetime(2026, 12, 5, 7, 8, 10)) != first


@pytest.mark.parametrize("value", ["2026-12-05T07:08:09Z", None, datetime.date(2026, 12, 5)])
def test_not_a_time_is_named(value):
    with pytest.raises(AnsibleFilterError, match=re.escape(f"expected a date and time, got {value!r}")):
        rollout_restart_patch(value)
