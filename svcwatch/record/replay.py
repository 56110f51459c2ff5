"""The replay clock and the player that feeds a recording's events to a sink at their pace.

Recording time is the wall-clock time the events carry. The clock maps it to now: while playing,
recording time advances `speed` times as fast as real time; paused, it stands still; `seek` moves
it anywhere (a scenario jump). Infinite speed plays as fast as the sink takes events, which is
what headless tests and `--speed max` want. The player waits on a Condition, so pause, resume,
step, speed changes and stop all take effect at once, not after the current sleep.

A sink that can show state (the dashboard's, a `StateSink`) also gets what the live dashboard
displayed, each item after exactly as many events as it came after live; a jump then starts the
stream over and catches up to the target at once, so every pane holds what it held live there.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from svcwatch.model.events import Event
from svcwatch.record.reader import RESET, Shown
from svcwatch.sinks import EventSink, StateSink

_MAX_BATCH = 512  # events due at the same moment are emitted together (one UI message)


class ReplayClock:
    """Recording time as a function of real time, speed and pause; thread-safe."""

    def __init__(
        self, start: float, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._monotonic = monotonic
        self._anchor_rec = start  # recording time at the anchor
        self._anchor_real = monotonic()
        self._speed = _checked_speed(speed)
        self._paused = False
        self.changed = threading.Condition()

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    def now(self) -> float:
        with self.changed:
            return self._now_locked()

    def _now_locked(self) -> float:
        if self._paused or math.isinf(self._speed):
            return self._anchor_rec
        return self._anchor_rec + (self._monotonic() - self._anchor_real) * self._speed

    def _rebase(self, rec: float) -> None:
        self._anchor_rec, self._anchor_real = rec, self._monotonic()
        self.changed.notify_all()

    def seek(self, rec: float) -> None:
        with self.changed:
            self._rebase(rec)

    def set_speed(self, speed: float) -> None:
        with self.changed:
            now = self._now_locked()
            self._speed = _checked_speed(speed)
            self._rebase(now)

    def pause(self) -> None:
        with self.changed:
            self._rebase(self._now_locked())
            self._paused = True

    def resume(self) -> None:
        with self.changed:
            self._paused = False
            self._rebase(self._anchor_rec)

    def seconds_until(self, rec: float) -> float | None:
        """Real seconds until recording time `rec` (0 if due); None while paused. Hold `changed`."""
        if self._paused:
            return None
        ahead = rec - self._now_locked()
        return 0.0 if ahead <= 0 or math.isinf(self._speed) else ahead / self._speed


def _checked_speed(speed: float) -> float:
    if not speed > 0:
        raise ValueError(f"replay speed must be > 0, not {speed}")
    return speed


class Player:
    """Emits `events` into `sink` on a thread as the clock reaches each one's timestamp."""

    def __init__(
        self,
        events: Sequence[Event],
        sink: EventSink,
        clock: ReplayClock,
        on_finished: Callable[[], None] | None = None,
        states: Sequence[Shown] = (),
    ) -> None:
        self.events = events
        self.sink = sink
        self.states = states if isinstance(sink, StateSink) else ()
        self._next_state = 0  # index of the next state to show
        self._catch_up = 0  # after a jump: emit events up to this index without waiting
        self._reset = False  # after a jump: tell the sink the stream starts over
        self._landed: Callable[[], None] | None = None  # called when a jump has caught up
        self.clock = clock
        self.on_finished = on_finished  # called (on the player thread) each time the end is reached
        self._announce = False
        self.finished = threading.Event()
        self._next = 0  # index of the next event to emit
        self._steps = 0  # events to emit while paused (from step())
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="svcwatch-replay", daemon=True)

    @property
    def position(self) -> int:
        """How many events have been emitted since the start or the last jump."""
        return self._next

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self.clock.changed:
            self._stopping = True
            self.clock.changed.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def step(self) -> None:
        """Emit the next event now (meant for a paused replay) and move the clock to it."""
        with self.clock.changed:
            self._steps += 1
            self.clock.changed.notify_all()

    def jump_to(self, rec: float, landed: Callable[[], None] | None = None) -> None:
        """Continue from the first event at or after recording time `rec` (module docstring);
        `landed` is called once the stream has caught up to it (a notice said there stays)."""
        with self.clock.changed:
            self._landed = landed
            target = next((i for i, e in enumerate(self.events) if e.ts >= rec), len(self.events))
            if self.states:
                self._next, self._next_state, self._catch_up, self._reset = 0, 0, target, True
            else:
                self._next, self._landed = target, None
            self.clock._rebase(rec)
            self.finished.clear()
        if not self.states and landed is not None:
            landed()  # nothing to catch up with: the next event is the target's

    def _run(self) -> None:
        while True:
            batch = self._wait_for_due()
            if batch is None:
                return
            if batch:
                self._emit(batch)
            with self.clock.changed:
                landed, caught_up = self._landed, self._next >= self._catch_up and not self._reset
                if caught_up:
                    self._landed = None
            if landed is not None and caught_up:
                landed()
            if self._announce:
                self._announce = False
                if self.on_finished is not None:
                    self.on_finished()

    def _wait_for_due(self) -> list[Event | Shown] | None:
        """The events due now (possibly empty after a wake-up), or None when stopping."""
        with self.clock.changed:
            while not self._stopping:
                if self._reset:
                    self._reset = False
                    return [RESET]
                if self._next < self._catch_up:
                    return self._take(self._catch_up - self._next, advance=False, unpaced=True)
                if self._next >= len(self.events):
                    if not self.finished.is_set():
                        self.finished.set()
                        self._announce = True
                        return self._states_upto(len(self.events))
                    self.clock.changed.wait()
                    continue
                if self._steps:
                    self._steps -= 1
                    # A step shows exactly the stepped event's moment, even if the clock had run a
                    # little past it before the pause (the player had not emitted it yet).
                    batch = self._take(1, advance=False)
                    self.clock._rebase(self.events[self._next - 1].ts)
                    return batch
                wait = self.clock.seconds_until(self.events[self._next].ts)
                if wait == 0:
                    return self._take(_MAX_BATCH, advance=math.isinf(self.clock.speed))
                self.clock.changed.wait(wait)
            return None

    def _take(self, limit: int, *, advance: bool, unpaced: bool = False) -> list[Event | Shown]:
        """The next events due (at most `limit`), each preceded by the states shown before it."""
        now = self.clock._now_locked()
        unpaced = unpaced or (math.isinf(self.clock.speed) and not self.clock.paused)
        end = self._next + 1
        while (
            end < len(self.events)
            and end - self._next < limit
            and (unpaced or self.events[end].ts <= now)
        ):
            end += 1
        batch: list[Event | Shown] = []
        for index in range(self._next, end):
            batch += self._states_upto(index)
            batch.append(self.events[index])
        batch += self._states_upto(end)
        self._next = end
        if advance:
            self.clock._rebase(max(now, self.events[end - 1].ts))
        return batch

    def _states_upto(self, seen: int) -> list[Event | Shown]:
        """The states not yet shown that the live dashboard showed after `seen` events or fewer."""
        start = self._next_state
        while self._next_state < len(self.states) and self.states[self._next_state].seen <= seen:
            self._next_state += 1
        return list(self.states[start : self._next_state])

    def _emit(self, batch: list[Event | Shown]) -> None:
        """Runs of events go out as one batch; a state between them goes out in its place."""
        run: list[Event] = []
        for item in batch:
            if not isinstance(item, Shown):
                run.append(item)
                continue
            if run:
                self.sink.emit_many(run)
                run = []
            assert isinstance(self.sink, StateSink)  # states are only kept for a StateSink
            self.sink.emit_state(item)
        if run:
            self.sink.emit_many(run)
