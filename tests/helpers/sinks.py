"""CollectingSink: a test double for svcwatch.sinks.EventSink that keeps every event in order.

Tests hand it to a session or a backend and assert on what arrived; the package itself never needs
it, so it lives here rather than in svcwatch/sinks.py.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from svcwatch.model.events import Event


class CollectingSink:
    """Keeps every event in order (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def emit_many(self, events: Sequence[Event]) -> None:
        with self._lock:
            self.events.extend(events)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)
