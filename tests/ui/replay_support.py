"""Record a dashboard run of a FakeSession, and read back what each pane shows.

The live run goes through the real RecordingSession (the dashboard's pulls and the stream land in
the file exactly as `svcwatch --record` writes them), so replay tests start from a real recording.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual.widgets import Sparkline, Static

from svcwatch.session.recording import RecordingSession
from svcwatch.ui.app import SvcwatchApp
from tests.ui.conftest import make_app, settle, widget_text
from tests.ui.fake_variants import WallClockSession

REPLAY_TAG = (
    "[replay]"  # notices the replay itself adds (its end, jumps): not part of the recording
)
HIGHLIGHT = "  ◀ new"  # a rule from the latest sync, marked for 4 s after whichever read saw it


def visible(app: SvcwatchApp) -> dict[str, str]:
    """The text a user reads in each pane and on the diagnosis line."""
    main = app.main
    chain = str(main.chain_pane.query_one("#chain-body", Static).render())
    stream = [line for line in main.packet_pane.drawn_text if REPLAY_TAG not in line]
    return {
        "chain": chain.replace(HIGHLIGHT, ""),
        "chain title": str(main.chain_pane.border_title),
        "slice": widget_text(main.slice_pane),
        "probes": probe_text(app),
        "packets": "\n".join(stream),
        "diagnosis": main.diagnosis.text,
    }


def probe_text(app: SvcwatchApp) -> str:
    """The probe pane's outcome lines, success rate and latency sparkline data."""
    pane = app.main.probe_pane
    outcomes = str(pane.query_one("#probe-outcomes", Static).render())
    rate = str(pane.query_one("#probe-rate", Static).render())
    latency = pane.query_one("#probe-latency", Sparkline).data
    return f"{pane.border_title}\n{outcomes}\n{rate}\n{latency}"


async def record_dashboard(path: Path, keys: tuple[str, ...]) -> dict[str, str]:
    """Run the dashboard on a recorded WallClockSession, press `keys`, quit; what it showed last."""
    t0 = time.time()
    session = RecordingSession(WallClockSession(), path, t0=t0)
    app = make_app(session, t0=t0)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)
        shown = visible(app)
        await pilot.press("q")
        await app.workers.wait_for_complete()
        await pilot.pause()
    return shown
