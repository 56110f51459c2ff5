"""SVG snapshots: the blog post's scenarios, the help screen, each theme and the 80x24 layout.

Deterministic by construction: the FakeSession's timestamps and the app clock are frozen, timers
that re-read counters never fire during a test, and no widget with a blinking cursor is shown.
Update with `pytest tests/ui/test_snapshots.py --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import make_app, settle

SIZE = (120, 40)


def after(*keys: str) -> Any:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        await settle(app, pilot)  # type: ignore[arg-type]
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)  # type: ignore[arg-type]
        app.clear_notifications()
        await pilot.pause()

    return run_before


class TestScenarios:
    @pytest.mark.parametrize(
        "key", ["1", "2", "3", "4"], ids=["happy", "wrong-port", "wrong-ip", "mixed"]
    )
    def test_scenario(self, snap_compare: Any, key: str) -> None:
        keys = () if key == "1" else (key,)
        assert snap_compare(make_app(), run_before=after(*keys), terminal_size=SIZE)


class TestScreens:
    def test_help(self, snap_compare: Any) -> None:
        assert snap_compare(make_app(), run_before=after("question_mark"), terminal_size=SIZE)

    def test_80x24(self, snap_compare: Any) -> None:
        assert snap_compare(make_app(), run_before=after("2"), terminal_size=(80, 24))


class TestThemes:
    @pytest.mark.parametrize("theme", ["svcwatch-dark", "svcwatch-light", "svcwatch-projector"])
    def test_theme(self, snap_compare: Any, theme: str) -> None:
        assert snap_compare(make_app(theme_name=theme), run_before=after("4"), terminal_size=SIZE)


class TestSmallScreen:
    """80x24 (a projector's usual size) in the projector theme: the evidence of each scenario
    stays on screen (the chain's KUBE-SVC -> KUBE-SEP -> DNAT paths, flags of packet lines)."""

    @pytest.mark.parametrize(
        "key", ["1", "2", "3", "4"], ids=["happy", "wrong-port", "wrong-ip", "mixed"]
    )
    def test_scenario_80x24_projector(self, snap_compare: Any, key: str) -> None:
        keys = () if key == "1" else (key,)
        app = make_app(theme_name="svcwatch-projector")
        assert snap_compare(app, run_before=after(*keys), terminal_size=(80, 24))
