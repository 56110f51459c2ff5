"""The packet pane's lines: what each one says, what a `/` filter matches, and their time order.

A filter is a view over the buffered lines, never a gate in front of them: every line is kept,
and the filter only chooses which are drawn, so clearing it brings back what it hid. It reads
like tcpdump's words: `host 10.42.0.143`, `port 12346`, an interface (`cni0`, `veth` for all of
them), a TCP flag (`SYN`, `RST`, ...) or any other word of the line (`arp`, `io-error`, a node).
Every term must match.

Lines arrive in batches in the order the backends delivered them, which is not quite time order
(a probe's outcome can be delivered before the capture's copy of its own SYN); `insert_in_order`
puts each line where its timestamp belongs, so the pane reads top to bottom in time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

TCP_FLAGS = frozenset({"syn", "ack", "rst", "fin", "psh", "urg", "ece", "cwr"})
FILTER_HELP = "host 10.42.0.143 · port 12346 · cni0/veth · SYN/RST · arp (Enter keeps, Esc clears)"


@dataclass(frozen=True, slots=True)
class StreamLine:
    """One drawn line: its styled pieces, its time, and the facts a filter matches on."""

    serial: int
    pieces: tuple[tuple[str, str], ...]  # (text, component class or "")
    haystack: str  # lower-case words: kind, interface, addresses, flags, node, error
    ts: float = 0.0
    iface: str = ""
    hosts: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    flags: frozenset[str] = frozenset()

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.pieces)


def fit_pieces(pieces: tuple[tuple[str, str], ...], width: int) -> tuple[tuple[str, str], ...]:
    """A line's pieces in `width` cells, keeping its evidence: the source tag goes first (the
    kind says the same), then a packet's kind (its flags or words say it), then the middle of the
    text, never its end (flags, the error) nor its start (interface, addresses)."""
    kept = pieces
    for droppable in ("", "stream--tag", "stream--packet-kind"):
        kept = tuple(piece for piece in kept if piece[1] != droppable or not droppable)
        total = sum(len(text) for text, _ in kept)
        if width <= 0 or total <= width:
            return kept
    longest = max(range(len(kept)), key=lambda i: len(kept[i][0]))
    text, role = kept[longest]
    room = max(len(text) - (total - width), 1)
    head = max(room * 2 // 3, 1)
    tail = max(room - head - 1, 0)
    short = text[:head] + "…" + (text[-tail:] if tail else "")
    return (*kept[:longest], (short, role), *kept[longest + 1 :])


def elapsed_label(seconds: float) -> str:
    """The time column, always 9 cells: "  +2.965s", "+123.456s", then "+16:40.12", "+2h05m"."""
    if seconds < 999.9995:
        text = f"+{seconds:.3f}s"
    elif seconds < 5999.995:
        minutes, rest = divmod(seconds, 60)
        text = f"+{int(minutes)}:{rest:05.2f}"
    else:
        hours, rest = divmod(int(seconds), 3600)
        text = f"+{hours}h{rest // 60:02d}m"
    return text.rjust(9)


class StreamFilter:
    """A parsed `/` filter (module docstring); the empty filter matches every line."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self.hosts: list[str] = []
        self.ports: list[int] = []
        self.words: list[str] = []
        tokens = self.text.lower().split()
        while tokens:
            token = tokens.pop(0)
            if token in ("host", "port") and tokens:
                value = tokens.pop(0)
                if token == "host":
                    self.hosts.append(value)
                elif value.isdigit():
                    self.ports.append(int(value))
                else:
                    self.words.append(value)
            else:
                self.words.append(token)

    def __bool__(self) -> bool:
        return bool(self.text)

    def matches(self, line: StreamLine) -> bool:
        if not line.haystack:  # "N packets not drawn": shown only when nothing is filtered
            return not self
        return (
            all(host in line.hosts for host in self.hosts)
            and all(port in line.ports for port in self.ports)
            and all(self._word(word, line) for word in self.words)
        )

    @staticmethod
    def _word(word: str, line: StreamLine) -> bool:
        if word in TCP_FLAGS:
            return word in line.flags
        return line.iface.lower().startswith(word) or word in line.haystack


def insert_in_order(lines: deque[StreamLine], new: Iterable[StreamLine]) -> None:
    """Add `new` to `lines` (oldest first) where each one's time belongs; the oldest fall off."""
    for line in sorted(new, key=lambda item: item.ts):
        if not lines or lines[-1].ts <= line.ts:
            lines.append(line)
            continue
        index = len(lines)
        while index > 0 and lines[index - 1].ts > line.ts:
            index -= 1
        if lines.maxlen is not None and len(lines) >= lines.maxlen:
            if index == 0:
                continue  # older than everything kept: it would fall off at once
            lines.popleft()
            index -= 1
        lines.insert(index, line)
