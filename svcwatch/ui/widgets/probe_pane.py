"""ProbePane: the latest TCP echo outcomes, a latency sparkline and a success-rate gauge.

Probes are what a client experiences; the other panes explain why. The gauge covers the last
`RATE_WINDOW` probes so a scenario switch shows up within a few seconds.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Sparkline, Static

from svcwatch.model.events import ProbeEvent

RATE_WINDOW = 20
SPARK_WINDOW = 60
SHOWN_OUTCOMES = 6


def latency_ms(probe: ProbeEvent) -> float:
    """What the client waited: connect + echo when it worked, time to the error when not."""
    if probe.ok:
        return (probe.connect_ms or 0.0) + (probe.echo_ms or 0.0)
    if probe.started is not None:
        return max(0.0, (probe.ts - probe.started) * 1000)
    return 0.0


def outcome_line(probe: ProbeEvent) -> str:
    if probe.ok:
        return (
            f"ok    connect {probe.connect_ms or 0:.1f} ms  echo {probe.echo_ms or 0:.1f} ms  "
            f"({probe.nbytes}B)"
        )
    errno = f" [{probe.errno}]" if probe.errno else ""
    return (
        f"FAIL  {probe.phase or 'connect'}: {probe.error}{errno} after {latency_ms(probe):.0f} ms"
    )


class ProbePane(Vertical, can_focus=True):
    """Outcomes (newest last), sparkline of latency, gauge of recent success."""

    COMPONENT_CLASSES = {"probe--ok", "probe--fail"}

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.recent: deque[ProbeEvent] = deque(maxlen=SPARK_WINDOW)
        self.target = ""

    def compose(self) -> ComposeResult:
        yield Static("no probes yet", id="probe-outcomes")
        yield Sparkline([], id="probe-latency")
        with Horizontal(id="probe-gauge-row"):
            yield Static("success", id="probe-rate")
            yield ProgressBar(total=100, show_eta=False, id="probe-gauge")

    def on_mount(self) -> None:
        self.border_title = "probes"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())

    def add_probes(self, probes: list[ProbeEvent]) -> None:
        if not probes:
            return
        self.recent.extend(probes)
        self.target = f"{probes[-1].dst}:{probes[-1].dport}"
        self.redraw()

    def clear(self) -> None:
        self.recent.clear()
        self.redraw()

    @property
    def success_rate(self) -> tuple[int, int]:
        window = list(self.recent)[-RATE_WINDOW:]
        return sum(1 for p in window if p.ok), len(window)

    def on_resize(self) -> None:
        self.redraw()  # how many outcome rows fit decides which (the newest) are drawn

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        self.border_title = f"probes → {self.target}" if self.target else "probes"
        outcomes = Text(no_wrap=True, overflow="ellipsis")
        rows = self.query_one("#probe-outcomes", Static).size.height or SHOWN_OUTCOMES
        for probe in list(self.recent)[-min(rows, SHOWN_OUTCOMES) :]:  # the newest always show
            role = "probe--ok" if probe.ok else "probe--fail"
            outcomes.append(
                outcome_line(probe) + "\n", self.get_component_rich_style(role, partial=True)
            )
        outcomes.rstrip()
        self.query_one("#probe-outcomes", Static).update(
            outcomes if self.recent else "no probes yet"
        )
        self.query_one("#probe-latency", Sparkline).data = [latency_ms(p) for p in self.recent]
        ok, total = self.success_rate
        self.query_one("#probe-rate", Static).update(
            f"success {ok}/{total}" if total else "success -"
        )
        self.query_one("#probe-gauge", ProgressBar).update(
            progress=(ok * 100 / total) if total else 0
        )
        self.set_class(bool(total) and ok < total, "-failing")
