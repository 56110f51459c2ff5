"""ReplaySession: the dashboard's Session, played back from a recording file.

It needs no root, no lab and no cluster, so a talk rehearsed on Linux replays on any laptop. The
events come at their recorded spacing (scaled by `speed`); everything the dashboard pulls (chain
with counters, Service, slice, endpoint facts, scenario) is the recorded value at the current
replay time. A scenario key jumps to the next moment that scenario started. Notices the replay
itself adds (jumps, the end, damage) have origin "replay", so they never pass for recorded ones.

Pulled state is not looked up by time: the live dashboard displayed each value after some number
of stream events, and the recording says how many (`shown` records; for older or headless
recordings, the events before the value in the file). The player pushes each value to the
dashboard at exactly that point of the stream (`replayed_display`), so the slice, chain, sync lag,
counters and diagnosis are what the live dashboard showed there; what this session returns when
asked is the value as of the events played so far.
"""

from __future__ import annotations

import time
from pathlib import Path

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import Notice
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service
from svcwatch.record.reader import Recording, latest_at, load_recording
from svcwatch.record.reader import Shown as Shown  # re-exported: the UI's door to replay items
from svcwatch.record.replay import Player, ReplayClock
from svcwatch.session.capabilities import Capabilities
from svcwatch.sinks import EventSink

REPLAY_ORIGIN = "replay"
SPEEDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0)  # what `[` and `]` step through


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
            self.recording.events,
            sink,
            self.clock,
            on_finished=self._announce_end,
            states=self.recording.shown,
        )
        self._player.start()

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()

    def cancel_start(self) -> None:
        """A replay starts at once: nothing to call off."""

    def service(self) -> Service:
        return self._objects()[0]

    def current_slice(self) -> EndpointSlice:
        return self._objects()[1]

    def current_scenario(self) -> str | None:
        shown = self._shown("scenario")
        if shown is not None:
            return str(shown.value)
        entry = latest_at(self.recording.scenario_starts(), self.clock.now())
        return None if entry is None else entry[1]

    def capabilities(self) -> Capabilities:
        """Scenario keys jump, the clock pauses, steps and changes speed; nothing is changed."""
        return Capabilities(
            scenarios=self,
            replay=self,
            replayed_display=True,  # the dashboard shows what the player pushes, pulls only once
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
        message = f"replay: jumped to {name} at {self.elapsed_text(target)}"
        if self._player is not None:
            self._player.jump_to(target, landed=lambda: self._notice("scenario", message, target))
        else:
            self.clock.seek(target)
            self._notice("scenario", message, target)

    def read_chain(self) -> ChainTree:
        shown = self._shown("chain")
        if shown is not None:
            return shown.value  # type: ignore[no-any-return]
        first = self.recording.chains[:1]
        return first[0][1] if first else ChainTree(service=self.service().key)

    def endpoint_facts(self) -> list[EndpointFacts]:
        shown = self._shown("facts")
        facts = shown.value if shown is not None else next(iter(self.recording.facts), (0, []))[1]
        return [EndpointFacts(**fact) for fact in facts]

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

    def _objects(self) -> tuple[Service, EndpointSlice]:
        if not self.recording.objects:
            raise InputError(
                "the recording holds no Service or EndpointSlice", source=str(self.recording.path)
            )
        service, slice_ = self.recording.objects[0][1:]
        for shown in self._played():
            if shown.what in ("started", "objects"):
                service, slice_ = shown.value
            elif shown.what == "slice":
                slice_ = shown.value
        return service, slice_

    def _played(self) -> list[Shown]:
        """What the live dashboard displayed up to the point the player has reached."""
        if self._player is not None:
            played = self._player.position
        else:  # not started: up to the clock, as a jump there would play it
            now = self.clock.now()
            events = self.recording.events
            played = next((i for i, e in enumerate(events) if e.ts > now), len(events))
        return [shown for shown in self.recording.shown if shown.seen <= played]

    def _shown(self, what: str) -> Shown | None:
        return next((s for s in reversed(self._played()) if s.what == what), None)

    def _announce_end(self) -> None:
        # Short enough to be read whole in an 80-column packets pane.
        count = len(self.recording.events)
        self._notice("info", f"replay ended ({count} events); scenario keys jump back")

    def _notice(self, kind: str, message: str, ts: float | None = None) -> None:
        # Stamped with recording time so it sorts among the recorded events it comments on.
        if self._sink is not None:
            at = self.clock.now() if ts is None else ts
            self._sink.emit(Notice(ts=at, kind=kind, message=message, origin=REPLAY_ORIGIN))
