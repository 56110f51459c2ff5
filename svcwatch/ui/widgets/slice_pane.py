"""SlicePane: the EndpointSlice's endpoints next to what the backend knows about each one.

The slice says where kube-proxy should send traffic; the lab knows whether a pod really has that
IP, whether anything listens on the port, and (from the endpoint chains' DNAT counters: KUBE-SEP-,
or nftables' endpoint-) how many new connections actually landed there. Putting the claim and the
truth side by side is the lesson. kube-proxy's nftables rules carry no counters: there the landed
column counts the new connections the capture saw sent to each endpoint (a SYN onto cni0, or one
held on an ARP nobody answers: diagnosis.Evidence.landed_from_capture), marked "conns".
"""

from __future__ import annotations

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from svcwatch.explain.chain_view import landed_counts
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import Endpoint, EndpointSlice
from svcwatch.model.facts import EndpointFacts


def _conditions(endpoint: Endpoint) -> str:
    c = endpoint.conditions
    words = ["ready" if c.is_ready else "NOT ready"]
    if not c.is_serving:
        words.append("not serving")
    if c.is_terminating:
        words.append("terminating")
    return ", ".join(words)


class SlicePane(Static, can_focus=True):
    """A table: address, port, conditions, pod, listening, landed share."""

    COMPONENT_CLASSES = {"slice--ok", "slice--bad", "slice--warn", "slice--dim"}

    def __init__(self, **kwargs: object) -> None:
        super().__init__("waiting for the EndpointSlice…", **kwargs)  # type: ignore[arg-type]
        self.slice: EndpointSlice | None = None
        self.facts: list[EndpointFacts] = []
        self.chain_tree: ChainTree | None = None
        self.captured: dict[str, int] | None = None  # from the capture, for rules without counters

    def on_mount(self) -> None:
        self.border_title = "EndpointSlice"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())

    def show_slice(self, slice_: EndpointSlice, facts: list[EndpointFacts]) -> None:
        self.slice, self.facts = slice_, facts
        rv = f" rv={slice_.resource_version}" if slice_.resource_version else ""
        self.border_title = f"EndpointSlice {slice_.key}{rv}"
        self.redraw()

    def start_over(self) -> None:
        self.slice, self.facts, self.chain_tree, self.captured = None, [], None, None
        self.border_title = "EndpointSlice"
        self.update("waiting for the EndpointSlice…")

    def show_counters(self, tree: ChainTree) -> None:
        self.chain_tree = tree
        self.redraw()

    def show_landed(self, counts: dict[str, int]) -> None:
        """Per-endpoint new connections from the capture; used when the rules count nothing."""
        if counts != self.captured:
            self.captured = dict(counts)
            if landed_counts(self.chain_tree) is None:
                self.redraw()

    def redraw(self) -> None:
        if self.slice is not None and self.is_mounted:
            self.update(self.render_table(self.slice))

    def render_table(self, slice_: EndpointSlice) -> Table | Text:
        if not slice_.endpoints:
            return Text(
                "no endpoints: kube-proxy writes only a REJECT rule", self._style("slice--bad")
            )
        table = Table(box=None, expand=True, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
        table.add_column("endpoint", no_wrap=True, min_width=11)
        table.add_column("port", no_wrap=True, min_width=5)
        table.add_column("conditions", no_wrap=True, overflow="ellipsis")
        table.add_column("pod", no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column("listening", no_wrap=True, overflow="ellipsis")
        counts = landed_counts(self.chain_tree)
        captured = counts is None and self.captured is not None
        if captured:
            counts = self.captured  # nftables mode: what the capture saw, not rule counters
        table.add_column("conns" if captured else "landed", no_wrap=True, min_width=7)
        port = next((p.port for p in slice_.ports if p.port), None)
        total = sum(counts.values()) if counts is not None else 0
        for endpoint in slice_.endpoints:
            table.add_row(*self._row(endpoint, port, counts, total))
        return table

    def _row(
        self, endpoint: Endpoint, port: int | None, counts: dict[str, int] | None, total: int
    ) -> list[Text]:
        address = endpoint.address or "?"
        fact = next((f for f in self.facts if f.address == address), None)
        ready = endpoint.conditions.is_ready
        cond = Text(_conditions(endpoint), self._style("slice--ok" if ready else "slice--warn"))
        if fact is None:
            pod, listening = (
                Text("?", self._style("slice--dim")),
                Text("?", self._style("slice--dim")),
            )
        else:
            pod = (
                Text(fact.pod, self._style("slice--ok"))
                if fact.pod
                else Text("no pod has this IP", self._style("slice--bad"))
            )
            listening = self._listening(fact)
        return [
            Text(address),
            Text(str(port) if port else "-"),
            cond,
            pod,
            listening,
            self._landed(counts, f"{address}:{port}", total),
        ]

    def _landed(self, counts: dict[str, int] | None, target: str, total: int) -> Text:
        if counts is None:
            return Text("n/a", self._style("slice--dim"))  # nftables mode: no counters to read
        landed = counts.get(target, 0)
        return Text(f"{landed} ({landed * 100 / total:.0f}%)" if total else str(landed))

    def _listening(self, fact: EndpointFacts) -> Text:
        if fact.listening is None:
            return Text("unknown", self._style("slice--dim"))
        if fact.listening:
            return Text(f"yes :{fact.port}", self._style("slice--ok"))
        return Text(f"NO :{fact.port}", self._style("slice--bad"))

    def _style(self, role: str) -> Style:
        return self.get_component_rich_style(role, partial=True)
