"""Presenter mode: the caption bar, talk-script scenes on the arrow keys, the preStop replay.

A speaker's extras on top of the dashboard, kept apart from its routing: they only read the app's
scenario and session and post the same `ScenarioRequested` a scenario key posts. `SvcwatchApp`
mixes this in; the attributes declared here are set by its `__init__`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.timer import Timer

from svcwatch.model.scenario import SCENARIOS
from svcwatch.session.base import Session
from svcwatch.talk.script import Scene, ScenePlayer
from svcwatch.ui import messages
from svcwatch.ui.screens.main import MainScreen
from svcwatch.ui.widgets.caption_bar import PRESTOP_CAPTION, CaptionBar


class PresenterMixin(App[None]):
    """Captions, scenes and the preStop replay (see the module docstring)."""

    session: Session
    scenario: str | None
    stopping: bool
    captions: bool
    scenes: ScenePlayer | None
    _caption_override: tuple[str, str] | None  # the preStop replay's caption
    _scene_timer: Timer | None

    if TYPE_CHECKING:  # provided by SvcwatchApp

        @property
        def main(self) -> MainScreen: ...

        def _read_endpoints(self) -> object: ...

    def _show_caption(self) -> None:
        bars = self.main.query(CaptionBar) if self.captions else None
        if not bars:
            return
        scene = self.scenes.current if self.scenes else None
        position = self.scenes.position if self.scenes and scene else None
        if self._caption_override is not None:
            bars.first().show(*self._caption_override)
        elif scene is not None and scene.scenario == self.scenario:
            title = SCENARIOS[scene.scenario].title
            bars.first().show(title, scene.caption, position)
        else:
            bars.first().show_scenario(self.scenario)

    def _play_scene(self, scene: Scene | None) -> None:
        if scene is None or self.stopping:
            self.notify("no more scenes this way", timeout=2)
            return
        if self._scene_timer is not None:
            self._scene_timer.stop()
            self._scene_timer = None
        self._caption_override = None
        self.post_message(messages.ScenarioRequested(scene.scenario))
        if scene.pause is not None:
            self._scene_timer = self.set_timer(scene.pause, self.action_next_scene)

    def action_next_scene(self) -> None:
        if self.scenes is not None:
            self._play_scene(self.scenes.next())

    def action_previous_scene(self) -> None:
        if self.scenes is not None:
            self._play_scene(self.scenes.previous())

    def action_prestop_replay(self) -> None:
        if self.stopping:
            return
        if not hasattr(self.session, "replay_rollout_with_prestop"):
            self.notify("the preStop replay needs the lab", severity="warning")
            return
        self._caption_override = ("Rollout with preStop", PRESTOP_CAPTION)
        self._show_caption()
        self._replay_prestop()

    @work(
        thread=True,
        exclusive=True,
        group="lab",
        exit_on_error=False,
        description="preStop replay",
    )
    def _replay_prestop(self) -> None:
        self.session.replay_rollout_with_prestop()  # type: ignore[attr-defined]
        self._read_endpoints()
