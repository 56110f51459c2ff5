"""StartStopGuard: a session's start and stop, serialised, and stop run exactly once.

A stop can be asked for at any moment of a start: a signal 0.3 s into a lab build, the terminal
closing while the dashboard starts, the shutdown watchdog while the dashboard's own stop runs.
Unguarded, a stop that ran before the build finished found nothing to tear down, and the build
then completed into a lab nobody would remove. Guarded, a stop waits for a start in progress and
then tears down what it built (first calling off the start's waits, `cancel_start`, so a node
agent pod that stays Pending does not hold the stop for minutes); a start after a stop does
nothing; a second stop waits for the first and returns (re-raising nothing: the first caller
reports the outcome).
"""

from __future__ import annotations

import threading

from svcwatch.session.base import ForwardingSession, Session
from svcwatch.sinks import EventSink


class StartStopGuard(ForwardingSession):
    """Forwards a Session, with start/stop serialised and stop run once (module docstring)."""

    def __init__(self, inner: Session) -> None:
        super().__init__(inner)
        self._lifecycle = threading.Lock()
        self.stopped = False

    def start(self, sink: EventSink) -> None:
        with self._lifecycle:
            if not self.stopped:
                self.inner.start(sink)

    def stop(self) -> None:
        if not self.stopped:  # a start waiting on something that may never come gives up
            self.inner.cancel_start()
        with self._lifecycle:
            if self.stopped:
                return
            self.stopped = True
            self.inner.stop()
