"""SvcwatchApp: composes the dashboard and routes between the session and the panes.

Every session call blocks (kernel, cluster, files), so each runs in a thread worker and answers
with a message; events arrive in batches through `UiSink`. Key actions only post requests. One
`Worker.StateChanged` handler turns any failed worker (all started by workers.py) into a
notification, never a crash.
The talk presenter's extras (captions, scenes, the preStop replay) are a `TalkPresenter`
(talk_presenter.py); replay keys, `w`, key recording and the header's status, which differ by what
the session can do, are a `SessionControls` (controls.py); the session's blocking calls are a
`SessionIO` (session_io.py); the way out (`q`, a signal, a lost terminal) is a `Shutdown`
(shutdown.py); the themes are a `ThemeChoice` (themes.py). Each owns its state; the app only
composes them and routes keys and messages to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path

from textual import on
from textual.actions import ActionParseResult
from textual.app import App, SystemCommand
from textual.dom import DOMNode
from textual.driver import Driver
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from svcwatch.explain.diagnosis import Diagnosis
from svcwatch.model.events import Event, Notice, RulesSynced, SliceChanged
from svcwatch.session.base import Session
from svcwatch.session.capabilities import ReplayControls
from svcwatch.session.replay import Shown
from svcwatch.talk.script import TalkScript
from svcwatch.ui import actions, messages
from svcwatch.ui.bridge import UiSink
from svcwatch.ui.controls import SessionControls, scenario_label
from svcwatch.ui.display_log import DisplayLog, view_digest
from svcwatch.ui.keymap import UserKeymap, apply_keymap
from svcwatch.ui.offers import Offer
from svcwatch.ui.screens.help import HelpScreen
from svcwatch.ui.screens.main import MainScreen
from svcwatch.ui.session_io import SessionIO
from svcwatch.ui.shutdown import Shutdown
from svcwatch.ui.slice_editor import Editor, edited_slice, external_editor
from svcwatch.ui.talk_presenter import TalkPresenter
from svcwatch.ui.themes import ROLE_DEFAULTS, ThemeChoice


class SvcwatchApp(App[None]):
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
        keymap_path: Path | None = None,
    ) -> None:
        """`t0` is the stream's +0.000s (a replay: the recording's; default: `clock()` now)."""
        super().__init__()
        self.session = session
        self.clock = clock
        self.editor: Editor = editor or self._external_editor
        self.themes = ThemeChoice(theme_name, theme_dirs)
        self.sink = UiSink(self, interval=sink_interval)
        self.chain_interval = chain_interval
        self.scenario: str | None = None
        self.shutdown = Shutdown(self, session, self.sink, keep=keep)
        self.started_at = clock() if t0 is None else t0
        self.scenario_label = ""
        self.session_ready = False
        self.start_error: str | None = None  # why the session did not start, for the CLI
        self.keymap_path = keymap_path
        self.user_keymap = UserKeymap()
        self._main = MainScreen(clock, self.started_at)
        self.capabilities = session.capabilities()
        self.io = SessionIO(self, session)
        self.controls = SessionControls(self, session, clock)
        self.talk = TalkPresenter(
            self,
            self._main,
            captions=captions,
            script=script,
            rollout=self.capabilities.rollout_replay,
            after_rollout=self.io.read_endpoints,
            stopping=lambda: self.stopping,
        )
        self.offer = Offer(
            self.capabilities, read_only=self.io.read_only(), scripted=script is not None
        )
        self.scenarios_offered = self.offer.scenarios
        self.offer.hide_the_rest(self._bindings)
        self.display_log = DisplayLog(self.capabilities.display_recording)
        self.pushes_state = self.io.pushes_state

    # --- compose -------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return self._main

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(ROLE_DEFAULTS)

    def on_mount(self) -> None:
        self.themes.load(self)
        self.user_keymap = apply_keymap(self, self.keymap_path)
        self.sub_title = "starting…"
        self.set_interval(self.chain_interval, self._refresh_counters)
        self.set_interval(1.0, self.refresh_status)  # replay clock, "stale for Ns"
        self.set_interval(0.1, self.shutdown.quit_if_requested)

    def on_main_screen_ready(self, _message: MainScreen.Ready) -> None:
        self.talk.mount_caption_bar()
        self.sink.start()
        if self.shutdown.quit_requested:  # asked to stop before anything started: start nothing
            self.action_quit_dashboard()
            return
        self.io.start(self.sink)

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this platform; on Linux one that survives a lost terminal."""
        driver = super().get_driver_class()
        if driver.__module__ == "textual.drivers.linux_driver":  # termios: import on Linux only
            from svcwatch.ui.terminal import SurvivingLinuxDriver

            if driver.__name__ == "LinuxDriver":
                return SurvivingLinuxDriver
        return driver

    def request_quit(self) -> None:
        """Quit as `q` does, soon; safe from a signal handler or any thread (shutdown.py)."""
        self.shutdown.request()

    def terminal_gone(self) -> None:
        """The terminal went away (writes fail): nobody can press `q`, so quit now."""
        self.shutdown.request()

    @property
    def stopping(self) -> bool:
        return self.shutdown.stopping

    @property
    def stop_error(self) -> BaseException | None:
        """Why stopping failed, for the CLI's one line and exit status."""
        return self.shutdown.stop_error

    @property
    def main(self) -> MainScreen:
        return self._main

    def _refresh_counters(self) -> None:
        if not self.stopping and self.session_ready and not self.pushes_state:
            self.io.read_chain()

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
        for error in (e for e in events if isinstance(e, Notice) and e.kind == "error"):
            self.notify(error.message, title=error.origin, severity="error", timeout=15)
            if self.session_ready:  # a writer that stopped changes the title ("… FAILED")
                self.title = f"svcwatch · {self.session.title}"
        if any(isinstance(e, Notice) and e.kind == "ended" for e in events):
            self.io.session_ended()  # the diagnosis says the lab is gone; stop reading it
        if any(isinstance(e, Notice) and e.kind == "stale" for e in events):
            self.refresh_status()  # the watch broke or came back: say so now
        if self.stopping:
            return
        if any(isinstance(e, RulesSynced) for e in events) and not self.pushes_state:
            self.io.read_chain(after_sync=True)
        changes = [e for e in events if isinstance(e, SliceChanged)]
        if changes:
            if changes[-1].scenario:
                self.set_scenario(changes[-1].scenario)
            if not self.pushes_state:
                self.io.read_endpoints()
        self._record_view()

    def _record_view(self) -> None:
        """Live views are recorded once the session started (the header names a scenario)."""
        if self.display_log.recording and self.main.is_mounted and self.session_ready:
            self.display_log.view(view_digest(self.main, self.scenario_label))

    def on_session_started(self, message: messages.SessionStarted) -> None:
        self.session_ready = True
        self.title = f"svcwatch · {message.title}"
        if self.pushes_state:  # a replay shows what the live dashboard showed when it started
            self.scenario_label = self.scenario_label or scenario_label(message.scenario or "happy")
            self.refresh_status()
            return
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
        if message.name not in self.scenarios_offered:  # a talk script's scene, say
            self.notify(self.offer.no_scenario(message.name), severity="warning", timeout=4)
            return
        if not self.pushes_state:  # a replay's header changes when the jump lands, if it does
            self.set_scenario(message.name)
        self.io.switch_scenario(message.name)

    def on_slice_edited(self, message: messages.SliceEdited) -> None:
        self.io.apply_edit(message.text)

    def on_session_stopped(self, _message: messages.SessionStopped) -> None:
        self.exit()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if error is None or not self.io.reports(event.worker.group, error):
            return  # the same failed read again, or a read of a lab already gone
        self.notify(f"{error}", title=event.worker.description, severity="error", timeout=10)
        if event.worker.group == "session" and not self.session_ready:
            self.start_error = str(error)
            self.main.set_diagnosis(Diagnosis(f"Could not start: {error}", "fail"))

    def set_scenario(self, name: str) -> None:
        self.scenario = name
        self.scenario_label = scenario_label(name)
        self.display_log.scenario(name)
        self.refresh_status()
        self.talk.show_scenario(name)
        self._record_view()

    def refresh_status(self) -> None:
        """The header's sub-title and the diagnosis' stale prefix, from the session's state now."""
        self.controls.show_status(self.main, self.scenario_label)

    # --- which actions apply; every handled action is recorded -------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Replay keys only on replays; arrows step scenes only when a script runs."""
        if action in ("next_scene", "previous_scene"):
            return self.talk.scenes is not None
        return self.controls.applies(action)

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """Every dashboard action (key or palette) passes here: the one place keys are recorded."""
        handled = await super().run_action(action, default_namespace, namespaces)
        if handled and isinstance(action, str) and default_namespace in (None, self):
            self.controls.record_key(action)
        return handled

    # --- actions (bound through actions.DASHBOARD_ACTIONS) -----------------------------------

    def action_scenario(self, name: str) -> None:
        """Switch scenario; the active scenario's own key goes back to the happy path.

        On a replay every key jumps to the next moment its scenario started (again, for the
        active one), so no key toggles there.
        """
        if self.stopping:
            return
        if name not in self.scenarios_offered:
            self.notify(self.offer.no_scenario(name), severity="warning", timeout=4)
            return
        toggles = self.capabilities.replay is None and name == self.scenario
        target = "happy" if toggles and name != "happy" else name
        self.talk.scenario_chosen()
        self.post_message(messages.ScenarioRequested(target))

    def action_next_node(self) -> None:
        """The chain pane shows the next watched node's rules (a cluster with several nodes)."""
        switching = self.capabilities.node_switching
        if switching is None:
            self.notify("the chain pane has one node to show", severity="warning")
            return
        node = switching.show_next_node()
        self.notify(f"chain pane: rules on node {node}", title="Node")
        self.io.read_chain()

    def action_edit_slice(self) -> None:
        if self.capabilities.slice_editing is None:
            why = self.io.read_only()
            self.notify(f"the slice cannot be edited here: {why}", severity="warning")
            return
        slice_ = self.main.evidence.slice
        if slice_ is None or self.stopping:
            self.notify("no EndpointSlice yet", severity="warning")
            return
        edited = edited_slice(self, slice_, self.editor)
        if edited is not None:
            self.post_message(messages.SliceEdited(edited))

    def _external_editor(self, text: str) -> str | None:
        with self.suspend():
            return external_editor(text)

    def action_replay_toggle_pause(self) -> None:
        self._replay(lambda replay: replay.toggle_pause())

    def action_replay_step(self) -> None:
        self._replay(lambda replay: replay.step())

    def action_replay_slower(self) -> None:
        self._replay(lambda replay: replay.slower())

    def action_replay_faster(self) -> None:
        self._replay(lambda replay: replay.faster())

    def _replay(self, control: Callable[[ReplayControls], object]) -> None:
        self.controls.replay(control)
        self.refresh_status()

    def action_write_pcap(self) -> None:
        self.controls.write_pcap([p for p in self.main.packet_pane.packets if p.raw])

    def action_next_scene(self) -> None:
        self.talk.next_scene()

    def action_previous_scene(self) -> None:
        self.talk.previous_scene()

    def action_prestop_replay(self) -> None:
        self.talk.prestop_replay()

    def action_switch_proxy_mode(self) -> None:
        if self.capabilities.proxy_modes is None or self.stopping:
            self.notify("switching kube-proxy's mode needs the lab", severity="warning")
            return
        self.io.switch_proxy_mode()

    def action_toggle_pause(self) -> None:
        pane = self.main.packet_pane
        pane.paused = not pane.paused

    def action_filter_stream(self) -> None:
        self.main.packet_pane.open_filter()

    def action_clear_stream(self) -> None:
        self.main.clear_stream()
        self.display_log.cleared()

    def action_zoom_pane(self) -> None:
        self.main.toggle_zoom()

    def action_next_theme(self) -> None:
        self.themes.next(self)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.user_keymap, self.offer.actions()))

    async def action_quit(self) -> None:
        """ctrl+q (Textual's own quit) also stops the session first."""
        self.action_quit_dashboard()

    def action_quit_dashboard(self) -> None:
        self.shutdown.begin()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from self.offer.palette(self.user_keymap, partial(self.call_later, self.run_action))
        yield from (
            c for c in super().get_system_commands(screen) if c.title not in ("Quit", "Theme")
        )
