"""Talk scripts: the loader's one-line errors, the shipped example, and stepping scenes by arrow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from svcwatch.model.errors import InputError
from svcwatch.model.scenario import SCENARIOS
from svcwatch.talk.script import Scene, TalkScript, load_script, parse_script
from svcwatch.ui.widgets.caption_bar import CaptionBar
from tests.ui.conftest import make_app, settle
from tests.ui.fakes import FakeSession

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "talk.yaml"


def talk(*scenes: Scene) -> TalkScript:
    return TalkScript("talk.yaml", scenes)


def test_scenes_with_and_without_captions_and_pauses() -> None:
    script = parse_script(
        "title: Demo\nscenes:\n  - scenario: happy\n"
        "    caption: |\n      All good.\n      Really.\n"
        "  - wrong-port\n  - {scenario: wrong-ip, pause: 2.5}\n",
        "talk.yaml",
    )
    assert script.title == "Demo"
    assert script.scenes == (
        Scene("happy", "All good. Really."),
        Scene("wrong-port", SCENARIOS["wrong-port"].caption),
        Scene("wrong-ip", SCENARIOS["wrong-ip"].caption, 2.5),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- scenario: wrong-pot\n", "talk.yaml: scenes[0].scenario: unknown scenario 'wrong-pot'"),
        (
            "- happy\n- {scenario: mixed, pause: -1}\n",
            "talk.yaml: scenes[1].pause: expected seconds",
        ),
        ("- {scenario: happy, caption: 3}\n", "talk.yaml: scenes[0].caption: expected text, got 3"),
        ("- {scenario: happy, wait: 3}\n", "talk.yaml: scenes[0]: unknown key 'wait'"),
        ("scenes: []\n", "talk.yaml: scenes: expected a non-empty list of scenes"),
        ("title: x\nscene: []\n", "talk.yaml: unknown key 'scene'"),
        ("- happy\n  - : [\n", "talk.yaml: not valid YAML at line"),
    ],
)
def test_bad_scripts_are_one_line_errors_naming_file_and_field(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_script(text, "talk.yaml")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_shipped_talk_tells_the_seeds_story() -> None:
    script = load_script(EXAMPLE)
    names = [scene.scenario for scene in script.scenes]
    assert names[:4] == ["happy", "wrong-port", "wrong-ip", "mixed"]
    assert "rollout-race" in names
    assert all(len(scene.caption) < 400 for scene in script.scenes)


def test_the_cli_rejects_a_bad_script_before_building_anything(tmp_path: Path) -> None:
    bad = tmp_path / "talk.yaml"
    bad.write_text("scenes:\n  - scenario: happy\n  - scenario: nope\n")
    done = subprocess.run(
        [sys.executable, "-m", "svcwatch", "--script", str(bad), "--name", "tnever"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SVCWATCH_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"svcwatch: error: {bad}: scenes[1].scenario: unknown scenario 'nope' "
        f"(known: {', '.join(SCENARIOS)})"
    ]
    assert not (tmp_path / "state").exists()


async def test_right_arrow_steps_through_scenes_and_left_goes_back() -> None:
    session = FakeSession()
    script = talk(Scene("wrong-port", "Port 12346 now."), Scene("wrong-ip", "An IP nobody has."))
    app = make_app(session, script=script)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        bar = app.main.query_one(CaptionBar)
        assert bar.text == f"Happy path: {SCENARIOS['happy'].caption}"
        await pilot.press("right")
        await settle(app, pilot)
        assert session.requests == ["wrong-port"]
        assert bar.text == "scene 1/2 · Wrong port: Port 12346 now."
        assert "answered with RST" in app.main.diagnosis.text
        await pilot.press("right")
        await settle(app, pilot)
        assert bar.text == "scene 2/2 · Wrong IP: An IP nobody has."
        await pilot.press("right")  # past the end: nothing changes
        await settle(app, pilot)
        assert session.requests == ["wrong-port", "wrong-ip"]
        await pilot.press("left")
        await settle(app, pilot)
        assert session.requests == ["wrong-port", "wrong-ip", "wrong-port"]
        assert bar.text == "scene 1/2 · Wrong port: Port 12346 now."


async def test_a_scene_with_a_pause_moves_on_by_itself() -> None:
    session = FakeSession()
    app = make_app(session, script=talk(Scene("mixed", "Half.", pause=0.05), Scene("happy", "Ok.")))
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("right")
        await pilot.pause(0.3)  # longer than the scene's pause: its timer has fired
        await settle(app, pilot)
        assert session.requests == ["mixed", "happy"]
        assert app.main.query_one(CaptionBar).text == "scene 2/2 · Happy path: Ok."


async def test_without_a_script_the_arrows_are_left_to_the_stream() -> None:
    session = FakeSession()
    app = make_app(session)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.press("right", "left")
        await settle(app, pilot)
        assert session.requests == []
        assert not app.main.query(CaptionBar)
