"""SvcwatchApp: composes the dashboard and routes between the session and the panes.

Every session call blocks (kernel, cluster, files), so each runs in a thread worker and answers
with a message; events arrive in batches through `UiSink`. Key actions only post requests. One
`Worker.StateChanged` handler turns any failed worker into a notification, never a crash.
The talk presenter's extras (captions, scenes, the preStop replay) are a `TalkPresenter`
(talk_presenter.py); replay keys, `w`, key recording and the header's status, which differ by what
the session can do, are a `SessionControls` (controls.py). Each owns its state; the app only
routes keys to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path

from textual import on, work
from textual.actions import ActionParseResult
from textual.app import App, SystemCommand
from textual.dom import DOMNode
from textual.driver import Driver
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from svcwatch.explain.diagnosis import Diagnosis
from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, Notice, RulesSynced, SliceChanged
from svcwatch.model.manifest import dump_slice
from svcwatch.model.scenario import SCENARIOS
from svcwatch.session.base import Session
from svcwatch.session.replay import Shown
from svcwatch.talk.script import TalkScript
from svcwatch.ui import actions, messages
from svcwatch.ui.bridge import UiSink
from svcwatch.ui.controls import SessionControls
from svcwatch.ui.display_log import DisplayLog, view_digest
from svcwatch.ui.keymap import UserKeymap, load_keymap
from svcwatch.ui.screens.help import HelpScreen
from svcwatch.ui.screens.main import MainScreen, StoppingScreen
from svcwatch.ui.slice_editor import EditFailed, Editor, edit_slice_text, external_editor
from svcwatch.ui.talk_presenter import TalkPresenter
from svcwatch.ui.themes import (
    DEFAULT_THEME,
    ROLE_DEFAULTS,
    ThemeLoadResult,
    default_theme_dirs,
    load_themes,
)


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
        self.stop_error: BaseException | None = None  # why stopping failed, for the exit status
        self.quit_requested = False  # a signal or a lost terminal: quit as `q` does
        self.keymap_path = keymap_path
        self.user_keymap = UserKeymap()
        self._main = MainScreen(clock, self.started_at)
        self.capabilities = session.capabilities()
        self.controls = SessionControls(self, session, clock)
        self.talk = TalkPresenter(
            self,
            self._main,
            captions=captions,
            script=script,
            rollout=self.capabilities.rollout_replay,
            after_rollout=self._read_endpoints,
            stopping=lambda: self.stopping,
        )
        switching = self.capabilities.scenarios
        self.scenarios_offered = list(switching.scenarios_offered()) if switching else []
        self.offered_ids = {
            spec.id
            for spec in actions.DASHBOARD_ACTIONS
            if actions.offered(
                spec, self.capabilities, self.scenarios_offered, scripted=script is not None
            )
        }
        self._hide_what_is_not_offered()
        self.display_log = DisplayLog(self.capabilities.display_recording)
        # A replay pushes what the live dashboard displayed; pulling too would show other moments.
        self.pushes_state = self.capabilities.replayed_display

    # --- compose -------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return self._main

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(ROLE_DEFAULTS)

    def on_mount(self) -> None:
        self._load_themes()
        self._load_keymap()
        self.sub_title = "starting…"
        self.set_interval(self.chain_interval, self._refresh_counters)
        self.set_interval(1.0, self.refresh_status)  # replay clock, "stale for Ns"
        self.set_interval(0.1, self._quit_if_requested)

    def on_main_screen_ready(self, _message: MainScreen.Ready) -> None:
        self.talk.mount_caption_bar()
        self.sink.start()
        if self.quit_requested:  # asked to stop before anything started: start nothing
            self.action_quit_dashboard()
            return
        self._start_session()

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this platform; on Linux one that survives a lost terminal."""
        driver = super().get_driver_class()
        if driver.__module__ == "textual.drivers.linux_driver":  # termios: import on Linux only
            from svcwatch.ui.terminal import SurvivingLinuxDriver

            if driver.__name__ == "LinuxDriver":
                return SurvivingLinuxDriver
        return driver

    def request_quit(self) -> None:
        """Quit as `q` does, soon. Safe from a signal handler or any thread: it only sets a flag,
        which a timer on the app's own loop reads (nothing runs inside the interrupted code)."""
        self.quit_requested = True

    def terminal_gone(self) -> None:
        """The terminal went away (writes fail): nobody can press `q`, so quit now."""
        self.quit_requested = True

    def _quit_if_requested(self) -> None:
        if self.quit_requested and not self.stopping:
            self.action_quit_dashboard()

    def _load_keymap(self) -> None:
        """The user's keymap.yaml (ui/keymap.py): applied, or one warning and the defaults."""
        self.user_keymap = load_keymap(self.keymap_path)
        if self.user_keymap.warning:
            self.notify(self.user_keymap.warning, title="Keymap not loaded", severity="warning")
        elif self.user_keymap.keys:
            self.set_keymap(self.user_keymap.keys)

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
        scenarios = self.capabilities.scenarios
        if scenarios is None:
            raise InputError(f"this session cannot switch scenarios ({self._read_only()})")
        scenarios.request_scenario(name)
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
        editing = self.capabilities.slice_editing
        if editing is None:
            raise InputError(f"this session cannot change the slice ({self._read_only()})")
        editing.apply_slice_text(text)
        self.call_from_thread(self.notify, "EndpointSlice edited and applied", title="Edit")
        self._read_endpoints()

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False, description="Stopping")
    def _stop_session(self) -> None:
        try:
            self.session.stop()
        except Exception as exc:  # noqa: BLE001 - kept for the CLI's one line and exit status
            self.stop_error = exc  # before SessionStopped: the app exits on that message
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
        for error in (e for e in events if isinstance(e, Notice) and e.kind == "error"):
            self.notify(error.message, title=error.origin, severity="error", timeout=15)
            if self.session_ready:  # a writer that stopped changes the title ("… FAILED")
                self.title = f"svcwatch · {self.session.title}"
        if any(isinstance(e, Notice) and e.kind == "stale" for e in events):
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

    @staticmethod
    def _label(name: str) -> str:
        scenario = SCENARIOS.get(name)
        return f"scenario: {scenario.title} ({scenario.key})" if scenario else f"scenario: {name}"

    def _record_view(self) -> None:
        """Live views are recorded once the session started (the header names a scenario)."""
        if self.display_log.recording and self.main.is_mounted and self.session_ready:
            self.display_log.view(view_digest(self.main, self.scenario_label))

    def on_session_started(self, message: messages.SessionStarted) -> None:
        self.session_ready = True
        self.title = f"svcwatch · {message.title}"
        if self.pushes_state:  # a replay shows what the live dashboard showed when it started
            self.scenario_label = self.scenario_label or self._label(message.scenario or "happy")
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

    def _no_scenario(self, name: str) -> str:
        """Why scenario `name` cannot be shown here, in one line."""
        if self.capabilities.scenarios is None:
            return f"{name}: this session cannot switch scenarios ({self._read_only()})"
        what = "this recording has" if self.capabilities.replay is not None else "here:"
        return f"no {name} scenario: {what} {', '.join(self.scenarios_offered)}"

    def on_scenario_requested(self, message: messages.ScenarioRequested) -> None:
        if message.name not in self.scenarios_offered:  # a talk script's scene, say
            self.notify(self._no_scenario(message.name), severity="warning", timeout=4)
            return
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

    def set_scenario(self, name: str) -> None:
        self.scenario = name
        self.scenario_label = self._label(name)
        self.display_log.scenario(name)
        self.refresh_status()
        self.talk.show_scenario(name)
        self._record_view()

    def _read_only(self) -> str:
        return self.capabilities.read_only or f"a {self.session.kind} session"

    def refresh_status(self) -> None:
        """The header's sub-title and the diagnosis' stale prefix, from the session's state now."""
        self.sub_title = " · ".join(
            p for p in [self.scenario_label, *self.controls.status_parts()] if p
        )
        stale = self.controls.stale_for()
        if self.main.is_mounted and self.main.stale_for != stale:
            self.main.stale_for = stale
            self.main.refresh_diagnosis()

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
            self.notify(self._no_scenario(name), severity="warning", timeout=4)
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
        self._read_chain()

    def action_edit_slice(self) -> None:
        if self.capabilities.slice_editing is None:
            self.notify(f"the slice cannot be edited here: {self._read_only()}", severity="warning")
            return
        slice_ = self.main.evidence.slice
        if slice_ is None or self.stopping:
            self.notify("no EndpointSlice yet", severity="warning")
            return
        try:
            edited = edit_slice_text(dump_slice(slice_), self.editor)
        except EditFailed as exc:  # one line; nothing applied; the dashboard goes on
            self.notify(str(exc), title="Edit not applied", severity="error", timeout=10)
            return
        if edited is None:
            self.notify("Edit cancelled, no changes made.", title="Edit")
            return
        self.post_message(messages.SliceEdited(edited))

    def _external_editor(self, text: str) -> str | None:
        with self.suspend():
            return external_editor(text)

    def action_replay_toggle_pause(self) -> None:
        self.controls.replay(lambda replay: replay.toggle_pause())
        self.refresh_status()

    def action_replay_step(self) -> None:
        self.controls.replay(lambda replay: replay.step())
        self.refresh_status()

    def action_replay_slower(self) -> None:
        self.controls.replay(lambda replay: replay.slower())
        self.refresh_status()

    def action_replay_faster(self) -> None:
        self.controls.replay(lambda replay: replay.faster())
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
        self._switch_proxy_mode()

    @work(thread=True, exclusive=True, group="lab", exit_on_error=False, description="Proxy mode")
    def _switch_proxy_mode(self) -> None:
        modes = self.capabilities.proxy_modes
        if modes is not None:
            modes.switch_proxy_mode()

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
        names = self.theme_names or [self.theme]
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.user_keymap, self.offered_actions()))

    async def action_quit(self) -> None:
        """ctrl+q (Textual's own quit) also stops the session first."""
        self.action_quit_dashboard()

    def action_quit_dashboard(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        what = (
            "leaving the lab running (--keep)…"
            if self.keep
            else "leaving the lab (torn down unless kept or still in use)…"
        )
        if self.session.kind != "lab":
            what = "stopping…"
        self.push_screen(StoppingScreen(what))
        self._stop_session()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for spec, text in self.offered_actions():
            yield SystemCommand(
                spec.description,
                f"key {self.user_keymap.display(spec.id, spec.display_key)} · {text}",
                partial(self.call_later, self.run_action, spec.action),
            )
        yield from (
            c for c in super().get_system_commands(screen) if c.title not in ("Quit", "Theme")
        )

    def offered_actions(self) -> list[tuple[actions.ActionSpec, str]]:
        """What this session offers, each with its help as true here (footer, help, palette)."""
        return [
            (spec, actions.help_for(spec, self.capabilities))
            for spec in actions.DASHBOARD_ACTIONS
            if spec.id in self.offered_ids
        ]

    def _hide_what_is_not_offered(self) -> None:
        """Off the footer: a key that is not offered still answers, saying why (one line)."""
        for key, bound in self._bindings.key_to_bindings.items():
            self._bindings.key_to_bindings[key] = [
                replace(b, show=False) if b.id and b.id not in self.offered_ids else b
                for b in bound
            ]
