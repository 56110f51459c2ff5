"""Theme files (YAML) -> Textual `Theme`s, validated, with failures collected instead of raised.

A theme file names Textual's base colours plus svcwatch's own roles (`probe-ok`, `rule-changed`,
`iface-1`..`iface-6`, ...), which `svcwatch.tcss` uses as `$variables`. Bundled themes come from
`package_data_dir("themes")` (the wheel's `svcwatch/_themes`, else the checkout's `themes/`), user
themes from `user_themes_dir()`. A broken file must never stop a talk: it is reported and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from textual.color import Color, ColorParseError
from textual.theme import Theme

from svcwatch.locations import package_data_dir, user_themes_dir

if TYPE_CHECKING:
    from textual.app import App

DEFAULT_THEME = "svcwatch-dark"
BASE_COLORS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "warning",
    "error",
    "success",
    "boost",
)

# svcwatch's roles and their fallbacks (used when a theme leaves one out).
ROLE_DEFAULTS: dict[str, str] = {
    "probe-ok": "#4EBF71",
    "probe-fail": "#E5534B",
    "endpoint-ready": "#4EBF71",
    "endpoint-terminating": "#D29922",
    "endpoint-bad": "#E5534B",
    "rule-jump": "#6CB6FF",
    "rule-changed": "#F0B72F",
    "counter": "#DCBDFB",
    "stream-dim": "#768390",
    "iface-1": "#6CB6FF",
    "iface-2": "#4EBF71",
    "iface-3": "#F0B72F",
    "iface-4": "#DCBDFB",
    "iface-5": "#F69D50",
    "iface-6": "#96D0FF",
}


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file and the field."""


@dataclass(slots=True)
class ThemeLoadResult:
    """Themes that loaded, in load order, and one line per file that did not."""

    themes: list[Theme] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """svcwatch's themes (bundled, then user), in cycling order, without duplicates."""
        return list(dict.fromkeys(t.name for t in self.themes))


def _color(value: Any, where: str) -> str:
    try:
        Color.parse(str(value))
    except ColorParseError:
        raise ThemeFileError(f"{where}: {value!r} is not a colour") from None
    return str(value)


def theme_from_mapping(data: Any, source: str) -> Theme:
    """Validate one theme's parsed YAML and build the Textual Theme."""
    if not isinstance(data, dict):
        raise ThemeFileError(f"{source}: expected a mapping with name, primary, ...")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f"{source}: 'name' must be a non-empty string")
    if "primary" not in data:
        raise ThemeFileError(f"{source}: 'primary' is required")
    unknown = set(data) - {"name", "dark", "variables", *BASE_COLORS}
    if unknown:
        raise ThemeFileError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    colors: dict[str, Any] = {
        k: _color(data[k], f"{source}: {k}") for k in BASE_COLORS if data.get(k) is not None
    }
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{source}: 'dark' must be true or false")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ThemeFileError(f"{source}: 'variables' must be a mapping")
    checked = {str(k): _color(v, f"{source}: variables.{k}") for k, v in variables.items()}
    return Theme(name=name.strip(), dark=dark, variables=checked, **colors)


def load_theme_file(path: Path) -> Theme:
    """One YAML file -> Theme; raises ThemeFileError naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ThemeFileError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    return theme_from_mapping(data, str(path))


def load_themes(directories: list[Path]) -> ThemeLoadResult:
    """Every `*.yaml`/`*.yml` in `directories` (missing ones are fine), collecting failures."""
    result = ThemeLoadResult()
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                result.themes.append(load_theme_file(path))
            except ThemeFileError as exc:
                result.failures.append(str(exc))
    return result


def default_theme_dirs() -> list[Path]:
    """Bundled themes first, then the user's (a user theme may replace a bundled one by name)."""
    return [package_data_dir("themes"), user_themes_dir()]


class ThemeChoice:
    """The themes an app offers: loaded at mount (failures become warnings), cycled by `t`."""

    def __init__(self, requested: str | None, dirs: list[Path] | None = None) -> None:
        self.requested = requested
        self.dirs = dirs if dirs is not None else default_theme_dirs()
        self.result = ThemeLoadResult()

    @property
    def names(self) -> list[str]:
        return self.result.names

    def load(self, app: App[None]) -> None:
        """Register every theme found, warn about each broken one, and pick the requested one."""
        self.result = load_themes(self.dirs)
        for theme in self.result.themes:
            app.register_theme(theme)
        for failure in self.result.failures:
            app.notify(failure, title="Theme not loaded", severity="warning", timeout=8)
        wanted = self.requested or DEFAULT_THEME
        if wanted not in app.available_themes:
            app.notify(
                f"unknown theme {wanted!r}; known: {', '.join(self.names)}",
                severity="warning",
                timeout=8,
            )
            wanted = DEFAULT_THEME
        if wanted in app.available_themes:
            app.theme = wanted

    def next(self, app: App[None]) -> None:
        """Switch `app` to the next theme, and say which."""
        names = self.names or [app.theme]
        index = names.index(app.theme) if app.theme in names else -1
        app.theme = names[(index + 1) % len(names)]
        app.notify(f"theme: {app.theme}", timeout=2)
