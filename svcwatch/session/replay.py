"""ReplaySession: the dashboard's Session, played back from a recording file.

It needs no root, no lab and no cluster, so a talk rehearsed on Linux replays on any laptop. The
events come at their recorded spacing (scaled by `speed`); everything the dashboard pulls (chain
with counters, Service, slice, endpoint facts, scenario) is the recorded value at the current
replay time. A scenario key jumps to the next moment that scenario started. Notices the replay
itself adds (jumps, the end, damage) have origin "replay", so they never pass for recorded ones.

"Recorded value at the current replay time" allows for the live dashboard's lag: it pulled in
answer to an event some milliseconds after it, so a replay pulling in answer to the same event
reads what was recorded up to PULL_WINDOW after the last replayed event -- but never past the next
change (slice change, rules sync, scenario request) that the replay has not reached yet.
"""

from __future__ import annotations

import bisect
import math
import time
from pathlib import Path

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import Notice, RulesSynced, SliceChanged
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service
from svcwatch.record.reader import Recording, latest_at, load_recording
from svcwatch.record.replay import Player, ReplayClock
from svcwatch.session.capabilities import Capabilities
from svcwatch.sinks import EventSink

REPLAY_ORIGIN = "replay"
SPEEDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0)  # what `[` and `]` step through
PULL_WINDOW = 0.5  # seconds: the live dashboard pulls within this of the event it answers


class ReplaySession:
    """A Session over a recording, with the extra controls a replay has (pause, step, speed)."""

    kind = "replay"

    def __init__(self, recording: Recording | Path, *, speed: float = 1.0) -> None:
        self.recording = (
            recording if isinstance(recording, Recording) else load_recording(recording)
        )
        if not self.recording.events and not self.recording.objects:
            raise InputError(
                "the recording holds no events to replay", source=str(self.recording.path)
            )
        first = self.recording.events[0].ts if self.recording.events else self.recording.start_ts
        self.clock = ReplayClock(first, speed)
        self._player: Player | None = None
        self._changes = sorted(  # the moments after which pulled state may differ
            [e.ts for e in self.recording.events if isinstance(e, (SliceChanged, RulesSynced))]
            + [ts for ts, _ in self.recording.scenario_starts()]
        )
        self._sink: EventSink | None = None
        created = time.strftime(
            "%Y-%m-%d %H:%M", time.localtime(float(self.recording.header.get("created", 0)))
        )
        original = (
            self.recording.title or self.recording.meta.get("title") or self.recording.session_kind
        )
        self.title = f"replay of {original} · {self.recording.path.name}, recorded {created}"

    # --- Session ----------------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        self._sink = sink
        warning = self.recording.warning()
        if warning:
            self._notice("warning", warning)
        self._player = Player(
            self.recording.events, sink, self.clock, on_finished=self._announce_end
        )
        self._player.start()

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()

    def service(self) -> Service:
        return self._objects()[1]

    def current_slice(self) -> EndpointSlice:
        return self._objects()[2]

    def current_scenario(self) -> str | None:
        entry = latest_at(self.recording.scenario_starts(), self._pull_time())
        return None if entry is None else entry[1]

    def capabilities(self) -> Capabilities:
        """Scenario keys jump, the clock pauses, steps and changes speed; nothing is changed."""
        return Capabilities(
            scenarios=self,
            replay=self,
            stream_start=self.recording.start_ts,
            read_only="a replay shows what was recorded",
        )

    def scenarios_offered(self) -> list[str]:
        """The scenarios this recording has a start of, in the order they first started."""
        return list(dict.fromkeys(name for _, name in self.recording.scenario_starts()))

    def request_scenario(self, name: str) -> None:
        """Jump to the next moment scenario `name` started (wrapping to its first one)."""
        starts = [ts for ts, started in self.recording.scenario_starts() if started == name]
        if not starts:
            recorded = sorted({s for _, s in self.recording.scenario_starts()})
            raise InputError(
                f"this recording has no {name!r} scenario (it has: {', '.join(recorded) or 'none'})"
            )
        now = self.clock.now()
        target = next((ts for ts in starts if ts > now + 0.001), starts[0])
        if self._player is not None:
            self._player.jump_to(target)
        else:
            self.clock.seek(target)
        self._notice("scenario", f"replay: jumped to {name} at {self.elapsed_text(target)}")

    def read_chain(self) -> ChainTree:
        entry = latest_at(self.recording.chains, self._pull_time())
        return ChainTree(service=self.service().key) if entry is None else entry[1]

    def endpoint_facts(self) -> list[EndpointFacts]:
        entry = latest_at(self.recording.facts, self._pull_time())
        return [] if entry is None else [EndpointFacts(**facts) for facts in entry[1]]

    # --- replay controls (the UI binds space . [ ]) ----------------------------------------

    @property
    def speed(self) -> float:
        return self.clock.speed

    @property
    def paused(self) -> bool:
        return self.clock.paused

    @property
    def finished(self) -> bool:
        return self._player is not None and self._player.finished.is_set()

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Block until every event was emitted (for headless replays); False on timeout."""
        return self._player is not None and self._player.finished.wait(timeout)

    def pause(self) -> None:
        self.clock.pause()

    def resume(self) -> None:
        self.clock.resume()

    def toggle_pause(self) -> None:
        self.resume() if self.clock.paused else self.pause()

    def step(self) -> None:
        """Emit the next event now; pauses first so the replay stays where the step left it."""
        self.clock.pause()
        if self._player is not None:
            self._player.step()

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)

    def faster(self) -> float:
        self.set_speed(next((s for s in SPEEDS if s > self.speed), SPEEDS[-1]))
        return self.speed

    def slower(self) -> float:
        self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0]))
        return self.speed

    def now(self) -> float:
        """The replay time (recording time): the dashboard's clock while it shows a replay."""
        return self.clock.now()

    def elapsed_text(self, ts: float | None = None) -> str:
        """Recording time as the plain stream prints it: "+12.345s"."""
        return f"+{(self.clock.now() if ts is None else ts) - self.recording.start_ts:.3f}s"

    # --- helpers ----------------------------------------------------------------------------

    def _objects(self) -> tuple[float, Service, EndpointSlice]:
        entry = latest_at(self.recording.objects, self._pull_time())
        if entry is None:
            raise InputError(
                "the recording holds no Service or EndpointSlice", source=str(self.recording.path)
            )
        return entry

    def _pull_time(self) -> float:
        """The recording time pulled state is read at (see the module docstring)."""
        now = self.clock.now()
        position = self._player.position if self._player is not None else 0
        if position == 0:
            return now
        last = self.recording.events[position - 1].ts
        upcoming = bisect.bisect_right(self._changes, last)
        pulled = last + PULL_WINDOW
        if upcoming < len(self._changes):
            pulled = min(pulled, math.nextafter(self._changes[upcoming], -math.inf))
        return max(now, pulled)

    def _announce_end(self) -> None:
        self._notice(
            "info",
            f"replay: end of recording ({len(self.recording.events)} events); "
            "press a scenario key to jump",
        )

    def _notice(self, kind: str, message: str) -> None:
        # Stamped with recording time so it sorts among the recorded events it comments on.
        if self._sink is not None:
            self._sink.emit(
                Notice(ts=self.clock.now(), kind=kind, message=message, origin=REPLAY_ORIGIN)
            )
