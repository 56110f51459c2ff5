"""A replay shows exactly what the live dashboard showed: proved on a real lab recording.

The real dashboard runs on a real lab with `--record`, walking all eight scenarios by key (and a
`c` that clears the stream). While it runs it records a digest of its panes (header scenario,
diagnosis, chain with counters, sync lag, slice table, probe success) each time one changed, with
the number of stream events it had shown by then. The replay then runs in the same dashboard,
straight through and again with scenario jumps and single steps, and compares its own panes with
every recorded digest at the same point of the stream: none may differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.make_demo import record_dashboard
from svcwatch.record.reader import load_recording
from svcwatch.session.replay import ReplaySession
from svcwatch.ui.app import SvcwatchApp

pytestmark = [pytest.mark.lab, pytest.mark.slow]

EIGHT_SCENARIOS = [(key, 2.0) for key in "12345678"] + [("c", 1.0), ("2", 2.0)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exact") / "walk.svcrec.gz"
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SVCWATCH_STATE_DIR", str(state))
        import asyncio

        asyncio.run(record_dashboard(path, EIGHT_SCENARIOS, pods=2, interval=0.3))
    return path


async def replay_and_compare(path: Path, keys: tuple[str, ...]) -> tuple[int, list[object]]:
    session = ReplaySession(path, speed=10.0)
    app = SvcwatchApp(session, clock=session.now, t0=session.recording.start_ts)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in keys:
            await pilot.pause(0.3)
            await pilot.press(key)
        for _ in range(600):
            if session.finished:
                break
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        return app.display_log.views_checked, list(app.display_log.mismatches)


def test_the_recording_holds_what_each_pane_displayed_in_all_eight_scenarios(
    recorded: Path,
) -> None:
    rec = load_recording(recorded)
    views = [s.value for s in rec.shown if s.what == "view"]
    scenarios = {v["scenario"] for v in views}
    assert {"scenario: Not ready (5)", "scenario: Rollout race (8)"} <= scenarios
    assert len(scenarios) == 8  # every view names one of the eight
    wrong_ip = [v for v in views if v["scenario"] == "scenario: Wrong IP (3)"]
    assert any("DNAT 10.42.0.143" in v["chain"] and "10.42.0.143" in v["slice"] for v in wrong_ip)


async def test_a_replay_shows_what_the_live_dashboard_showed_at_every_change(
    recorded: Path,
) -> None:
    views = sum(1 for s in load_recording(recorded).shown if s.what == "view")
    checked, mismatches = await replay_and_compare(recorded, ())
    assert mismatches == [] and checked == views


async def test_after_jumps_and_steps_the_replay_still_matches_the_live_dashboard(
    recorded: Path,
) -> None:
    views = sum(1 for s in load_recording(recorded).shown if s.what == "view")
    keys = ("3", ".", ".", ".", "space", "6", "2", "space", "]", "]")
    checked, mismatches = await replay_and_compare(recorded, keys)
    assert mismatches == [] and checked > views  # each jump re-checks the moments before it
