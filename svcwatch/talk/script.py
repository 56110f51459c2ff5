"""A talk script: the scenes a presenter steps through with the right-arrow key.

A talk is a story told in a fixed order (the happy path, then each break), and the audience reads
a caption while the packets flow. The script is a small YAML file so a presenter can rehearse and
edit it without touching code:

    title: Breaking a Kubernetes Service        # optional
    scenes:
      - scenario: happy                         # a name from svcwatch.model.scenario.SCENARIOS
        caption: The slice points at the pod.   # optional: the scenario's own caption otherwise
        pause: 5                                 # optional seconds: step on by itself after it

A top-level list of scenes is accepted too. Every problem is one InputError naming the file and
the field (`talk.yaml: scenes[2].scenario: unknown scenario 'wrong-pot' (known: ...)`). This module
is pure (no Textual), so the dashboard and the tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svcwatch.model.errors import InputError
from svcwatch.model.scenario import SCENARIOS

SCENE_KEYS = ("scenario", "caption", "pause")


@dataclass(frozen=True, slots=True)
class Scene:
    """One step of a talk: which scenario to switch to, what to tell the audience, how long."""

    scenario: str
    caption: str
    pause: float | None = None  # seconds before the next scene starts by itself; None: wait


@dataclass(frozen=True, slots=True)
class TalkScript:
    """The scenes of a talk, in order, and where they came from."""

    source: str
    scenes: tuple[Scene, ...]
    title: str | None = None

    def __len__(self) -> int:
        return len(self.scenes)


def load_script(path: str | Path) -> TalkScript:
    """Read and validate a talk script; InputError (one line, naming file and field) if bad."""
    from svcwatch.textfile import read_text_file

    return parse_script(read_text_file(path, field="--script"), str(path))


def parse_script(text: str, source: str) -> TalkScript:
    """Parse a talk script's YAML text (see the module docstring for the format)."""
    import yaml  # PyYAML is a runtime dependency; imported here so the UI imports stay lean

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"not valid YAML{where}", source=source) from None
    title: str | None = None
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"title", "scenes"})
        if unknown:
            raise InputError(f"unknown key {unknown[0]!r} (expected title, scenes)", source=source)
        title = _optional_text(data.get("title"), source, "title")
        data = data.get("scenes")
    if not isinstance(data, list) or not data:
        raise InputError("expected a non-empty list of scenes", source=source, field="scenes")
    scenes = tuple(_scene(item, source, f"scenes[{i}]") for i, item in enumerate(data))
    return TalkScript(source, scenes, title)


def _scene(item: Any, source: str, field: str) -> Scene:
    if isinstance(item, str):  # `- wrong-port` is shorthand for a scene with its own caption
        item = {"scenario": item}
    if not isinstance(item, dict):
        raise InputError(
            "expected a mapping with scenario, caption, pause", source=source, field=field
        )
    unknown = sorted(set(item) - set(SCENE_KEYS))
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r} (expected {', '.join(SCENE_KEYS)})",
            source=source,
            field=field,
        )
    name = item.get("scenario")
    if not isinstance(name, str) or name not in SCENARIOS:
        raise InputError(
            f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})",
            source=source,
            field=f"{field}.scenario",
        )
    caption = _optional_text(item.get("caption"), source, f"{field}.caption")
    return Scene(name, caption or SCENARIOS[name].caption, _pause(item.get("pause"), source, field))


def _optional_text(value: Any, source: str, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected text, got {value!r}", source=source, field=field)
    return " ".join(value.split())  # YAML folded/literal blocks become one caption line


def _pause(value: Any, source: str, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise InputError(
            f"expected seconds between 0 and 3600, got {value!r}",
            source=source,
            field=f"{field}.pause",
        )
    return float(value)


class ScenePlayer:
    """Where the presenter is in a script: the current scene, next and back."""

    def __init__(self, script: TalkScript) -> None:
        self.script = script
        self.index = -1  # before the first scene: the dashboard starts as the flags say

    @property
    def current(self) -> Scene | None:
        return self.script.scenes[self.index] if self.index >= 0 else None

    @property
    def position(self) -> str:
        """`scene 2/7`, for the caption bar."""
        return f"scene {self.index + 1}/{len(self.script)}"

    def next(self) -> Scene | None:
        """Advance; None (and no move) at the last scene."""
        if self.index + 1 >= len(self.script):
            return None
        self.index += 1
        return self.script.scenes[self.index]

    def previous(self) -> Scene | None:
        """Go back one scene; None (and no move) at the first."""
        if self.index <= 0:
            return None
        self.index -= 1
        return self.script.scenes[self.index]
