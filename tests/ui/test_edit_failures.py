"""`e` when the editor fails: one line on screen, nothing applied, the dashboard keeps running.

The editor is a real program here ($EDITOR set to `false`, a missing command, a script that exits
1 as `:cq` does, one that saves Latin-1), run by the same code the dashboard runs for `e`. An
invalid edit reopens the editor with the error on top, as `kubectl edit` does.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from svcwatch.ui.slice_editor import ERROR_PREFIX, external_editor
from tests.ui.conftest import ScriptedEditor, make_app, settle
from tests.ui.fakes import FakeSession


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def editors(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """$EDITOR values a user may have, each with the words its one line must contain."""
    return {
        "false": ("false", "the editor failed"),
        "missing": (str(tmp_path / "no-such-editor"), "the editor failed"),
        "quit with :cq": (script(tmp_path, "cq", 'echo "# edited" >> "$1"; exit 1'), "failed"),
        "latin-1": (
            script(tmp_path, "latin1", "printf 'caf\\351: 1\\n' >> \"$1\""),
            "not UTF-8 text",
        ),
    }


@pytest.mark.parametrize("kind", ["false", "missing", "quit with :cq", "latin-1"])
async def test_a_failing_editor_is_one_line_nothing_applied_and_the_dashboard_goes_on(
    editors: dict[str, tuple[str, str]], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    command, words = editors[kind]
    monkeypatch.setenv("EDITOR", command)
    monkeypatch.delenv("VISUAL", raising=False)
    session = FakeSession()
    app = make_app(session, editor=external_editor)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and words in errors[0].message, errors
        assert "\n" not in errors[0].message and "Traceback" not in errors[0].message
        assert session.applied_texts == []
        await pilot.press("2")  # still running: keys still work
        await settle(app, pilot)
        assert app.scenario == "wrong-port"


async def test_an_invalid_edit_reopens_the_editor_with_the_error_on_top() -> None:
    def edit(text: str) -> str:
        if ERROR_PREFIX in text:  # second round: the user reads the error and fixes the edit
            return text.replace("10.42.0.999", "10.42.0.150")
        return text.replace("10.42.0.142", "10.42.0.999")

    session = FakeSession()
    editor = ScriptedEditor(edit)
    app = make_app(session, editor=editor)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        assert len(editor.shown) == 2
        first_line = editor.shown[1].splitlines()[0]
        assert first_line == f"{ERROR_PREFIX}the edit was not applied:"
        assert "10.42.0.999" in editor.shown[1].split("apiVersion")[0]
        assert len(session.applied_texts) == 1 and ERROR_PREFIX not in session.applied_texts[0]
        assert "10.42.0.150" in session.applied_texts[0]
