"""UiSink: the EventSink that carries backend events into the Textual app, in ~10 Hz batches.

Backends call `emit` from their own threads as fast as packets arrive. Posting one message per
packet would starve the event loop (docs/design.md: refreshing every 10 ms costs 80% CPU), so the
sink buffers and a flusher thread posts one `EventsArrived` per tick (at once for a slice change
or a rules sync, which a key press is waiting for). If the app falls behind
(its message queue grows), packets beyond `max_packets_per_batch` are counted, not queued, and the
packet pane says how many it never drew; every non-packet event is always delivered.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from svcwatch.model.events import Event, PacketEvent, RulesSynced, SliceChanged
from svcwatch.ui.messages import EventsArrived


class MessageTarget(Protocol):
    """What the bridge needs of the app: thread-safe posting and a queue length."""

    def post_message(self, message: EventsArrived) -> bool: ...

    @property
    def message_queue_size(self) -> int: ...


class UiSink:
    """A thread-safe EventSink that posts `EventsArrived` batches to `target`."""

    def __init__(
        self,
        target: MessageTarget,
        interval: float = 0.1,
        max_packets_per_batch: int = 1_000,
        max_queued_messages: int = 20,
    ) -> None:
        self.target = target
        self.interval = interval
        self.max_packets_per_batch = max_packets_per_batch
        self.max_queued_messages = max_queued_messages
        self._buffer: list[Event | object] = []
        self._buffered_packets = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # keeps batches in order between thread and flush()
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by control events: deliver them without waiting a tick
        self._thread: threading.Thread | None = None

    def emit(self, event: Event) -> None:
        with self._lock:
            self._add(event)

    def emit_many(self, events: Sequence[Event]) -> None:
        with self._lock:
            for event in events:
                self._add(event)

    def emit_state(self, state: object) -> None:
        """A replay's recorded display (svcwatch.record.reader.Shown), kept in stream order."""
        with self._lock:
            self._buffer.append(state)
            self._wake.set()

    def _add(self, event: Event) -> None:
        if isinstance(event, (RulesSynced, SliceChanged)):
            # A key press waits on these (new rules, new slice): skip the rest of the tick.
            self._wake.set()
        if isinstance(event, PacketEvent):
            if self._buffered_packets >= self.max_packets_per_batch:
                self._dropped += 1
                return
            self._buffered_packets += 1
        self._buffer.append(event)

    def flush(self) -> int:
        """Post what is buffered now as one batch; returns how many events it carried."""
        with self._flush_lock:
            if self.target.message_queue_size > self.max_queued_messages:
                # The app is behind: keep buffering (packets beyond the cap become `dropped`).
                return 0
            with self._lock:
                batch, self._buffer = self._buffer, []
                dropped, self._dropped = self._dropped, 0
                self._buffered_packets = 0
            if batch or dropped:
                self.target.post_message(EventsArrived(batch, dropped))
            return len(batch)

    def start(self) -> None:
        """Start the flusher thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="svcwatch-ui-sink", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the flusher thread after one last flush."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
        self.flush()
