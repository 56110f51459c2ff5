"""The dashboard's header never claims a recording that stopped: a killed writer shows at once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from svcwatch.model.errors import OutputError
from svcwatch.session.recording import RecordingSession
from tests.ui.conftest import make_app, settle
from tests.ui.fakes import FakeSession

GUARD = 30.0  # seconds: a guard against hangs, never an assertion about speed


async def test_header_stops_claiming_recording_when_the_writer_is_killed(tmp_path: Path) -> None:
    session = RecordingSession(FakeSession(), tmp_path / "talk.svcrec")
    app = make_app(session)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        assert app.title.endswith("[recording to talk.svcrec]")
        os.kill(session.recorder.writer_pid, signal.SIGKILL)
        deadline = time.monotonic() + GUARD
        while "FAILED" not in app.title:  # the stream goes on; its next hand-over finds out
            assert time.monotonic() < deadline, f"header still says {app.title!r}"
            await pilot.press("2" if app.scenario == "happy" else "1")
            await settle(app, pilot)
            await asyncio.sleep(0.05)
        assert app.title.endswith("[recording to talk.svcrec FAILED]")
        shown = [n.message for n in app._notifications]
        assert any("the writer process was killed (SIGKILL)" in m for m in shown), shown
        assert app.scenario in ("happy", "wrong-port")  # still running: keys still switch
        await pilot.press("q")
        await settle(app, pilot)
    assert isinstance(app.stop_error, OutputError)  # for the CLI: one line and exit 1
    assert "recording stopped" in str(app.stop_error)
