"""Session controls: replay keys, `w` (pcapng of what is buffered), key recording, header status.

What a key does beyond the panes depends on the session: a replay has a clock to pause, step and
speed up; a recording session writes each handled key; a cluster session may report a broken
watch. This mixin keeps those session-kind differences out of the app's routing. The registry
(actions.py) says which actions apply to which session; `check_action` asks it, so a key that does
not apply falls through to the next binding of the same key (space: replay, else stream pane).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.actions import ActionParseResult
from textual.app import App
from textual.dom import DOMNode

from svcwatch.model.events import Event
from svcwatch.session.base import Session
from svcwatch.ui import actions
from svcwatch.ui.screens.main import MainScreen

PCAP_DIR_ENV = "SVCWATCH_PCAP_DIR"


def pcap_path(now: float | None = None, directory: str | None = None) -> Path:
    """Where `w` writes: ./svcwatch-YYYYmmdd-HHMMSS.pcapng, or in $SVCWATCH_PCAP_DIR if set."""
    base = Path(directory or os.environ.get(PCAP_DIR_ENV) or ".")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return base / f"svcwatch-{stamp}.pcapng"


def replay_status(session: Any) -> str:
    """ "replay ▶ 2x" or "replay ⏸ paused at 1x" for a ReplaySession."""
    speed = "max speed" if math.isinf(session.speed) else f"{session.speed:g}x"
    return f"replay ⏸ paused at {speed}" if session.paused else f"replay ▶ {speed}"


class SessionControlsMixin(App[None]):
    """Replay controls, pcap export, key recording and the header's status (module docstring)."""

    session: Session
    clock: Callable[[], float]
    stopping: bool
    scenes: Any
    scenario_label: str  # "scenario: Wrong port (2)", set by the app

    if TYPE_CHECKING:  # provided by SvcwatchApp

        @property
        def main(self) -> MainScreen: ...

    # --- which actions apply -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Replay keys only on replays; arrows step scenes only when a script runs."""
        if action in ("next_scene", "previous_scene"):
            return self.scenes is not None
        return actions.applies_to(action, self.session.kind)

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """Every dashboard action (key or palette) passes here: the one place keys are recorded."""
        handled = await super().run_action(action, default_namespace, namespaces)
        key = actions.key_for(action) if isinstance(action, str) else None
        record = getattr(self.session, "record_key", None)
        if handled and key is not None and default_namespace in (None, self) and record:
            record(key)  # a queue put: never blocks the event loop
        return handled

    # --- header status: scenario, replay clock, stale watch ----------------------------------

    def stale_for(self) -> float | None:
        """Seconds the session's watch has been broken (cluster), None while live or unknown."""
        since = getattr(self.session, "stale_since", None)
        return None if since is None else max(0.0, self.clock() - since)

    def refresh_status(self) -> None:
        """The header's sub-title and the diagnosis' stale prefix, from the session's state now."""
        parts = [self.scenario_label]
        if self.session.kind == "replay":
            parts.append(replay_status(self.session))
        stale = self.stale_for()
        if stale is not None:
            parts.append(f"⚠ watch stale for {stale:.0f}s")
        self.sub_title = " · ".join(p for p in parts if p)
        if self.main.is_mounted and self.main.stale_for != stale:
            self.main.stale_for = stale
            self.main.refresh_diagnosis()

    # --- replay ------------------------------------------------------------------------------
    # ReplaySession's controls only take its clock's lock (no I/O): safe on the event loop.

    def action_replay_toggle_pause(self) -> None:
        self.session.toggle_pause()  # type: ignore[attr-defined]
        self.refresh_status()

    def action_replay_step(self) -> None:
        self.session.step()  # type: ignore[attr-defined]
        self.refresh_status()

    def action_replay_slower(self) -> None:
        self.session.slower()  # type: ignore[attr-defined]
        self.refresh_status()

    def action_replay_faster(self) -> None:
        self.session.faster()  # type: ignore[attr-defined]
        self.refresh_status()

    # --- w: write what is buffered to pcapng -------------------------------------------------

    def action_write_pcap(self) -> None:
        packets = [p for p in self.main.packet_pane.packets if p.raw]
        if not packets:
            self.notify("no packets with raw bytes held yet; nothing written", severity="warning")
            return
        self._write_pcap(pcap_path(), packets)

    @work(thread=True, group="pcap", exit_on_error=False, description="pcap not written")
    def _write_pcap(self, path: Path, packets: list[Event]) -> None:
        from svcwatch.record.pcap import write_pcapng  # only `w` needs the pcapng writer

        written = write_pcapng(path, packets)
        self.call_from_thread(
            self.notify, f"wrote {written} packets to {path.absolute()}", title="pcapng", timeout=8
        )
