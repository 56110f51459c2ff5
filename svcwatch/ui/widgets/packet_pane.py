"""PacketPane: the live per-interface stream in the seed's words, one colour per interface.

Textual's RichLog renders each line synchronously and tops out near 1.8k lines/s here
(docs/design.md), so `StreamView` is a ScrollView that renders only the visible rows from a
bounded ring. Each batch draws at most `MAX_LINES_PER_BATCH` lines; beyond that (a flood) the pane
writes one "N packets not drawn" line instead of freezing. Pausing keeps a bounded backlog.
Every packet received (drawn or not) is also kept, raw bytes included, in a bounded ring of
PacketEvents: that is what `w` writes to a pcapng file.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from svcwatch.model.events import CaptureStarted, Event, Notice, PacketEvent, ProbeEvent

RING_SIZE = 5_000  # lines kept for scrolling back and re-filtering
MAX_LINES_PER_BATCH = 60  # at ~10 batches/s: 600 lines/s, already beyond reading speed
PACKETS_KEPT = 20_000  # PacketEvents kept for `w` (pcapng): ~2 s of a 10k/s flood, a few MB
IFACE_COLOURS = 6


def iface_colour(iface: str) -> int:
    """1..IFACE_COLOURS: eth0 and cni0 fixed, each veth by a stable hash (same colour every run)."""
    fixed = {"eth0": 1, "cni0": 2}
    if iface in fixed:
        return fixed[iface]
    return 3 + zlib.crc32(iface.encode()) % (IFACE_COLOURS - 2)


@dataclass(frozen=True, slots=True)
class StreamLine:
    """One drawn line: its styled pieces and the words a filter matches on."""

    serial: int
    pieces: tuple[tuple[str, str], ...]  # (text, component class or "")
    haystack: str

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.pieces)


class StreamView(ScrollView, can_focus=True):
    """Renders visible rows of a bounded list of StreamLines; newest at the bottom."""

    COMPONENT_CLASSES = {
        "stream--time",
        "stream--tag",
        "stream--kind",
        "stream--ok",
        "stream--fail",
        "stream--skipped",
        "stream--dim",
        *(f"stream--iface-{i}" for i in range(1, IFACE_COLOURS + 1)),
    }

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: deque[StreamLine] = deque(maxlen=RING_SIZE)
        self._width = 0
        self._strips: LRUCache[int, Strip] = LRUCache(1024)
        self.follow = True  # stick to the newest line until the user scrolls up
        self._clamping = False

    def set_lines(self, lines: list[StreamLine]) -> None:
        self.follow = True
        self.lines = deque(lines, maxlen=RING_SIZE)
        self._width = max((cell_len(line.plain) for line in self.lines), default=0)
        self._strips.clear()
        self._resize_and_follow()

    def add_lines(self, lines: list[StreamLine]) -> None:
        self.lines.extend(lines)
        self._width = max(self._width, *(cell_len(line.plain) for line in lines))
        self._resize_and_follow()

    def _resize_and_follow(self) -> None:
        self._clamping = True  # a shrinking view clamps scroll_y: that is not the user scrolling
        self.virtual_size = Size(self._width, len(self.lines))
        self._clamping = False
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value < old_value and not self._clamping:
            self.follow = False  # the user scrolled back: stop jumping to the newest line
        elif self.is_vertical_scroll_end:
            self.follow = True

    def on_resize(self) -> None:
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        base = self.rich_style
        width = self.size.width
        if index >= len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[index]
        strip = self._strips.get(line.serial)
        if strip is None:
            text = Text(no_wrap=True)
            for piece, role in line.pieces:
                text.append(
                    piece, self.get_component_rich_style(role, partial=True) if role else Style()
                )
            text.stylize_before(base)
            strip = Strip(text.render(self.app.console), cell_len(text.plain))
            self._strips[line.serial] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, index)


class PacketPane(Vertical):
    """The stream pane: a StreamView, a hidden filter input, pause and not-drawn accounting."""

    paused: reactive[bool] = reactive(False, init=False)
    """Space toggles it: new lines wait in a bounded backlog instead of being drawn."""

    filter_text: reactive[str] = reactive("", init=False)
    """Whitespace-separated words; a line is shown when every word is in its iface/address/kind."""

    def __init__(self, t0: float, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.t0 = t0
        self.ring: deque[StreamLine] = deque(maxlen=RING_SIZE)  # every line, filtered or not
        self.backlog: deque[StreamLine] = deque(maxlen=RING_SIZE)  # received while paused
        self.packets: deque[PacketEvent] = deque(maxlen=PACKETS_KEPT)  # for `w`, raw included
        self.not_drawn = 0  # packets never drawn since the last clear
        self.bpf = ""
        self._serial = 0

    def compose(self) -> ComposeResult:
        yield StreamView(id="stream")
        yield Input(
            placeholder="filter: interface, address or kind (Enter to apply, Esc to close)",
            id="stream-filter",
            classes="-hidden",
        )

    def on_mount(self) -> None:
        self._update_titles()

    # --- feeding -----------------------------------------------------------------------------

    def add_events(self, events: list[Event], dropped: int = 0) -> None:
        """Render a batch; draw at most MAX_LINES_PER_BATCH of it, count the rest.

        Lines are built newest-first and only until the cap is reached: in a flood, formatting
        every packet would cost more than drawing, so the rest are only counted.
        """
        for event in events:
            if isinstance(event, CaptureStarted):
                self.bpf = event.bpf
        shown = [
            e for e in events if isinstance(e, (PacketEvent, ProbeEvent, CaptureStarted, Notice))
        ]
        self.packets.extend(e for e in shown if isinstance(e, PacketEvent))
        if self.paused:
            lines, examined = self._newest_lines(
                shown, self.backlog.maxlen or RING_SIZE, matching=False
            )
            self.ring.extend(lines)
            self.backlog.extend(lines)
            self.not_drawn += dropped + len(shown) - examined
            self._update_titles()
            return
        lines, examined = self._newest_lines(shown, MAX_LINES_PER_BATCH, matching=True)
        self.ring.extend(lines)
        self._draw(lines, dropped + len(shown) - examined)

    def _newest_lines(
        self, events: Sequence[Event], limit: int, matching: bool
    ) -> tuple[list[StreamLine], int]:
        """Up to `limit` lines from the newest events, oldest first, and how many were examined."""
        out: list[StreamLine] = []
        examined = 0
        for event in reversed(events):
            if len(out) >= limit:
                break
            examined += 1
            line = self._line(event)
            if not matching or self._matches(line):
                out.append(line)
        out.reverse()
        return out, examined

    def _draw(self, lines: list[StreamLine], skipped: int) -> None:
        if skipped:
            self.not_drawn += skipped
            lines = [self._skipped_line(skipped), *lines]
        if lines:
            self.view.add_lines(lines)
        self._update_titles()

    def _skipped_line(self, count: int) -> StreamLine:
        self._serial += 1
        text = f"… {count} packets not drawn (more than anyone can read; press / to filter)"
        return StreamLine(self._serial, ((text, "stream--skipped"),), "")

    def _line(self, event: Event) -> StreamLine:
        self._serial += 1
        pieces: list[tuple[str, str]] = [
            (f"+{event.ts - self.t0:.3f}s ", "stream--time"),
            (f"{'[' + event.source + ']':<11} ", "stream--tag"),
            (f"{event.kind:<12} ", "stream--kind"),
        ]
        haystack = event.kind
        if isinstance(event, PacketEvent):
            pieces.extend(self._packet_pieces(event))
            haystack = f"{event.kind} {event.iface} {event.src} {event.dst} {event.flags}"
            if event.node:
                haystack += f" {event.node}"
        elif isinstance(event, ProbeEvent):
            pieces.append((event.text(), "stream--ok" if event.ok else "stream--fail"))
            haystack = f"{event.kind} probe {event.src} {event.dst} {event.error}"
        else:
            pieces.append((event.text(), "stream--dim"))
        return StreamLine(self._serial, tuple(pieces), haystack.lower())

    def _packet_pieces(self, event: PacketEvent) -> list[tuple[str, str]]:
        colour = iface_colour(event.iface)
        text = event.text()
        head, _, rest = text.partition("] ")
        role = "stream--fail" if "RST" in event.flags or "unreachable" in event.detail else ""
        return [(head + "] ", f"stream--iface-{colour}"), (rest, role)]

    def _matches(self, line: StreamLine) -> bool:
        words = self.filter_text.lower().split()
        return all(word in line.haystack for word in words) if line.haystack else not words

    # --- user controls -----------------------------------------------------------------------

    def watch_paused(self, paused: bool) -> None:
        if not paused:
            backlog, self.backlog = list(self.backlog), deque(maxlen=RING_SIZE)
            waiting = [line for line in backlog if self._matches(line)]
            skipped = max(0, len(waiting) - MAX_LINES_PER_BATCH)
            self._draw(waiting[-MAX_LINES_PER_BATCH:], skipped)
        self._update_titles()

    def watch_filter_text(self, _value: str) -> None:
        self.view.set_lines([line for line in self.ring if self._matches(line)])
        self._update_titles()

    def clear(self) -> None:
        self.ring.clear()
        self.backlog.clear()
        self.packets.clear()
        self.not_drawn = 0
        self.view.set_lines([])
        self._update_titles()

    def open_filter(self) -> None:
        field = self.query_one("#stream-filter", Input)
        field.remove_class("-hidden")
        field.value = self.filter_text
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_filter()

    def key_escape(self) -> None:
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#stream-filter", Input).add_class("-hidden")
        self.view.focus()

    def _update_titles(self) -> None:
        bpf = f' bpf="{self.bpf}"' if self.bpf else ""
        self.border_title = f"packets{bpf}"
        notes = []
        if self.paused:
            notes.append(f"⏸ paused ({len(self.backlog)} waiting) · space resumes")
        if self.filter_text:
            notes.append(f"filter: {self.filter_text}")
        if self.not_drawn:
            notes.append(f"{self.not_drawn} packets not drawn")
        self.border_subtitle = " · ".join(notes)

    @property
    def view(self) -> StreamView:
        return self.query_one("#stream", StreamView)

    @property
    def drawn_text(self) -> list[str]:
        """The lines currently in the view, as plain text (what a user can scroll through)."""
        return [line.plain for line in self.view.lines]
