"""80x24 and 100x30 keep the evidence: header status, the chain's paths, packet flags, footer
keys, and z / Tab to zoom and move between panes (issue 11 item 4)."""

from __future__ import annotations

import pytest
from textual.widget import Widget
from textual.widgets import Static

from svcwatch.record import DEMO_RECORDING
from svcwatch.session.replay import ReplaySession
from svcwatch.ui.app import SvcwatchApp
from svcwatch.ui.widgets.header_bar import fit_header
from tests.ui.conftest import make_app, settle


def screen_text(app: SvcwatchApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.mark.parametrize("width", [80, 100, 160])
async def test_the_header_always_shows_the_scenario_and_the_replay_state(width: int) -> None:
    replay = ReplaySession(DEMO_RECORDING, speed=1.0)
    replay.pause()
    app = make_app(replay, clock=replay.now, t0=replay.recording.start_ts)
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(app, pilot)
        header = screen_text(app).splitlines()[0]
        assert "Happy path (1)" in header and "replay ⏸" in header and "1x" in header
        assert "svcwatch" in header


def test_the_header_shortens_the_title_first_then_the_words_of_the_status() -> None:
    title = "svcwatch · replay of lab demo (node 192.168.97.3) · demo.svcrec.gz, recorded today"
    status = "scenario: Good + bad IP (4) · replay ⏸ paused at 0.25x · ⚠ watch stale for 12s"
    assert fit_header(title, status, 200).endswith(status)
    line = fit_header(title, status, 80)
    assert "Good + bad IP (4)" in line and "⏸" in line and "0.25x" in line and len(line) <= 78


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_the_chain_pane_shows_the_services_paths_with_counters_first(
    size: tuple[int, int],
) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        body = str(app.main.chain_pane.query_one("#chain-body", Static).render()).splitlines()
        assert "KUBE-SVC-" in body[0] and "KUBE-SEP-" in body[0] and "DNAT 10.42.0." in body[0]
        assert "pkts" in body[0] and "50%" in body[0]
        assert {"DNAT 10.42.0.142:12345", "DNAT 10.42.0.143:12345"} <= {
            line[line.index("DNAT") :].strip() for line in body[:2]
        }
        rows = screen_text(app).splitlines()
        top = next(i for i, row in enumerate(rows) if "iptables chain" in row)
        visible = "\n".join(rows[top + 1 : top + 3])  # the first rows under its title
        assert "DNAT 10.42.0.142:12345" in visible and "DNAT 10.42.0.143:12345" in visible


async def test_packet_lines_keep_interface_addresses_and_flags_at_80_columns() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        rows = [r for r in screen_text(app).splitlines() if "[veth0829e839]" in r]
        assert rows and any(r.rstrip(" ▁▂▃▄▅▆▇█").endswith("ACK,RST") for r in rows)
        assert all("10.42.0.142:12346" in r and "10.42.0.1:11026" in r for r in rows)
        footer = screen_text(app).splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer


async def test_z_zooms_the_focused_pane_and_tab_moves_the_focus() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.focused is app.main.packet_pane.view
        await pilot.press("tab")
        assert app.focused is not app.main.packet_pane.view
        focused: Widget | None = app.focused
        await pilot.press("z")
        await pilot.pause()
        zoomed = [
            p
            for p in (
                app.main.chain_pane,
                app.main.slice_pane,
                app.main.probe_pane,
                app.main.packet_pane,
            )
            if p.display and p.region.height
        ]
        assert len(zoomed) == 1 and (zoomed[0] is focused or focused in zoomed[0].walk_children())
        assert zoomed[0].region.height >= 15
        await pilot.press("z")
        await pilot.pause()
        assert app.main.chain_pane.region.height and app.main.packet_pane.region.height


async def test_the_probe_pane_shows_the_newest_outcome_at_80x24() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for key in ("2", "3"):  # a refusal, then a timeout: the newest must be the one shown
            await pilot.press(key)
            await settle(app, pilot)
        rows = screen_text(app).splitlines()
        top = next(i for i, row in enumerate(rows) if "probes" in row and "─" in row)
        assert "timeout" in rows[top + 1] and "refused" not in rows[top + 1]
