"""PacketPane: the live per-interface stream in the blog post's words, one colour per interface.

Textual's RichLog renders each line synchronously and tops out near 1.8k lines/s here
(docs/design.md), so `StreamView` is a ScrollView that renders only the visible rows from a
bounded ring. Each batch draws at most `MAX_LINES_PER_BATCH` lines; beyond that (a flood) the pane
writes one "N packets not drawn" line instead of freezing. Pausing keeps a bounded backlog, all of
it drawn on resume (only what overflowed the backlog counts as not drawn).
Every packet received (drawn or not) is also kept, raw bytes included, in a bounded ring of
PacketEvents: that is what `w` writes to a pcapng file.

The view follows the newest line until the user scrolls up (arrows, PgUp, Home, the wheel), and
follows again on End or G, or once scrolled back to the bottom. Nothing else stops it: not `c`,
not a filter, not a resize. What a line says and how `/` filters are in stream_lines.py.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Sequence

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.events import MouseScrollUp
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from svcwatch.model.events import CaptureStarted, Event, Notice, PacketEvent, ProbeEvent
from svcwatch.ui.widgets.stream_lines import (
    FILTER_HELP,
    StreamFilter,
    StreamLine,
    elapsed_label,
    fit_pieces,
    insert_in_order,
)

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


class StreamView(ScrollView, can_focus=True):
    """Renders visible rows of a bounded list of StreamLines; newest at the bottom."""

    BINDINGS = [Binding("G", "scroll_end", "Follow newest", show=False)]

    COMPONENT_CLASSES = {
        "stream--time",
        "stream--tag",
        "stream--kind",
        "stream--packet-kind",
        "stream--ok",
        "stream--fail",
        "stream--skipped",
        "stream--dim",
        *(f"stream--iface-{i}" for i in range(1, IFACE_COLOURS + 1)),
    }

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: deque[StreamLine] = deque(maxlen=RING_SIZE)
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(1024)
        self.follow = True  # stick to the newest line until the user scrolls up

    def set_lines(self, lines: list[StreamLine]) -> None:
        """Replace every line (a filter changed, `c`): the view shows the newest again."""
        self.follow = True
        self.lines = deque(lines, maxlen=RING_SIZE)
        self._strips.clear()
        self._resize_and_follow()

    def add_lines(self, lines: list[StreamLine]) -> None:
        insert_in_order(self.lines, lines)
        self._resize_and_follow()

    def _resize_and_follow(self) -> None:
        self.virtual_size = Size(0, len(self.lines))  # lines are fitted to the width
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh()

    # Only the user's own scrolling stops following: clamps, resizes and new lines never do.

    def _stop_following(self) -> None:
        self.follow = False

    def action_scroll_up(self) -> None:
        self._stop_following()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._stop_following()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._stop_following()
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        """End and G: follow the newest line again."""
        self.follow = True
        self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def on_mouse_scroll_up(self, _event: MouseScrollUp) -> None:
        self._stop_following()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value > old_value and self.is_vertical_scroll_end:
            self.follow = True  # scrolled back down to the newest line

    def on_resize(self) -> None:
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_y = self.scroll_offset.y
        index = scroll_y + y
        base = self.rich_style
        width = self.scrollable_content_region.width  # without the scrollbar's column
        if index >= len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[index]
        strip = self._strips.get((line.serial, width))
        if strip is None:
            text = Text(no_wrap=True)
            for piece, role in fit_pieces(line.pieces, width):
                text.append(
                    piece, self.get_component_rich_style(role, partial=True) if role else Style()
                )
            text.stylize_before(base)
            strip = Strip(text.render(self.app.console), cell_len(text.plain))
            self._strips[(line.serial, width)] = strip
        return strip.crop_extend(0, width, base).apply_offsets(0, index)


class PacketPane(Vertical):
    """The stream pane: a StreamView, a hidden filter input, pause and not-drawn accounting."""

    paused: reactive[bool] = reactive(False, init=False)
    """Space toggles it: new lines wait in a bounded backlog instead of being drawn."""

    filter_text: reactive[str] = reactive("", init=False)
    """The `/` filter (stream_lines.StreamFilter): host X, port N, interfaces, flags, words."""

    def __init__(self, t0: float, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.t0 = t0
        self.ring: deque[StreamLine] = deque(maxlen=RING_SIZE)  # every line, filtered or not
        self.backlog: deque[StreamLine] = deque(maxlen=RING_SIZE)  # received while paused
        self.packets: deque[PacketEvent] = deque(maxlen=PACKETS_KEPT)  # for `w`, raw included
        self.not_drawn = 0  # packets never drawn since the last clear
        self.bpf = ""
        self._serial = 0
        self.filter = StreamFilter("")

    def compose(self) -> ComposeResult:
        yield StreamView(id="stream")
        yield Input(
            placeholder=f"filter: {FILTER_HELP}",
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
            lines, _, examined = self._newest_lines(shown, self.backlog.maxlen or RING_SIZE)
            insert_in_order(self.ring, lines)
            insert_in_order(self.backlog, lines)
            self.not_drawn += dropped + len(shown) - examined
            self._update_titles()
            return
        lines, drawn, examined = self._newest_lines(shown, MAX_LINES_PER_BATCH)
        insert_in_order(self.ring, lines)  # all of them: a filter is only a view of the ring
        self._draw(drawn, dropped + len(shown) - examined)

    def _newest_lines(
        self, events: Sequence[Event], limit: int
    ) -> tuple[list[StreamLine], list[StreamLine], int]:
        """Lines from the newest events until `limit` of them match the filter, oldest first:
        (every line made, the matching ones, how many events were examined)."""
        made: list[StreamLine] = []
        matching: list[StreamLine] = []
        for event in reversed(events):
            if len(matching) >= limit:
                break
            line = self._line(event)
            made.append(line)
            if self.filter.matches(line):
                matching.append(line)
        return made[::-1], matching[::-1], len(made)

    def _draw(self, lines: list[StreamLine], skipped: int) -> None:
        if skipped:
            self.not_drawn += skipped
            lines = [self._skipped_line(skipped, lines[0].ts if lines else 0.0), *lines]
        if lines:
            self.view.add_lines(lines)
        self._update_titles()

    def _skipped_line(self, count: int, ts: float) -> StreamLine:
        self._serial += 1
        text = f"… {count} packets not drawn (more than anyone can read; press / to filter)"
        return StreamLine(self._serial, ((text, "stream--skipped"),), "", ts=ts)

    def _line(self, event: Event) -> StreamLine:
        self._serial += 1
        packet = isinstance(event, PacketEvent)
        pieces: list[tuple[str, str]] = [
            (elapsed_label(event.ts - self.t0) + " ", "stream--time"),
            (f"{'[' + event.source + ']':<11} ", "stream--tag"),
            (f"{event.kind:<12} ", "stream--packet-kind" if packet else "stream--kind"),
        ]
        if isinstance(event, PacketEvent):
            pieces.extend(self._packet_pieces(event))
            haystack = f"{event.kind} {event.iface} {event.src} {event.dst} {event.flags}"
            return StreamLine(
                self._serial,
                tuple(pieces),
                f"{haystack} {event.node or ''}".lower(),
                ts=event.ts,
                iface=event.iface,
                hosts=(event.src, event.dst),
                ports=tuple(p for p in (event.sport, event.dport) if p is not None),
                flags=frozenset(f.lower() for f in event.flags.split(",") if f),
            )
        if isinstance(event, ProbeEvent):
            pieces.append((event.text(), "stream--ok" if event.ok else "stream--fail"))
            haystack = f"{event.kind} probe {event.src} {event.dst} {event.error}"
            return StreamLine(
                self._serial,
                tuple(pieces),
                haystack.lower(),
                ts=event.ts,
                hosts=(event.src, event.dst),
                ports=tuple(p for p in (event.sport, event.dport) if p is not None),
            )
        pieces.append((event.text(), "stream--dim"))
        return StreamLine(self._serial, tuple(pieces), event.kind.lower(), ts=event.ts)

    def _packet_pieces(self, event: PacketEvent) -> list[tuple[str, str]]:
        colour = iface_colour(event.iface)
        text = event.text()
        head, _, rest = text.partition("] ")
        role = "stream--fail" if "RST" in event.flags or "unreachable" in event.detail else ""
        return [(head + "] ", f"stream--iface-{colour}"), (rest, role)]

    # --- user controls -----------------------------------------------------------------------

    def watch_paused(self, paused: bool) -> None:
        if not paused:
            backlog, self.backlog = list(self.backlog), deque(maxlen=RING_SIZE)
            # Every waiting line is already in the ring: draw them all (the view renders only
            # visible rows), so a pause never reads like a flood of packets "not drawn".
            self._draw([line for line in backlog if self.filter.matches(line)], 0)
        self._update_titles()

    def watch_filter_text(self, value: str) -> None:
        self.filter = StreamFilter(value)
        self.view.set_lines([line for line in self.ring if self.filter.matches(line)])
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
        """Esc clears an active filter (every buffered line comes back) and closes the input."""
        self.query_one("#stream-filter", Input).value = ""
        self.filter_text = ""
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
