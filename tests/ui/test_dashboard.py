"""Pilot tests: every key, pane and the diagnosis line, on a FakeSession fed through the sink."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from svcwatch.ui.screens.help import HelpScreen
from svcwatch.ui.screens.main import StoppingScreen
from tests.ui.conftest import ScriptedEditor, make_app, settle, widget_text
from tests.ui.fakes import POD, FakeSession


def chain_text(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.main.chain_pane.query_one("#chain-body", Static).render())


def slice_text(app) -> str:  # type: ignore[no-untyped-def]
    return widget_text(app.main.slice_pane)


def stream(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(app.main.packet_pane.drawn_text)


async def test_start_shows_the_happy_path_in_every_pane() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert app.sub_title == "scenario: Happy path (1)"
        assert "lab test" in app.title
        assert app.main.diagnosis.text.startswith(
            "Healthy: 1 of 1 recent probes echoed via 10.42.0.142:12345"
        )
        assert "iptables-nft" in str(app.main.chain_pane.border_title)
        assert "DNAT 10.42.0.142:12345" in chain_text(app)
        assert "100%" in chain_text(app)
        assert POD[:11] in slice_text(app) and "yes :12345" in slice_text(app)
        assert "[eth0] 192.168.97.2:40001 -> 192.168.97.3:31234 SYN" in stream(app)
        assert "capture-started" in stream(app)
        assert 'bpf="(ip and' in str(app.main.packet_pane.border_title)
        assert app.main.probe_pane.success_rate == (1, 1)


async def test_key_2_wrong_port_shows_rst_refusal_and_the_new_rule() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        assert session.requests == ["wrong-port"]
        assert app.sub_title == "scenario: Wrong port (2)"
        assert app.main.diagnosis.text == (
            "SYN DNATed to 10.42.0.142:12346 answered with RST: nothing listens on port 12346 "
            f"in pod {POD}; clients see 'connection refused'"
        )
        assert "[veth0829e839] 10.42.0.142:12346 -> " in stream(app) and "ACK,RST" in stream(app)
        assert "connection refused" in stream(app)
        assert "DNAT 10.42.0.142:12346  ◀ new" in chain_text(app)
        assert "NO :12346" in slice_text(app)
        assert app.main.probe_pane.success_rate == (1, 2)


async def test_key_3_wrong_ip_explains_the_unanswered_arp() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        assert app.main.diagnosis.text == (
            "ARP who-has 10.42.0.143 unanswered on cni0: no pod has that IP; clients time out"
        )
        assert "arp who-has 10.42.0.143 tell 10.42.0.1" in stream(app)
        assert "i/o timeout" in stream(app)
        assert "no pod has this IP" in slice_text(app)


async def test_key_4_mix_shows_fifty_fifty_shares_and_one_bad_endpoint() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        assert app.main.diagnosis.text.startswith(
            "1 of 2 endpoints is bad: ~50% of connections fail"
        )
        assert app.main.diagnosis.level == "partial"
        assert chain_text(app).count(" 50% ") == 2
        assert "p=0.50000" in chain_text(app)


async def test_pressing_the_active_scenario_key_returns_to_happy() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        assert session.requests == ["wrong-port", "happy"]
        assert app.sub_title == "scenario: Happy path (1)"
        assert app.main.diagnosis.level == "ok"


@pytest.mark.parametrize(
    ("key", "scenario", "diagnosis"),
    [
        ("5", "not-ready", "default/socat has no ready endpoints: kube-proxy's REJECT rule"),
        ("6", "empty", "default/socat has no ready endpoints: kube-proxy's REJECT rule"),
        (
            "7",
            "pod-down",
            "SYN DNATed to 10.42.0.142:12345 answered with RST: nothing listens on port 12345",
        ),
        ("8", "rollout-race", "Healthy: 1 of 1 recent probes"),
    ],
)
async def test_keys_5_to_8_switch_to_the_other_scenarios(
    key: str, scenario: str, diagnosis: str
) -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await settle(app, pilot)
        assert session.requests == [scenario]
        assert app.main.diagnosis.text.startswith(diagnosis)


async def test_space_pauses_and_resumes_the_stream() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        before = list(app.main.packet_pane.drawn_text)
        await pilot.press("space")
        session.notice("while paused")
        await settle(app, pilot)
        assert app.main.packet_pane.drawn_text == before
        assert "paused (1 waiting)" in str(app.main.packet_pane.border_subtitle)
        await pilot.press("space")
        await settle(app, pilot)
        assert app.main.packet_pane.drawn_text[-1].endswith("while paused")
        assert "paused" not in str(app.main.packet_pane.border_subtitle)


async def test_slash_filters_by_kind_and_interface() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        await pilot.press("slash", *"arp", "enter")
        lines = app.main.packet_pane.drawn_text
        assert lines and all("arp who-has" in line for line in lines)
        assert "filter: arp" in str(app.main.packet_pane.border_subtitle)
        await pilot.press("slash", *["backspace"] * 3, *"veth0829e839", "enter")
        assert all("[veth0829e839]" in line for line in app.main.packet_pane.drawn_text)


async def test_c_clears_the_stream_and_probes() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert app.main.packet_pane.drawn_text
        await pilot.press("c")
        assert app.main.packet_pane.drawn_text == []
        assert app.main.probe_pane.success_rate == (0, 0)
        assert app.main.diagnosis.level == "waiting"


async def test_t_cycles_through_the_three_themes() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        assert app.theme == "svcwatch-dark"
        await pilot.press("t")
        assert app.theme == "svcwatch-light"
        await pilot.press("t")
        assert app.theme == "svcwatch-projector"
        await pilot.press("t")
        assert app.theme == "svcwatch-dark"


async def test_question_mark_opens_help_listing_every_key() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = widget_text(app.screen.query_one("#help-keys", Static))
        for word in (
            "Wrong port",
            "Rollout race",
            "Edit slice",
            "Pause",
            "Filter",
            "Clear",
            "Theme",
            "Quit",
        ):
            assert word in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_q_tears_the_lab_down_visibly_then_exits() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        assert isinstance(app.screen, StoppingScreen)
        assert str(app.screen.query_one("#stopping-text", Static).render()) == (
            "leaving the lab (torn down unless kept or still in use)…"
        )
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert session.stopped.is_set()
    assert app.return_code == 0


async def test_e_applies_a_valid_edit() -> None:
    session = FakeSession()
    editor = ScriptedEditor(lambda text: text.replace("port: 12345", "port: 12346"))
    app = make_app(session, editor=editor)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        assert "kind: EndpointSlice" in editor.shown[0]
        assert len(session.applied_texts) == 1
        assert "NO :12346" in slice_text(app)


async def test_e_rejects_an_invalid_edit_and_applies_nothing() -> None:
    session = FakeSession()
    editor = ScriptedEditor(lambda text: text.replace("10.42.0.142", "10.42.0.999"))
    app = make_app(session, editor=editor)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        assert session.applied_texts == []
        errors = [n for n in app._notifications if n.severity == "error"]
        assert (
            errors and "10.42.0.999" in errors[0].message and errors[0].title == "Edit not applied"
        )
        assert "yes :12345" in slice_text(app)


async def test_a_flood_is_summarised_instead_of_drawn() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        session.flood(1_000)
        await settle(app, pilot)
        pane = app.main.packet_pane
        assert pane.not_drawn == 940
        assert "940 packets not drawn" in str(pane.border_subtitle)
        assert any(line.startswith("… 940 packets not drawn") for line in pane.drawn_text)


async def test_a_session_that_cannot_start_is_reported_not_fatal() -> None:
    app = make_app(FakeSession(fail_start="lab needs root: run with sudo"))
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert app.main.diagnosis.text == "Could not start: lab needs root: run with sudo"
        assert app.start_error == "lab needs root: run with sudo"
        assert app.is_running


async def test_palette_runs_a_scenario_action() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"Wrong IP")
        await pilot.pause(0.3)  # the palette searches asynchronously
        await pilot.press("enter")
        await settle(app, pilot)
        assert session.requests == ["wrong-ip"]


async def test_80x24_stacks_all_four_panes() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.main.has_class("-narrow")
        panes = [
            app.main.chain_pane,
            app.main.slice_pane,
            app.main.packet_pane,
            app.main.probe_pane,
        ]
        assert all(p.region.height >= 3 and p.region.width == 80 for p in panes)
        tops = [p.region.y for p in panes]
        assert tops[0] < tops[1] < tops[3] < tops[2]


async def test_the_last_sync_lag_is_shown_under_the_chain() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        subtitle = str(app.main.chain_pane.border_subtitle)
        rv = session.slice.resource_version
        assert subtitle.startswith(f"rv={rv} → rules +31 ms → first packet +")
        assert subtitle.endswith(" ms")
