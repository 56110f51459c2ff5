"""EventSink: the only door from the backends to whoever shows the stream.

Backends (lab, capture, probe, watch, cluster, replay) call `emit`/`emit_many` from any thread and
never import the UI; the dashboard's bridge, `run --plain/--json` and the recorder implement it.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from svcwatch.model.events import Event, Notice


class EventSink(Protocol):
    """Receives events; implementations must be thread-safe."""

    def emit(self, event: Event) -> None: ...

    def emit_many(self, events: Sequence[Event]) -> None: ...


@runtime_checkable
class StateSink(Protocol):
    """A sink that also shows pulled state in line with the events (the dashboard's bridge).

    A replay pushes what the live dashboard displayed (chain, slice, scenario...) through it, in
    the stream's order, instead of letting the dashboard pull at a moment of its own choosing.
    """

    def emit(self, event: Event) -> None: ...

    def emit_many(self, events: Sequence[Event]) -> None: ...

    def emit_state(self, state: object) -> None: ...


class QueueSink:
    """A thread-safe FIFO for consumers that drain in batches (headless run, the UI bridge)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def emit(self, event: Event) -> None:
        self._queue.put(event)

    def emit_many(self, events: Sequence[Event]) -> None:
        for event in events:
            self._queue.put(event)

    def drain(self, timeout: float | None = None, limit: int = 100_000) -> list[Event]:
        """Everything queued now; waits up to `timeout` for the first event if there is none."""
        out: list[Event] = []
        try:
            out.append(self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait())
        except queue.Empty:
            return out
        while len(out) < limit:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return out


class FanoutSink:
    """Sends every event to several sinks (e.g. the screen and a recording)."""

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def emit_many(self, events: Sequence[Event]) -> None:
        for sink in self.sinks:
            sink.emit_many(events)


def report_write_error(sink: EventSink, origin: str, message: str) -> None:
    """Tell whoever shows the stream that a writer (the recording, the pcap) stopped, once: an
    `error` Notice, on which the dashboard also re-reads the session's title for its header."""
    sink.emit(Notice(time.time(), "error", message, origin=origin))
