"""whole_number: the number a port or a count is written as, whatever YAML made of it."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.plugin_utils._patterns import whole_number


@pytest.mark.parametrize(("value", "number"), [(0, 0), (587, 587), ("587", 587), ("007", 7)])
def test_digits_and_ints_are_numbers(value, number):
    assert whole_number(value) == number


@pytest.mark.parametrize("value", [True, False, None, -1, "-1", "5.0", 5.0, "", " 5", "five", [5]])
def test_anything_else_is_none(value):
    assert whole_number(value) is None
