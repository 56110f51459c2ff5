"""HeaderBar: one line that always shows the scenario and the replay state, whatever the width.

Textual's Header centres "title — sub-title" and cuts the end, so at 80 columns a replay's long
title ("replay of lab demo (node 192.168.97.3) · demo.svcrec.gz, recorded …") hid the scenario
and "replay ⏸ paused". Here the status (scenario, replay clock, a stale watch) is laid down first
and the title gets what is left, elided in the middle; when even the status is too wide its
words are shortened before anything is cut.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import Static

ICON = "◆ "
SEPARATOR = " · "


def elide_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells, its middle replaced by "…" when it does not fit."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def _short_status(status: str) -> str:
    """The same facts in fewer cells: "Wrong IP (3) · ⏸ 1x" for "scenario: … · replay ⏸ …"."""
    return (
        status.replace("scenario: ", "")
        .replace("replay ⏸ paused at ", "replay ⏸ ")
        .replace("watch stale for ", "stale ")
    )


def fit_header(title: str, status: str, width: int) -> str:
    """The header line for `width` cells: the status whole (shortened if it must be), then as
    much of the title as fits before it."""
    width = max(width - 2, 1)  # one cell of padding each side
    full = f"{ICON}{title}{SEPARATOR}{status}" if status else f"{ICON}{title}"
    if cell_len(full) <= width or not status:
        return elide_middle(full, width)
    for shown in (status, _short_status(status)):
        room = width - cell_len(ICON) - cell_len(SEPARATOR) - cell_len(shown)
        if room >= 12:
            return f"{ICON}{elide_middle(title, room)}{SEPARATOR}{shown}"
    return elide_middle(f"{ICON}{_short_status(status)}", width)


class HeaderBar(Static):
    """The app's title and sub-title (scenario · replay state), fitted to the width."""

    DEFAULT_CSS = """
    HeaderBar {
        dock: top;
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
        text-style: bold;
    }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "title", lambda _value: self.refit())
        self.watch(self.app, "sub_title", lambda _value: self.refit())

    def on_resize(self) -> None:
        self.refit()

    def refit(self) -> None:
        self.update(fit_header(self.app.title, self.app.sub_title, self.size.width or 80))
