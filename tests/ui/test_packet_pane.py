"""The packets pane follows the newest line unless the user scrolled up, filters as a view, and
reads in time order with a time column that never shifts (issues 11 and 15)."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Input

from svcwatch.model.events import Notice, PacketEvent, ProbeEvent
from svcwatch.ui.app import SvcwatchApp
from svcwatch.ui.widgets.stream_lines import FILTER_HELP, elapsed_label
from tests.ui.conftest import make_app, settle
from tests.ui.fakes import FakeSession

SIZE = (100, 30)


def newest_visible(app: SvcwatchApp) -> bool:
    """Whether the pane's last row on screen is the newest line."""
    view = app.main.packet_pane.view
    return view.scroll_offset.y + view.size.height >= len(view.lines)


def screen_lines(app: SvcwatchApp) -> list[str]:
    view = app.main.packet_pane.view
    top = view.scroll_offset.y
    return [line.plain for line in list(view.lines)[top : top + view.size.height]]


async def more_lines(session: FakeSession, app: SvcwatchApp, pilot: Pilot[None], n: int) -> None:
    for i in range(n):
        session.notice(f"line {i}")
    await settle(app, pilot)


async def test_the_pane_follows_new_lines_after_c_and_after_a_filter_is_cleared() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await more_lines(session, app, pilot, 40)
        assert newest_visible(app)
        await pilot.press("c")
        await more_lines(session, app, pilot, 40)
        assert newest_visible(app) and screen_lines(app)[-1].endswith("line 39")
        await pilot.press("slash", *"line", "enter")
        await more_lines(session, app, pilot, 40)
        assert newest_visible(app)
        await pilot.press("slash", *["backspace"] * 4, "enter")
        await more_lines(session, app, pilot, 40)
        assert newest_visible(app) and screen_lines(app)[-1].endswith("line 39")


async def test_scrolling_up_stops_following_and_end_or_g_resumes_it() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await more_lines(session, app, pilot, 60)
        await pilot.press("pageup")
        before = screen_lines(app)
        await more_lines(session, app, pilot, 10)
        assert screen_lines(app) == before and not newest_visible(app)  # the user reads on
        await pilot.press("end")
        await more_lines(session, app, pilot, 10)
        assert newest_visible(app) and screen_lines(app)[-1].endswith("line 9")
        await pilot.press("up", "up")
        await more_lines(session, app, pilot, 10)
        assert not newest_visible(app)
        await pilot.press("G")
        await more_lines(session, app, pilot, 10)
        assert newest_visible(app)


async def test_clearing_a_filter_brings_back_the_lines_it_hid() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"arp", "enter")
        await pilot.press("3")  # wrong IP: ARP who-has, SYNs and a timeout arrive while filtered
        await settle(app, pilot)
        pane = app.main.packet_pane
        assert pane.drawn_text and all("arp who-has" in line for line in pane.drawn_text)
        await pilot.press("slash", "escape")  # Esc clears an active filter
        assert pane.filter_text == "" and "filter:" not in str(pane.border_subtitle)
        assert any("i/o timeout" in line for line in pane.drawn_text)
        assert any(" SYN" in line and "10.42.0.143" in line for line in pane.drawn_text)
        await pilot.press("slash", *"arp", "enter", "escape")  # Esc from the stream itself
        assert pane.filter_text == "" and any("i/o timeout" in line for line in pane.drawn_text)


async def test_the_filter_understands_host_port_interfaces_and_flags() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")  # wrong port: SYNs to 12346 answered by RSTs on the veth
        await settle(app, pilot)
        pane = app.main.packet_pane
        assert FILTER_HELP in str(pane.query_one("#stream-filter", Input).placeholder)
        checks: dict[str, Callable[[str], bool]] = {
            "port 12346 RST": lambda line: "12346" in line and "RST" in line,
            "host 10.42.0.142 syn": lambda line: "10.42.0.142" in line and "SYN" in line,
            "veth rst": lambda line: "[veth" in line and "RST" in line,
            "cni0": lambda line: "[cni0]" in line,
        }
        for text, holds in checks.items():
            pane.filter_text = text
            await pilot.pause()
            assert pane.drawn_text, text
            assert all(holds(line) for line in pane.drawn_text), text
        pane.filter_text = "port 9"
        await pilot.pause()
        assert pane.drawn_text == []


async def test_lines_are_in_time_order_even_when_delivered_out_of_order() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        t = session.now + 10
        ok = ProbeEvent(t + 0.001, "echo-ok", "192.168.97.2", 5000, "192.168.97.3", 31234)
        syn = PacketEvent(
            t, "tcp-packet", "eth0", "in", "192.168.97.2", "192.168.97.3", 5000, 31234, "SYN"
        )
        session._emit([ok])  # the probe's outcome is delivered first...
        await settle(app, pilot)
        session._emit([syn, Notice(t + 0.002, "info", "after both")])  # ...its SYN a batch later
        await settle(app, pilot)
        lines = app.main.packet_pane.drawn_text[-3:]
        assert ["SYN" in lines[0], "echo-ok" in lines[1], "after both" in lines[2]] == [True] * 3


def test_the_time_column_keeps_its_width_past_ten_seconds_and_beyond() -> None:
    labels = [elapsed_label(s) for s in (0.5, 2.965, 12.5, 123.456, 999.9, 1000.2, 5999, 7300)]
    assert {len(label) for label in labels} == {9}
    assert labels[:3] == ["  +0.500s", "  +2.965s", " +12.500s"]


async def test_resuming_after_a_pause_draws_what_waited_and_reports_nothing_dropped() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("space")
        await more_lines(session, app, pilot, 150)  # more than one batch draws in a flood
        assert "150 waiting" in str(app.main.packet_pane.border_subtitle)
        await pilot.press("space")
        await settle(app, pilot)
        pane = app.main.packet_pane
        assert "not drawn" not in str(pane.border_subtitle)
        drawn = pane.drawn_text
        assert not any("not drawn" in line for line in drawn)
        assert [line for line in drawn if "line " in line][0].endswith("line 0")
        assert newest_visible(app) and screen_lines(app)[-1].endswith("line 149")
