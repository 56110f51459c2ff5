"""The dashboard on a replay: same panes as live, replay keys, recorded key presses.

Every recording here is made by the real RecordingSession around a FakeSession driven through the
dashboard, then played by the real ReplaySession (issue 6).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from svcwatch.record.reader import load_recording
from svcwatch.session.replay import ReplaySession
from svcwatch.ui.screens.help import HelpScreen
from tests.ui.conftest import make_app, settle
from tests.ui.replay_support import record_dashboard, visible

SIZE = (140, 44)


async def test_replayed_dashboard_shows_what_the_live_one_showed(tmp_path: Path) -> None:
    path = tmp_path / "talk.svcrec"
    live = await record_dashboard(path, ("2",))
    assert "ACK,RST" in live["packets"] and "connection refused" in live["diagnosis"]

    replay = ReplaySession(path, speed=math.inf)
    app = make_app(replay, clock=replay.now, t0=replay.recording.start_ts)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert await asyncio.to_thread(replay.wait_finished, 10.0)
        await settle(app, pilot)
        replayed = visible(app)
        assert "[replay]" in "\n".join(app.main.packet_pane.drawn_text)  # "end of recording"
    for pane in live:
        assert replayed[pane] == live[pane], pane


async def test_each_handled_key_is_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.svcrec"
    await record_dashboard(path, ("2", "space", "question_mark", "escape", "t", "x", "1"))
    keys = [key for _, key in load_recording(path).keys]
    # "x" is bound to nothing; escape closes help (a help-screen key, not a dashboard action).
    assert keys == ["2", "space", "?", "t", "1", "q"]


async def paused_replay(tmp_path: Path) -> ReplaySession:
    path = tmp_path / "paused.svcrec"
    await record_dashboard(path, ("2",))
    replay = ReplaySession(path, speed=1.0)
    replay.pause()  # starts paused: nothing plays until a key says so
    return replay


async def test_replay_keys_pause_step_and_change_speed(tmp_path: Path) -> None:
    replay = await paused_replay(tmp_path)
    app = make_app(replay, clock=replay.now, t0=replay.recording.start_ts)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "replay ⏸ paused at 1x" in app.sub_title
        assert app.main.packet_pane.drawn_text == []
        for _ in range(3):  # the slice change, the rules sync, the capture start
            await pilot.press("full_stop")
        await settle(app, pilot)
        assert [line.split()[2] for line in app.main.packet_pane.drawn_text] == ["capture-started"]
        assert replay.paused
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert replay.speed == 5.0 and "paused at 5x" in app.sub_title
        await pilot.press("left_square_bracket")
        assert replay.speed == 2.0
        await pilot.press("space")
        assert not replay.paused and "replay ▶ 2x" in app.sub_title
        assert not app.main.packet_pane.paused  # space drove the replay, not the stream pane
        await pilot.press("space")
        assert replay.paused


async def test_scenario_key_on_a_replay_jumps_instead_of_toggling(tmp_path: Path) -> None:
    replay = await paused_replay(tmp_path)
    app = make_app(replay, clock=replay.now, t0=replay.recording.start_ts)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        assert app.sub_title.startswith("scenario: Wrong port (2)")
        await pilot.press("2")  # live this would go back to happy; a replay jumps again
        await settle(app, pilot)
        assert app.sub_title.startswith("scenario: Wrong port (2)")
        assert any("jumped to wrong-port" in line for line in app.main.packet_pane.drawn_text)


async def test_help_lists_the_replay_keys(tmp_path: Path) -> None:
    replay = await paused_replay(tmp_path)
    app = make_app(replay, clock=replay.now, t0=replay.recording.start_ts)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        from tests.ui.conftest import widget_text

        keys = widget_text(app.screen.query_one("#help-keys"))
        for key, words in (
            (".", "next recorded event"),
            ("[", "play slower"),
            ("]", "play faster"),
            ("w", "pcapng"),
        ):
            assert any(
                line.lstrip("│ ").startswith(key) and words in line for line in keys.splitlines()
            )


async def test_live_space_still_pauses_the_stream_pane() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("space")
        assert app.main.packet_pane.paused
        assert "replay" not in app.sub_title


async def test_the_end_of_the_demo_says_replay_ended_and_fits_80_columns() -> None:
    from svcwatch.record import DEMO_RECORDING

    replay = ReplaySession(DEMO_RECORDING, speed=math.inf)
    app = make_app(replay, clock=replay.now, t0=replay.recording.start_ts)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert await asyncio.to_thread(replay.wait_finished, 30.0)
        await settle(app, pilot)
        app.refresh_status()
        assert app.sub_title.endswith("replay ■ end") and "▶" not in app.sub_title
        view = app.main.packet_pane.view
        on_screen = [view.render_line(y).text for y in range(view.size.height)]
        end = [row for row in on_screen if "replay ended" in row]
        assert end and "scenario keys jump back" in end[0] and "…" not in end[0]
        await pilot.press("space", "1")  # paused, a scenario key jumps back and stays there
        await settle(app, pilot)
        app.refresh_status()
        assert app.sub_title.endswith("replay ⏸ paused at max speed")
