"""Session controls: replay keys, `w` (pcapng of what is buffered), key recording, header status.

What a key does beyond the panes depends on what the session can do: a replay has a clock to
pause, step and speed up; a recording session writes each handled key; a cluster session may
report a broken watch. `SessionControls` asks the session's capabilities (session/capabilities.py)
once and keeps those differences out of the app's routing. The registry (actions.py) says which
actions apply to a replay or a live session; the app's `check_action` asks `applies`, so a key
that does not apply falls through to the next binding of the same key (space: replay, else the
stream pane).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from svcwatch.model.events import Event
from svcwatch.model.scenario import SCENARIOS
from svcwatch.session.base import Session
from svcwatch.session.capabilities import ReplayControls
from svcwatch.session.exports import write_pcapng
from svcwatch.ui import actions
from svcwatch.ui.workers import in_thread

if TYPE_CHECKING:
    from textual.app import App

    from svcwatch.ui.screens.main import MainScreen

PCAP_DIR_ENV = "SVCWATCH_PCAP_DIR"


def pcap_path(now: float | None = None, directory: str | None = None) -> Path:
    """Where `w` writes: ./svcwatch-YYYYmmdd-HHMMSS.pcapng, or in $SVCWATCH_PCAP_DIR if set."""
    base = Path(directory or os.environ.get(PCAP_DIR_ENV) or ".")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return base / f"svcwatch-{stamp}.pcapng"


def scenario_label(name: str) -> str:
    """The header's "scenario: Wrong port (2)", or the bare name of one svcwatch does not know."""
    scenario = SCENARIOS.get(name)
    return f"scenario: {scenario.title} ({scenario.key})" if scenario else f"scenario: {name}"


def replay_status(replay: ReplayControls) -> str:
    """ "replay ▶ 2x", "replay ⏸ paused at 1x", or "replay ■ end" once every event played."""
    if replay.finished:
        return "replay ■ end"
    speed = "max speed" if math.isinf(replay.speed) else f"{replay.speed:g}x"
    return f"replay ⏸ paused at {speed}" if replay.paused else f"replay ▶ {speed}"


class SessionControls:
    """Replay controls, pcap export, key recording and the header's status (module docstring)."""

    def __init__(self, app: App[None], session: Session, clock: Callable[[], float]) -> None:
        self.app, self.clock = app, clock
        self.capabilities = session.capabilities()

    def applies(self, action: str) -> bool:
        """Replay keys only on a replay, the stream pane's pause only on a live session."""
        return actions.applies_to(action, replay=self.capabilities.replay is not None)

    def record_key(self, action: str) -> None:
        """Write the key bound to a handled registry action, when the session records keys."""
        recorder = self.capabilities.key_recording
        key = actions.key_for(action)
        if recorder is not None and key is not None:
            recorder.record_key(key)  # a queue put: never blocks the event loop

    # --- header status: replay clock, stale watch --------------------------------------------

    def stale_for(self) -> float | None:
        """Seconds the session's watch has been broken (cluster), None while live or unknown."""
        health = self.capabilities.watch_health
        since = None if health is None else health.stale_since
        return None if since is None else max(0.0, self.clock() - since)

    def status_parts(self) -> list[str]:
        """What the header adds after the scenario: the replay clock, how long a watch is stale."""
        parts = []
        if self.capabilities.replay is not None:
            parts.append(replay_status(self.capabilities.replay))
        stale = self.stale_for()
        if stale is not None:
            parts.append(f"⚠ watch stale for {stale:.0f}s")
        return parts

    def show_status(self, main: MainScreen, scenario_label: str) -> None:
        """The header's sub-title and the diagnosis' stale prefix, from the session's state now."""
        self.app.sub_title = " · ".join(p for p in [scenario_label, *self.status_parts()] if p)
        stale = self.stale_for()
        if main.is_mounted and main.stale_for != stale:
            main.stale_for = stale
            main.refresh_diagnosis()

    # --- replay: the controls only take the clock's lock (no I/O), safe on the event loop ----

    def replay(self, control: Callable[[ReplayControls], object]) -> None:
        """Run one replay control (pause, step, slower, faster) when the session is a replay."""
        if self.capabilities.replay is not None:
            control(self.capabilities.replay)

    # --- w: write what is buffered to pcapng -------------------------------------------------

    def write_pcap(self, packets: list[Event]) -> None:
        """Write `packets` (those with raw bytes) to a new pcapng file, off the event loop."""
        if not packets:
            self.app.notify(
                "no packets with raw bytes held yet; nothing written", severity="warning"
            )
            return
        path = pcap_path()
        in_thread(
            self.app,
            lambda: self._write_pcap(path, packets),
            group="pcap",
            description="pcap not written",
            exclusive=False,
        )

    def _write_pcap(self, path: Path, packets: list[Event]) -> None:
        written = write_pcapng(path, packets)
        self.app.call_from_thread(
            self.app.notify,
            f"wrote {written} packets to {path.absolute()}",
            title="pcapng",
            timeout=8,
        )
