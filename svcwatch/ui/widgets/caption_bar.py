"""CaptionBar: one or two plain sentences telling an audience what the current scenario shows.

In a talk the panes are dense; the caption says in words what changed in the slice, what the
kernel did and what the client saw. Captions come from the scenarios themselves
(`Scenario.caption`) or from a talk script's scene, which may also say where in the talk we are.
The bar is shown only with `--captions` or `--script`.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from svcwatch.model.scenario import SCENARIOS

PRESTOP_CAPTION = (
    "The same rollout with a preStop delay: the new pod starts and enters the slice first, the old "
    "pod keeps serving until kube-proxy has moved the rule, and only then goes -- no failed probe."
)


def scenario_caption(name: str | None) -> tuple[str, str]:
    """(title, caption) for a scenario name; an edited slice has no scenario and says so."""
    scenario = SCENARIOS.get(name or "")
    if scenario is None:
        return "Edited slice", "The EndpointSlice was edited by hand; the panes show what it does."
    return scenario.title, scenario.caption


class CaptionBar(Static):
    """The presenter's caption: `[scene 2/7 ·] Title: sentence.`"""

    DEFAULT_CSS = """
    CaptionBar {
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $boost;
        color: $text;
        border-top: hkey $primary;
    }
    """

    def __init__(self, *, id: str | None = "caption-bar") -> None:  # noqa: A002 -- Textual's name
        super().__init__("", id=id)
        self.title = ""
        self.caption = ""
        self.position: str | None = None

    def show(self, title: str, caption: str, position: str | None = None) -> None:
        """Replace the caption; `position` ("scene 2/7") is shown first when a script runs."""
        self.title, self.caption, self.position = title, caption, position
        line = Text()
        if position:
            line.append(f"{position} · ", style="dim")
        line.append(f"{title}: ", style="bold")
        line.append(caption)
        self.update(line)

    def show_scenario(self, name: str | None, position: str | None = None) -> None:
        """The scenario's own caption."""
        title, caption = scenario_caption(name)
        self.show(title, caption, position)

    @property
    def text(self) -> str:
        """The caption as the audience reads it (no styling)."""
        prefix = f"{self.position} · " if self.position else ""
        return f"{prefix}{self.title}: {self.caption}"
