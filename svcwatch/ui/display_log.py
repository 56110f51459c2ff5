"""DisplayLog: what the dashboard displayed, recorded live and shown again exactly in a replay.

Live, on a recording session, every value the panes display that does not come from the event
stream (the chain read with its counters, the Service and slice, the endpoint facts, the header's
scenario, a `c` that cleared the stream) is written with the number of stream events the
dashboard had shown by then, and so is a digest of the panes (`view`) whenever it changed. In a
replay the player hands each of those back after exactly as many events, so the panes go through
the same states in the same order; each `view` is compared with the replayed panes and a
difference is counted (and said once on screen), which is how a replay proves it is exact.
"""

from __future__ import annotations

import dataclasses
import io
from typing import TYPE_CHECKING, Any

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service
from svcwatch.session.capabilities import DisplayRecording
from svcwatch.session.exports import chain_fields, objects_fields
from svcwatch.session.replay import Shown

if TYPE_CHECKING:
    from svcwatch.ui.app import SvcwatchApp
    from svcwatch.ui.screens.main import MainScreen

HIGHLIGHT_MARK = "  ◀ new"  # expires on a timer: not part of what a replay must match


def view_digest(main: MainScreen, scenario_label: str) -> dict[str, str]:
    """The panes' evidence as plain text: header scenario, diagnosis, chain with counters, the
    sync lag under it, the slice table and the probes' success count."""
    from rich.console import Console  # the slice pane is a rich Table: render it to text

    chain = main.chain_pane
    tree = chain.chain_tree
    out = io.StringIO()
    slice_pane = main.slice_pane
    if slice_pane.slice is not None:
        Console(file=out, width=160, color_system=None).print(
            slice_pane.render_table(slice_pane.slice)
        )
    ok, total = main.probe_pane.success_rate
    return {
        "scenario": scenario_label,
        "diagnosis": main.diagnosis.text,
        "chain": ""
        if tree is None
        else chain.render_tree(tree, fit=False).plain.replace(HIGHLIGHT_MARK, ""),
        "sync": str(chain.border_subtitle or ""),
        "slice": f"{slice_pane.border_title}\n{out.getvalue().rstrip()}",
        "probes": f"{ok}/{total}",
    }


class DisplayLog:
    """Records what is displayed (live, recording) or replays and checks it (replay)."""

    def __init__(self, recorder: DisplayRecording | None) -> None:
        self.recorder = recorder
        self.seen = 0  # stream events the dashboard has shown (live)
        self._last: dict[str, Any] = {}  # what: the last value recorded, to skip repeats
        self.views_checked = 0
        self.mismatches: list[tuple[int, str]] = []  # (seen, pane) where a replay differed

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def count(self, events: int) -> None:
        self.seen += events

    def chain(self, tree: ChainTree) -> None:
        self._record("chain", chain_fields(tree))

    def started(self, service: Service, slice_: EndpointSlice) -> None:
        self._record("started", objects_fields(service, slice_), always=True)
        self._last["slice"] = {"slice": slice_.to_manifest()}  # shown with no facts yet
        self._last["facts"] = {"facts": []}

    def endpoints(self, slice_: EndpointSlice, facts: list[EndpointFacts]) -> None:
        self._record("slice", {"slice": slice_.to_manifest()})
        self._record("facts", {"facts": [dataclasses.asdict(f) for f in facts]})

    def scenario(self, name: str) -> None:
        self._record("scenario", {"name": name})

    def cleared(self) -> None:
        self._record("clear", {"at": self.seen}, always=True)

    def view(self, digest: dict[str, str]) -> None:
        self._record("view", {"view": digest})

    def _record(self, what: str, fields: dict[str, Any], *, always: bool = False) -> None:
        if self.recorder is None:
            return
        fields = {k: v for k, v in fields.items() if k not in ("rec", "ts")}
        if not always and self._last.get(what) == fields:
            return
        self._last[what] = fields
        self.recorder.record_shown(what, self.seen, fields)

    def show_recorded(self, app: SvcwatchApp, shown: Shown) -> None:
        """Display a value as the live dashboard did at this point of the stream (a replay)."""
        main = app.main
        if shown.what == "chain":
            main.show_chain(shown.value, after_sync=False)
        elif shown.what in ("started", "objects"):
            main.evidence.service = shown.value[0].key
            main.show_endpoints(
                shown.value[1], [] if shown.what == "started" else main.evidence.facts
            )
        elif shown.what == "slice":
            main.show_endpoints(shown.value, main.evidence.facts)
        elif shown.what == "facts" and main.evidence.slice is not None:
            main.show_endpoints(main.evidence.slice, [EndpointFacts(**f) for f in shown.value])
        elif shown.what == "scenario":
            app.set_scenario(shown.value)
        elif shown.what == "clear":
            main.clear_stream()
        elif shown.what == "reset":  # a jump: the stream starts over and catches up at once
            main.start_over()
            app.scenario, app.scenario_label = None, ""
        elif shown.what == "view":
            pane = self.check(shown, view_digest(main, app.scenario_label))
            if pane is not None and len(self.mismatches) == 1:
                app.notify(f"this replay differs from the recording in the {pane} pane", timeout=8)

    def check(self, shown: Shown, digest: dict[str, str]) -> str | None:
        """Compare a replayed view with the recorded one; the first differing pane, or None."""
        self.views_checked += 1
        recorded: dict[str, str] = shown.value
        for pane, text in recorded.items():
            if digest.get(pane) != text:
                self.mismatches.append((shown.seen, pane))
                return pane
        return None
