"""UI test setup: the dashboard on a FakeSession, frozen clock, no timers firing mid-test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.worker import WorkerFailed

from svcwatch.locations import package_data_dir
from svcwatch.session.base import Session
from svcwatch.ui.app import SvcwatchApp
from tests.ui.fakes import T0, FakeSession


class ScriptedEditor:
    """Stands in for $EDITOR: returns what the test scripted and remembers what it was shown."""

    def __init__(self, edit: Callable[[str], str | None]) -> None:
        self.edit = edit
        self.shown: list[str] = []

    def __call__(self, text: str) -> str | None:
        self.shown.append(text)
        return self.edit(text)


def make_app(session: Session | None = None, **kwargs: Any) -> SvcwatchApp:
    kwargs.setdefault("clock", lambda: T0)
    kwargs.setdefault("editor", ScriptedEditor(lambda text: None))
    kwargs.setdefault("theme_dirs", [package_data_dir("themes")])
    kwargs.setdefault("chain_interval", 3600.0)  # counters are re-read after each sync instead
    kwargs.setdefault("sink_interval", 3600.0)  # tests flush the bridge themselves (settle)
    return SvcwatchApp(session or FakeSession(), **kwargs)


async def settle(app: SvcwatchApp, pilot: Pilot[None], rounds: int = 4) -> None:
    """Let workers finish and every emitted event reach the panes (no sleeping)."""
    for _ in range(rounds):
        try:
            await app.workers.wait_for_complete()
        except WorkerFailed:
            pass  # the app reports failed workers itself; tests assert on what it shows
        app.sink.flush()
        await pilot.pause()


def widget_text(widget: Widget) -> str:
    """The widget's lines as a user sees them on screen (borders and titles included)."""
    return "\n".join(strip.text for strip in widget.render_lines(widget.region.reset_offset))


@pytest.fixture
def user_themes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "config" / "themes"
    directory.mkdir(parents=True)
    monkeypatch.setenv("SVCWATCH_CONFIG_DIR", str(tmp_path / "config"))
    return directory
