"""An action plugin of the collection as a task would get it, for unit tests: the task, its
connection and templar are mocks with what the plugins read."""

from __future__ import annotations

from unittest.mock import MagicMock


def action_plugin(
    cls, args, *, transport="local", environment=None, check_mode=False, diff=False, loader=None, templar=None
):
    """``cls`` (an ActionModule) for a task with ``args`` on a connection of ``transport``. Without
    ``templar``, the templar returns what it is given."""
    task = MagicMock(async_val=0, check_mode=check_mode, diff=diff, environment=environment or [])
    task.args = args
    connection = MagicMock(transport=transport)
    connection._shell.tmpdir = None
    if templar is None:
        templar = MagicMock()
        templar.template.side_effect = lambda value: value
    return cls(task, connection, MagicMock(), loader or MagicMock(), templar, MagicMock())
