"""Habits users bring from k9s and posting: ctrl+c quits, and ~/.config/svcwatch/keymap.yaml
rebinds any action by its id (a bad file is one warning and the default keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from svcwatch.ui.screens.help import HelpScreen
from tests.ui.conftest import make_app, settle, widget_text
from tests.ui.fakes import FakeSession


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SVCWATCH_CONFIG_DIR", str(tmp_path))
    return tmp_path


async def test_ctrl_c_quits_the_dashboard_as_q_does(config: Path) -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+c")
        await settle(app, pilot)
        assert session.stopped.is_set()
    assert app.return_code in (0, None)


async def test_a_keymap_file_rebinds_actions_by_id_and_help_shows_the_new_keys(
    config: Path,
) -> None:
    (config / "keymap.yaml").write_text("scenario-wrong-port: w\nhelp: f1\n")
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")  # the default key no longer switches
        await settle(app, pilot)
        assert app.scenario == "happy"
        await pilot.press("w")
        await settle(app, pilot)
        assert app.scenario == "wrong-port"
        await pilot.press("f1")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        help_text = widget_text(app.screen.query_one("#help-keys"))
        assert any(line.split()[:2] == ["w", "Wrong"] for line in help_text.splitlines())


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"scenario-wrong-prt: w\n", "unknown action id 'scenario-wrong-prt'"),
        (b"quit: ''\n", "quit: '' is not a key name"),
        (b"quit: [q\n", "not valid YAML"),
        (b"- quit\n", "expected a mapping"),
        (b"quit: \xff\n", "not UTF-8 text"),
    ],
)
async def test_a_bad_keymap_file_is_one_warning_and_the_default_keys(
    config: Path, content: bytes, words: str
) -> None:
    (config / "keymap.yaml").write_bytes(content)
    app = make_app(FakeSession())
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        warnings = [n for n in app._notifications if n.title == "Keymap not loaded"]
        assert len(warnings) == 1 and words in warnings[0].message, warnings
        assert "\n" not in warnings[0].message and "using the default keys" in warnings[0].message
        await pilot.press("2")
        await settle(app, pilot)
        assert app.scenario == "wrong-port"
