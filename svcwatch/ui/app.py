"""SvcwatchApp: composes the dashboard and routes between the session and the panes.

Every session call blocks (kernel, cluster, files), so each runs in a thread worker and answers
with a message; events arrive in batches through `UiSink`. Key actions only post requests. One
`Worker.StateChanged` handler turns any failed worker into a notification, never a crash.
Presenter extras live in presenter.py; replay keys, `w`, key recording and the header's status
(what differs by session kind) in controls.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial

from textual import on, work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from svcwatch.model.events import Event, RulesSynced, SliceChanged
from svcwatch.model.manifest import dump_slice
from svcwatch.model.scenario import SCENARIOS
from svcwatch.record.reader import Shown
from svcwatch.session.base import Session
from svcwatch.session.display import PushesDisplay
from svcwatch.ui import actions, messages
from svcwatch.ui.bridge import UiSink
from svcwatch.ui.controls import SessionControlsMixin
from svcwatch.ui.diagnosis import Diagnosis
from svcwatch.ui.display_log import DisplayLog, view_digest
from svcwatch.ui.presenter import PresenterMixin
from svcwatch.ui.screens.help import HelpScreen
from svcwatch.ui.screens.main import MainScreen, StoppingScreen
from svcwatch.ui.script import ScenePlayer, TalkScript
from svcwatch.ui.themes import (
    DEFAULT_THEME,
    ROLE_DEFAULTS,
    ThemeLoadResult,
    default_theme_dirs,
    load_themes,
)
from svcwatch.ui.widgets.caption_bar import CaptionBar

Editor = Callable[[str], "str | None"]


class SvcwatchApp(PresenterMixin, SessionControlsMixin, App[None]):
    """The dashboard on one session (lab, cluster or replay)."""

    CSS_PATH = "svcwatch.tcss"
    TITLE = "svcwatch"
    BINDINGS = actions.bindings()

    def __init__(
        self,
        session: Session,
        *,
        theme_name: str | None = None,
        keep: bool = False,
        editor: Editor | None = None,
        clock: Callable[[], float] = time.time,
        theme_dirs: list | None = None,  # type: ignore[type-arg]
        sink_interval: float = 0.1,
        chain_interval: float = 1.0,
        captions: bool = False,
        script: TalkScript | None = None,
        t0: float | None = None,
    ) -> None:
        """`t0` is the stream's +0.000s (a replay: the recording's; default: `clock()` now)."""
        super().__init__()
        self.session = session
        self.keep = keep
        self.clock = clock
        self.editor: Editor = editor or self._external_editor
        self.requested_theme = theme_name
        self.theme_dirs = theme_dirs if theme_dirs is not None else default_theme_dirs()
        self.theme_result = ThemeLoadResult()
        self.sink = UiSink(self, interval=sink_interval)
        self.chain_interval = chain_interval
        self.scenario: str | None = None
        self.stopping = False
        self.started_at = clock() if t0 is None else t0
        self.scenario_label = ""
        self.session_ready = False
        self.start_error: str | None = None  # why the session did not start, for the CLI
        self._main = MainScreen(clock, self.started_at)
        self.captions = captions or script is not None
        self.scenes = ScenePlayer(script) if script is not None else None
        self._caption_override: tuple[str, str] | None = None  # the preStop replay's caption
        self._scene_timer: Timer | None = None
        self.display_log = DisplayLog(session)  # what was displayed: recorded, or replayed exactly
        # A replay pushes what the live dashboard displayed; pulling too would show other moments.
        self.pushes_state = isinstance(session, PushesDisplay) and session.pushes_state

    # --- compose -------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return self._main

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(ROLE_DEFAULTS)

    def on_mount(self) -> None:
        self._load_themes()
        self.sub_title = "starting…"
        self.set_interval(self.chain_interval, self._refresh_counters)
        self.set_interval(1.0, self.refresh_status)  # replay clock, "stale for Ns"

    def on_main_screen_ready(self, _message: MainScreen.Ready) -> None:
        if self.captions:
            self.main.mount(CaptionBar(), after="#diagnosis")
        self.sink.start()
        self._start_session()

    def _load_themes(self) -> None:
        self.theme_result = load_themes(self.theme_dirs)
        for theme in self.theme_result.themes:
            self.register_theme(theme)
        for failure in self.theme_result.failures:
            self.notify(failure, title="Theme not loaded", severity="warning", timeout=8)
        wanted = self.requested_theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.notify(
                f"unknown theme {wanted!r}; known: {', '.join(self.theme_names)}",
                severity="warning",
                timeout=8,
            )
            wanted = DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted

    @property
    def theme_names(self) -> list[str]:
        """svcwatch's themes (bundled, then user), in cycling order, without duplicates."""
        return list(dict.fromkeys(t.name for t in self.theme_result.themes))

    @property
    def main(self) -> MainScreen:
        return self._main

    # --- workers: every session call runs here, off the event loop --------------------------

    @work(
        thread=True,
        exclusive=True,
        group="session",
        exit_on_error=False,
        description="Starting the session",
    )
    def _start_session(self) -> None:
        self.session.start(self.sink)
        self.post_message(
            messages.SessionStarted(
                self.session.service(),
                self.session.current_slice(),
                self.session.current_scenario(),
                self.session.title,
            )
        )
        if not self.pushes_state:
            self._read_chain(after_sync=True)
            self._read_endpoints()

    @work(
        thread=True,
        exclusive=True,
        group="chain",
        exit_on_error=False,
        description="Reading the iptables chain",
    )
    def _read_chain(self, after_sync: bool = False) -> None:
        self.post_message(messages.ChainRead(self.session.read_chain(), after_sync))

    @work(
        thread=True,
        exclusive=True,
        group="endpoints",
        exit_on_error=False,
        description="Reading the EndpointSlice",
    )
    def _read_endpoints(self) -> None:
        self.post_message(
            messages.EndpointsRead(
                self.session.current_slice(),
                self.session.endpoint_facts(),
                self.session.current_scenario(),
            )
        )

    @work(
        thread=True,
        exclusive=True,
        group="lab",
        exit_on_error=False,
        description="Switching scenario",
    )
    def _switch_scenario(self, name: str) -> None:
        self.session.request_scenario(name)
        if not self.pushes_state:
            self._read_endpoints()

    @work(
        thread=True,
        exclusive=True,
        group="lab",
        exit_on_error=False,
        description="Edit not applied",
    )
    def _apply_edit(self, text: str) -> None:
        self.session.apply_slice_text(text)
        self.call_from_thread(self.notify, "EndpointSlice edited and applied", title="Edit")
        self._read_endpoints()

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False, description="Stopping")
    def _stop_session(self) -> None:
        try:
            self.session.stop()
        finally:
            self.sink.close()
            self.post_message(messages.SessionStopped())

    def _refresh_counters(self) -> None:
        if not self.stopping and self.session_ready and not self.pushes_state:
            self._read_chain()

    # --- routing -------------------------------------------------------------------------------

    def on_events_arrived(self, message: messages.EventsArrived) -> None:
        events: list[Event] = []
        for item in message.events:
            if isinstance(item, Shown):  # a replay: what the live dashboard displayed here
                self._show_events(events)
                events = []
                self.display_log.show_recorded(self, item)
            else:
                events.append(item)
        self._show_events(events, message.dropped)

    def _show_events(self, events: list[Event], dropped: int = 0) -> None:
        if not events and not dropped:
            return
        self.display_log.count(len(events) + dropped)
        self.main.show_events(events, dropped)
        if any(getattr(e, "kind", "") == "stale" for e in events):
            self.refresh_status()  # the watch broke or came back: say so now
        if self.stopping:
            return
        if any(isinstance(e, RulesSynced) for e in events) and not self.pushes_state:
            self._read_chain(after_sync=True)
        changes = [e for e in events if isinstance(e, SliceChanged)]
        if changes:
            if changes[-1].scenario:
                self.set_scenario(changes[-1].scenario)
            if not self.pushes_state:
                self._read_endpoints()
        self._record_view()

    def _record_view(self) -> None:
        if self.display_log.recording and self.main.is_mounted:
            self.display_log.view(view_digest(self.main, self.scenario_label))

    def on_session_started(self, message: messages.SessionStarted) -> None:
        self.session_ready = True
        self.title = f"svcwatch · {message.title}"
        if self.pushes_state:
            return  # a replay shows what the live dashboard showed when its session started
        self.main.evidence.service = message.service.key
        self.main.show_endpoints(message.slice, [])
        self.display_log.started(message.service, message.slice)
        self.set_scenario(message.scenario or "happy")

    def on_chain_read(self, message: messages.ChainRead) -> None:
        self.main.show_chain(message.tree, message.after_sync)
        self.display_log.chain(message.tree)
        self._record_view()

    def on_endpoints_read(self, message: messages.EndpointsRead) -> None:
        self.main.show_endpoints(message.slice, message.facts)
        self.display_log.endpoints(message.slice, message.facts)
        if message.scenario:
            self.set_scenario(message.scenario)
        self._record_view()

    def on_scenario_requested(self, message: messages.ScenarioRequested) -> None:
        if not self.pushes_state:  # a replay's header changes when the jump lands, if it does
            self.set_scenario(message.name)
        self._switch_scenario(message.name)

    def on_slice_edited(self, message: messages.SliceEdited) -> None:
        self._apply_edit(message.text)

    def on_session_stopped(self, _message: messages.SessionStopped) -> None:
        self.exit()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        self.notify(f"{error}", title=event.worker.description, severity="error", timeout=10)
        if event.worker.group == "session" and not self.session_ready:
            self.start_error = str(error)
            self.main.set_diagnosis(Diagnosis(f"Could not start: {error}", "fail"))
        if event.worker.group == "stop":
            self.exit(message=f"svcwatch: error while stopping: {error}")

    def set_scenario(self, name: str) -> None:
        self.scenario = name
        scenario = SCENARIOS.get(name)
        label = f"{scenario.title} ({scenario.key})" if scenario else name
        self.scenario_label = f"scenario: {label}"
        self.display_log.scenario(name)
        self.refresh_status()
        self._show_caption()
        self._record_view()

    # --- actions (bound through actions.DASHBOARD_ACTIONS) -----------------------------------

    def action_scenario(self, name: str) -> None:
        """Switch scenario; the active scenario's own key goes back to the happy path.

        On a replay every key jumps to the next moment its scenario started (again, for the
        active one), so no key toggles there.
        """
        if self.stopping:
            return
        toggles = self.session.kind != "replay" and name == self.scenario
        target = "happy" if toggles and name != "happy" else name
        self._caption_override = None
        self.post_message(messages.ScenarioRequested(target))

    def action_edit_slice(self) -> None:
        slice_ = self.main.evidence.slice
        if slice_ is None or self.stopping:
            self.notify("no EndpointSlice yet", severity="warning")
            return
        original = dump_slice(slice_)
        edited = self.editor(original)
        if edited is None or edited.strip() == original.strip():
            self.notify("Edit cancelled, no changes made.", title="Edit")
            return
        self.post_message(messages.SliceEdited(edited))

    def _external_editor(self, text: str) -> str | None:
        import click  # the CLI dependency, imported here only for its $EDITOR handling

        with self.suspend():
            return click.edit(text, extension=".yaml", require_save=True)

    def action_toggle_pause(self) -> None:
        pane = self.main.packet_pane
        pane.paused = not pane.paused

    def action_filter_stream(self) -> None:
        self.main.packet_pane.open_filter()

    def action_clear_stream(self) -> None:
        self.main.clear_stream()
        self.display_log.cleared()

    def action_next_theme(self) -> None:
        names = self.theme_names or [self.theme]
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """ctrl+q (Textual's own quit) also stops the session first."""
        self.action_quit_dashboard()

    def action_quit_dashboard(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        what = "leaving the lab running (--keep)…" if self.keep else "tearing down lab…"
        if self.session.kind != "lab":
            what = "stopping…"
        self.push_screen(StoppingScreen(what))
        self._stop_session()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for spec in actions.DASHBOARD_ACTIONS:
            yield SystemCommand(
                spec.description,
                f"key {spec.display_key} · {spec.help}",
                partial(self.call_later, self.run_action, spec.action),
            )
        yield from (
            c for c in super().get_system_commands(screen) if c.title not in ("Quit", "Theme")
        )
