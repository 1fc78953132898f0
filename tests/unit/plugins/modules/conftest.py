"""Modules run here in the test process, as they would in their own process on a target."""

from __future__ import annotations

import pytest
from ansible.module_utils import _internal


@pytest.fixture(autouse=True)
def module_side(monkeypatch):
    """Importing controller code (the filter plugins' tests do) marks the whole process as the
    controller, and a module's warnings then go to the display instead of its result."""
    monkeypatch.setattr(_internal, "is_controller", False)
