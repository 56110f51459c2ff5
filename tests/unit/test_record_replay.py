"""Replaying a recording gives the recorded stream back, and the pulled state of each moment."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, Notice, RulesSynced
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service
from svcwatch.record.reader import Shown, load_recording
from svcwatch.record.replay import ReplayClock
from svcwatch.session.capabilities import Capabilities
from svcwatch.session.recording import RecordingSession
from svcwatch.session.replay import REPLAY_ORIGIN, ReplaySession
from svcwatch.sinks import EventSink
from tests.helpers.sinks import CollectingSink
from tests.unit.record_samples import T0, chain_tree, seed_objects, wrong_port_exchange

WAIT = 10.0  # a guard against hangs, never an assertion about speed


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_clock_scales_pauses_and_seeks() -> None:
    real = FakeClock()
    clock = ReplayClock(T0, speed=2.0, monotonic=real)
    real.t += 1.5
    assert clock.now() == T0 + 3.0
    clock.pause()
    real.t += 10
    assert clock.now() == T0 + 3.0 and clock.seconds_until(T0 + 4) is None
    clock.resume()
    clock.set_speed(0.5)
    real.t += 2
    assert clock.now() == T0 + 4.0
    assert clock.seconds_until(T0 + 5.0) == 2.0
    clock.seek(T0 + 50)
    assert clock.now() == T0 + 50
    with pytest.raises(ValueError):
        clock.set_speed(0)


class ScriptedSession:
    """A stand-in backend (kind "lab") whose scenario switches emit a scripted wrong-port stream."""

    kind = "lab"
    title = "lab test"

    def __init__(self) -> None:
        self.service_, self.slice_ = seed_objects()
        self.sink: EventSink | None = None
        self.scenario: str | None = "happy"
        self.chain = chain_tree(0)
        self.switches = 0
        self.stopped = False
        self.chain_read = threading.Event()

    def start(self, sink: EventSink) -> None:
        self.sink = sink

    def stop(self) -> None:
        self.stopped = True

    def cancel_start(self) -> None:
        """Nothing to call off: start() here never waits."""

    def service(self) -> Service:
        return self.service_

    def current_slice(self) -> EndpointSlice:
        return self.slice_

    def current_scenario(self) -> str | None:
        return self.scenario

    def request_scenario(self, name: str) -> None:
        assert self.sink is not None
        self.scenario = name
        self.switches += 1
        now = (
            time.time()
        )  # the recorder stamps scenario requests and chain reads with the real clock
        self.sink.emit(Notice(ts=now, kind="scenario", message=f"scenario {name}"))
        self.sink.emit_many(wrong_port_exchange(now, sport=40000 + self.switches))
        self.chain = chain_tree(self.switches)

    def capabilities(self) -> Capabilities:
        return Capabilities(scenarios=self)

    def scenarios_offered(self) -> list[str]:
        return ["happy", "wrong-port", "wrong-ip", "mixed"]

    def read_chain(self) -> ChainTree:
        self.chain_read.set()
        return self.chain

    def endpoint_facts(self) -> list[EndpointFacts]:
        return [EndpointFacts(address="10.42.0.142", port=12345, pod="socat-0", listening=True)]


def record_scripted(path: Path) -> tuple[list[Event], list[ChainTree]]:
    inner = ScriptedSession()
    session = RecordingSession(inner, path, t0=T0)  # the caller's +0.000s
    shown = CollectingSink()
    session.start(shown)
    chains = [session.read_chain()]
    session.endpoint_facts()
    for name in ("wrong-port", "wrong-ip", "mixed"):
        session.request_scenario(name)
        session.record_key({"wrong-port": "2", "wrong-ip": "3", "mixed": "4"}[name])
        chains.append(session.read_chain())
    assert session.kind == "lab" and session.capabilities().key_recording is session
    assert session.capabilities().slice_editing is None  # the inner session cannot edit
    with pytest.raises(InputError, match="cannot change the slice"):
        session.apply_slice_text("kind: EndpointSlice")
    session.stop()
    assert inner.stopped
    return shown.snapshot(), chains


def replay_all(session: ReplaySession) -> list[Event]:
    sink = CollectingSink()
    session.start(sink)
    assert session.wait_finished(WAIT)
    session.stop()
    return [e for e in sink.snapshot() if getattr(e, "origin", None) != REPLAY_ORIGIN]


def test_recording_session_records_what_the_dashboard_was_shown(tmp_path: Path) -> None:
    path = tmp_path / "s.svcrec.gz"
    shown, chains = record_scripted(path)
    rec = load_recording(path)
    assert rec.events == shown and [e.raw for e in rec.events if hasattr(e, "raw")] == [
        e.raw for e in shown if hasattr(e, "raw")
    ]
    assert [tree for _, tree in rec.chains] == chains
    assert [name for _, name in rec.scenarios] == ["happy", "wrong-port", "wrong-ip", "mixed"]
    assert [key for _, key in rec.keys] == ["2", "3", "4"]
    assert rec.start_ts == T0 and rec.objects[0][1:] == seed_objects() and len(rec.facts) == 1


def test_a_headless_recording_pulls_the_chain_itself_after_a_rules_change(tmp_path: Path) -> None:
    inner = ScriptedSession()
    session = RecordingSession(inner, tmp_path / "headless.svcrec")
    session.start(CollectingSink())  # nobody calls read_chain, as in `svcwatch run --record`
    assert inner.sink is not None
    inner.sink.emit(RulesSynced(ts=time.time(), service="default/socat", added=("KUBE-SEP-X",)))
    assert inner.chain_read.wait(WAIT)
    session.stop()
    rec = load_recording(tmp_path / "headless.svcrec")
    assert [tree for _, tree in rec.chains] == [inner.chain]
    assert rec.title == "lab test" and len(rec.facts) == 1


def test_headless_replay_emits_the_recorded_stream(tmp_path: Path) -> None:
    path = tmp_path / "s.svcrec"
    shown, _ = record_scripted(path)
    assert replay_all(ReplaySession(path, speed=math.inf)) == shown


def test_pulled_state_is_what_was_recorded_after_the_events_played(tmp_path: Path) -> None:
    path = tmp_path / "s.svcrec"
    _, chains = record_scripted(path)
    session = ReplaySession(path, speed=1.0)
    assert session.read_chain() == chains[0]  # before any event: what was shown before any
    assert (session.service(), session.current_slice()) == seed_objects()
    assert session.endpoint_facts() == [
        EndpointFacts(address="10.42.0.142", port=12345, pod="socat-0", listening=True)
    ]
    capabilities = session.capabilities()
    assert capabilities.slice_editing is None and not capabilities.injects_faults
    assert capabilities.read_only == "a replay shows what was recorded"
    assert session.scenarios_offered() == ["happy", "wrong-port", "wrong-ip", "mixed"]
    replay_all(session)  # a scripted recording of timestamps a second apart: the clock is moot
    assert session.read_chain() == chains[-1] and session.current_scenario() == "mixed"


class StateCollectingSink(CollectingSink):
    """Events and the states a replay pushes, in the order they arrive (like the dashboard's)."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[object] = []

    def emit_many(self, events: Sequence[Event]) -> None:
        super().emit_many(events)
        self.items.extend(events)

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_state(self, state: object) -> None:
        self.items.append(state)


def test_a_replay_pushes_each_pulled_value_after_the_events_it_followed(tmp_path: Path) -> None:
    path = tmp_path / "s.svcrec"
    shown, chains = record_scripted(path)
    session = ReplaySession(path, speed=math.inf)
    sink = StateCollectingSink()
    session.start(sink)
    assert session.wait_finished(WAIT)
    session.stop()
    items = [i for i in sink.items if getattr(i, "origin", None) != REPLAY_ORIGIN]
    pushed = [i for i in items if isinstance(i, Shown)]
    assert [s.value for s in pushed if s.what == "chain"] == chains
    assert [s.value for s in pushed if s.what == "scenario"] == [
        "happy",
        "wrong-port",
        "wrong-ip",
        "mixed",
    ]
    for state in pushed:  # exactly after the events that came before it in the recording
        assert [i for i in items[: items.index(state)] if not isinstance(i, Shown)] == shown[
            : state.seen
        ]


class SignallingSink(CollectingSink):
    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Condition()

    def emit_many(self, events: Sequence[Event]) -> None:
        super().emit_many(events)
        with self.arrived:
            self.arrived.notify_all()

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def wait_for(self, count: int) -> list[Event]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.events) >= count, WAIT)
        return self.snapshot()


def paused_replay(path: Path) -> tuple[ReplaySession, SignallingSink]:
    session = ReplaySession(path, speed=1.0)
    session.pause()
    sink = SignallingSink()
    session.start(sink)
    return session, sink


def test_step_emits_one_event_at_a_time_while_paused(tmp_path: Path) -> None:
    shown, _ = record_scripted(tmp_path / "s.svcrec")
    session, sink = paused_replay(tmp_path / "s.svcrec")
    for n in (1, 2, 3):
        session.step()
        assert sink.wait_for(n) == shown[:n]
    assert session.paused and session.clock.now() == shown[2].ts
    session.stop()


def test_a_scenario_key_jumps_to_the_next_moment_that_scenario_started(tmp_path: Path) -> None:
    shown, chains = record_scripted(tmp_path / "s.svcrec")
    session, sink = paused_replay(tmp_path / "s.svcrec")
    session.request_scenario("wrong-ip")
    assert session.current_scenario() == "wrong-ip" and session.read_chain() == chains[1]
    jumped = sink.wait_for(1)[0]
    assert (
        isinstance(jumped, Notice)
        and jumped.origin == REPLAY_ORIGIN
        and "jumped to wrong-ip" in jumped.message
    )
    session.step()
    first = next(e for e in shown if isinstance(e, Notice) and e.message == "scenario wrong-ip")
    assert sink.wait_for(2)[1] == first
    with pytest.raises(
        InputError, match="no 'rollout-race' scenario .* happy, mixed, wrong-ip, wrong-port"
    ):
        session.request_scenario("rollout-race")
    session.stop()


def test_speed_keys_step_through_fixed_speeds(tmp_path: Path) -> None:
    path = tmp_path / "s.svcrec"
    record_scripted(path)
    session = ReplaySession(path, speed=1.0)
    assert [
        session.faster(),
        session.faster(),
        session.slower(),
        session.slower(),
        session.slower(),
    ] == [
        2.0,
        5.0,
        2.0,
        1.0,
        0.5,
    ]
    session.set_speed(25.0)
    assert session.faster() == 25.0
