"""MainScreen: header, diagnosis line, the four panes and the footer, and what they show.

The app routes session facts here; this screen spreads them over the panes and keeps the
`Evidence` the diagnosis line is computed from. It never calls the session itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from svcwatch.explain.diagnosis import Diagnosis, Evidence, diagnose, with_stale_watch
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.events import Event, ProbeEvent, SyncTiming
from svcwatch.model.facts import EndpointFacts
from svcwatch.ui.widgets.chain_pane import ChainPane
from svcwatch.ui.widgets.header_bar import HeaderBar
from svcwatch.ui.widgets.packet_pane import PacketPane
from svcwatch.ui.widgets.probe_pane import ProbePane
from svcwatch.ui.widgets.slice_pane import SlicePane


class MainScreen(Screen[None]):
    """The dashboard: chain | slice+probes over a full-width stream; a compact stack at 80x24."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

    def __init__(self, clock: Callable[[], float], t0: float) -> None:
        super().__init__()
        self.clock = clock
        self.t0 = t0
        self.evidence = Evidence()
        self.diagnosis = Diagnosis("Starting…", "waiting")
        self.stale_for: float | None = None  # seconds the cluster watch has been broken

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield Static("Starting…", id="diagnosis", classes="-waiting")
        with Container(id="panes"):
            yield ChainPane(self.clock, id="chain-pane")
            with Vertical(id="side"):
                yield SlicePane(id="slice-pane")
                yield ProbePane(id="probe-pane")
            yield PacketPane(self.t0, id="packet-pane")
        yield Footer()

    @dataclass
    class Ready(Message):
        """Every pane is mounted: the app may start the session and route facts here."""

    def on_mount(self) -> None:
        self.set_interval(0.5, self.chain_pane.tick)
        self.packet_pane.view.focus()
        self.post_message(self.Ready())

    def show_events(self, events: list[Event], dropped: int = 0) -> None:
        for event in events:
            self.evidence.observe(event)
        self.packet_pane.add_events(events, dropped)
        self.probe_pane.add_probes([e for e in events if isinstance(e, ProbeEvent)])
        landed = self.evidence.landed_from_capture()
        self.chain_pane.show_landed(landed)
        self.slice_pane.show_landed(landed)
        timings = [e for e in events if isinstance(e, SyncTiming)]
        if timings:
            self.chain_pane.show_sync(timings[-1])
        self.refresh_diagnosis()

    def show_chain(self, tree: ChainTree, after_sync: bool) -> None:
        self.evidence.chain = tree
        self.chain_pane.show_tree(tree, after_sync)
        self.slice_pane.show_counters(tree)
        self.refresh_diagnosis()

    def show_endpoints(self, slice_: EndpointSlice, facts: list[EndpointFacts]) -> None:
        self.evidence.slice, self.evidence.facts = slice_, facts
        self.slice_pane.show_slice(slice_, facts)
        self.refresh_diagnosis()

    def refresh_diagnosis(self) -> None:
        self.set_diagnosis(with_stale_watch(diagnose(self.evidence), self.stale_for))

    def set_diagnosis(self, diagnosis: Diagnosis) -> None:
        if diagnosis == self.diagnosis:
            return
        self.diagnosis = diagnosis
        line = self.query_one("#diagnosis", Static)
        line.update(diagnosis.text)
        for level in ("ok", "partial", "fail", "waiting"):
            line.set_class(level == diagnosis.level, f"-{level}")

    def clear_stream(self) -> None:
        self.packet_pane.clear()
        self.probe_pane.clear()
        self.evidence.reset_stream()
        self.refresh_diagnosis()

    def start_over(self) -> None:
        """Every pane as before the session started (a replay jump then catches up from there)."""
        self.evidence = Evidence()
        self.packet_pane.clear()
        self.probe_pane.clear()
        self.chain_pane.start_over()
        self.slice_pane.start_over()
        self.refresh_diagnosis()

    def toggle_zoom(self) -> None:
        """`z`: the focused pane (the stream when none is) fills the screen; `z` again restores."""
        panes = (self.chain_pane, self.slice_pane, self.probe_pane, self.packet_pane)
        if self.has_class("-zoomed"):
            self.remove_class("-zoomed")
            for pane in panes:
                pane.remove_class("-zoomed-pane")
            self.query_one("#side").remove_class("-zoomed-pane")
            return
        focused = self.focused
        pane = next(
            (p for p in panes if focused is p or p in (focused.ancestors if focused else [])),
            self.packet_pane,
        )
        pane.add_class("-zoomed-pane")
        if pane in (self.slice_pane, self.probe_pane):
            self.query_one("#side").add_class("-zoomed-pane")
        self.add_class("-zoomed")

    @property
    def chain_pane(self) -> ChainPane:
        return self.query_one(ChainPane)

    @property
    def slice_pane(self) -> SlicePane:
        return self.query_one(SlicePane)

    @property
    def packet_pane(self) -> PacketPane:
        return self.query_one(PacketPane)

    @property
    def probe_pane(self) -> ProbePane:
        return self.query_one(ProbePane)


class StoppingScreen(ModalScreen[None]):
    """Shown while the session stops, so quitting never looks like a hang."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="stopping-box"):
            yield Static(self.message, id="stopping-text")
