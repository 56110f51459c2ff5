"""Theme files: the bundled three load with every role; broken files are reported, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from svcwatch.locations import package_data_dir
from svcwatch.ui.themes import ROLE_DEFAULTS, ThemeFileError, load_theme_file, load_themes
from tests.ui.conftest import make_app, settle

BUNDLED = ["svcwatch-dark", "svcwatch-light", "svcwatch-projector"]


def test_bundled_themes_load_with_every_role() -> None:
    result = load_themes([package_data_dir("themes")])
    assert result.failures == []
    assert [t.name for t in result.themes] == BUNDLED
    for theme in result.themes:
        assert set(ROLE_DEFAULTS) <= set(theme.variables), theme.name
    assert [t.dark for t in result.themes] == [True, False, True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nprimary: notacolour\n", "primary: 'notacolour' is not a colour"),
        ("primary: '#ffffff'\n", "'name' must be a non-empty string"),
        ("name: x\n", "'primary' is required"),
        ("name: x\nprimary: '#fff'\nsparkle: 1\n", "unknown keys sparkle"),
        (
            "name: x\nprimary: '#fff'\nvariables: {probe-ok: nope}\n",
            "variables.probe-ok: 'nope' is not a colour",
        ),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_broken_theme_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ThemeFileError, match=None) as info:
        load_theme_file(path)
    assert message in str(info.value) and str(path) in str(info.value)


async def test_user_themes_load_and_broken_ones_are_notified(user_themes: Path) -> None:
    (user_themes / "talk.yaml").write_text(
        "name: my-talk\nprimary: '#ff00aa'\nbackground: '#000000'\n"
    )
    (user_themes / "broken.yaml").write_text("name: broken\nprimary: 12\n")
    app = make_app(theme_dirs=None, theme_name="my-talk")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.theme == "my-talk"
        assert app.themes.names == [*BUNDLED, "my-talk"]
        warnings = [n for n in app._notifications if n.title == "Theme not loaded"]
        assert len(warnings) == 1 and "broken.yaml" in warnings[0].message
        assert app.main.diagnosis.level == "ok"  # the dashboard still runs


async def test_unknown_theme_name_falls_back_with_a_warning() -> None:
    app = make_app(theme_name="nope")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.theme == "svcwatch-dark"
        assert any("unknown theme 'nope'" in n.message for n in app._notifications)
