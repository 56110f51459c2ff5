"""Blocking work off Textual's event loop: the dashboard's one way to start a thread worker.

Every caller (session reads and writes, the stop, the preStop replay, `w`) wants the same thing:
a thread, never `exit_on_error` (the app's one `Worker.StateChanged` handler turns a failure into
a notification titled with `description`), and a `group` that names what the work touches, so an
exclusive worker replaces an older one of the same group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.app import App


def in_thread(
    app: App[None],
    work: Callable[[], object],
    *,
    group: str,
    description: str,
    exclusive: bool = True,
) -> None:
    """Run `work` in a thread worker of `app` (module docstring)."""
    app.run_worker(
        work,
        thread=True,
        exclusive=exclusive,
        group=group,
        exit_on_error=False,
        description=description,
    )
