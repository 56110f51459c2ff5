"""The talk presenter: the caption bar, talk-script scenes on the arrow keys, the preStop replay.

A speaker's extras on top of the dashboard, kept apart from its routing. `TalkPresenter` owns
their state (whether captions show, the scene player, the preStop replay's caption, the scene
timer); it reads the app's current scenario and posts the same `ScenarioRequested` a scenario key
posts, so a scene switches exactly like a key press.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App
from textual.timer import Timer

from svcwatch.model.scenario import SCENARIOS
from svcwatch.session.capabilities import RolloutReplay
from svcwatch.talk.script import Scene, ScenePlayer, TalkScript
from svcwatch.ui import messages
from svcwatch.ui.screens.main import MainScreen
from svcwatch.ui.widgets.caption_bar import PRESTOP_CAPTION, CaptionBar
from svcwatch.ui.workers import in_thread


class TalkPresenter:
    """Captions, scenes and the preStop replay (see the module docstring)."""

    def __init__(
        self,
        app: App[None],
        main: MainScreen,
        *,
        captions: bool,
        script: TalkScript | None,
        rollout: RolloutReplay | None,
        after_rollout: Callable[[], object],
        stopping: Callable[[], bool],
    ) -> None:
        """`rollout` is the session's preStop replay (None: `p` says it needs the lab);
        `after_rollout` runs on the worker thread once it is done (re-read the endpoints);
        `stopping` says the dashboard is quitting (no scene or replay starts then)."""
        self.app, self.main, self._stopping = app, main, stopping
        self.captions = captions or script is not None
        self.scenes = ScenePlayer(script) if script is not None else None
        self.rollout, self.after_rollout = rollout, after_rollout
        self.scenario: str | None = None  # the app's, as last shown
        self._caption_override: tuple[str, str] | None = None  # the preStop replay's caption
        self._scene_timer: Timer | None = None

    def mount_caption_bar(self) -> None:
        if self.captions:
            self.main.mount(CaptionBar(), after="#diagnosis")

    def show_scenario(self, scenario: str | None) -> None:
        """The app's scenario changed (or was confirmed): caption it."""
        self.scenario = scenario
        self._show_caption()

    def scenario_chosen(self) -> None:
        """A scenario key was pressed: its own caption replaces the preStop replay's."""
        self._caption_override = None

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

    # --- scenes: → and ← ----------------------------------------------------------------------

    def next_scene(self) -> None:
        if self.scenes is not None:
            self._play_scene(self.scenes.next())

    def previous_scene(self) -> None:
        if self.scenes is not None:
            self._play_scene(self.scenes.previous())

    def _play_scene(self, scene: Scene | None) -> None:
        if scene is None or self._stopping():
            self.app.notify("no more scenes this way", timeout=2)
            return
        if self._scene_timer is not None:
            self._scene_timer.stop()
            self._scene_timer = None
        self._caption_override = None
        self.app.post_message(messages.ScenarioRequested(scene.scenario))
        if scene.pause is not None:
            self._scene_timer = self.app.set_timer(scene.pause, self.next_scene)

    # --- p: the preStop replay ----------------------------------------------------------------

    def prestop_replay(self) -> None:
        if self._stopping():
            return
        rollout = self.rollout
        if rollout is None:
            self.app.notify("the preStop replay needs the lab", severity="warning")
            return
        self._caption_override = ("Rollout with preStop", PRESTOP_CAPTION)
        self._show_caption()

        def replay() -> None:
            rollout.replay_rollout_with_prestop()
            self.after_rollout()

        in_thread(self.app, replay, group="lab", description="preStop replay")
