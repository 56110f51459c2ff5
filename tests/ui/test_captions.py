"""Presenter captions (`--captions`) and the preStop replay key, on a FakeSession with the pilot."""

from __future__ import annotations

import pytest

from svcwatch.model.scenario import SCENARIOS
from svcwatch.session.capabilities import Capabilities
from svcwatch.ui.widgets.caption_bar import PRESTOP_CAPTION, CaptionBar
from tests.ui.conftest import make_app, settle, widget_text
from tests.ui.fakes import FakeSession


class PrestopSession(FakeSession):
    """A lab-like fake that can replay the rollout with a preStop delay (it records the call)."""

    def __init__(self) -> None:
        super().__init__()
        self.prestop_replays = 0

    def capabilities(self) -> Capabilities:
        return Capabilities(scenarios=self, slice_editing=self, rollout_replay=self)

    def replay_rollout_with_prestop(self) -> None:
        self.prestop_replays += 1
        self.notice("rollout with a preStop delay")


async def test_no_caption_bar_unless_asked_for() -> None:
    app = make_app()
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        assert not app.main.query(CaptionBar)


@pytest.mark.parametrize("key", ["2", "3", "4", "5", "6", "7", "8"])
async def test_each_scenario_key_shows_its_caption(key: str) -> None:
    scenario = next(s for s in SCENARIOS.values() if s.key == key)
    app = make_app(captions=True)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        bar = app.main.query_one(CaptionBar)
        assert bar.text == f"Happy path: {SCENARIOS['happy'].caption}"
        await pilot.press(key)
        await settle(app, pilot)
        assert bar.text == f"{scenario.title}: {scenario.caption}"
        # What the audience reads on screen, wrapped to the bar's width.
        shown = " ".join(widget_text(bar).split())
        assert f"{scenario.title}: {scenario.caption[:40]}" in shown


async def test_the_caption_fits_an_80x24_terminal_with_the_panes() -> None:
    app = make_app(captions=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        bar = app.main.query_one(CaptionBar)
        assert 1 <= bar.region.height <= 4
        assert app.main.packet_pane.region.height > 0 and app.main.chain_pane.region.height > 0


async def test_p_replays_the_rollout_with_prestop_and_says_so() -> None:
    session = PrestopSession()
    app = make_app(session, captions=True)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("8")
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert session.prestop_replays == 1
        assert app.main.query_one(CaptionBar).text == f"Rollout with preStop: {PRESTOP_CAPTION}"
        assert "rollout with a preStop delay" in "\n".join(app.main.packet_pane.drawn_text)
        await pilot.press("2")  # the next scenario brings its own caption back
        await settle(app, pilot)
        assert app.main.query_one(CaptionBar).text.startswith("Wrong port: ")


async def test_p_on_a_session_without_a_lab_only_warns() -> None:
    session = FakeSession()
    app = make_app(session, captions=True)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert [n.message for n in app._notifications] == ["the preStop replay needs the lab"]
        assert session.requests == []
