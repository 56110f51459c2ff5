"""`svcwatch run`'s diagnosis events: the dashboard's sentence, in the stream, when it changes.

A DiagnosingSession around the deterministic FakeSession (the lab's traces, no kernel) with the
real sink, pulls and diagnosis code: what a `run --plain` user would read.
"""

from __future__ import annotations

import time

from svcwatch.model.events import (
    DiagnosisChanged,
    ProbeEvent,
    SliceChanged,
    plain_line,
    to_dict,
)
from svcwatch.session.diagnosing import DiagnosingSession
from tests.helpers.sinks import CollectingSink
from tests.ui.fakes import POD, POD_IP, T0, FakeSession


def diagnoses(sink: CollectingSink) -> list[DiagnosisChanged]:
    return [e for e in sink.snapshot() if isinstance(e, DiagnosisChanged)]


def wait_for(sink: CollectingSink, words: str) -> DiagnosisChanged:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [d for d in diagnoses(sink) if words in d.sentence]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no diagnosis saying {words!r}: {diagnoses(sink)}")


def test_the_stream_says_each_new_diagnosis_once() -> None:
    inner = FakeSession()
    session = DiagnosingSession(inner)
    sink = CollectingSink()
    session.start(sink)
    try:
        healthy = wait_for(sink, f"via {POD_IP}:12345 (pod {POD})")
        assert healthy.level == "ok"
        scenarios = session.capabilities().scenarios
        assert scenarios is not None
        scenarios.request_scenario("wrong-port")
        refused = wait_for(sink, "answered with RST")
    finally:
        session.stop()
    assert refused.level == "fail" and "clients see 'connection refused'" in refused.sentence
    shown = diagnoses(sink)
    assert all(a.sentence != b.sentence for a, b in zip(shown, shown[1:], strict=False))
    change = next(e for e in sink.snapshot() if isinstance(e, SliceChanged) and e.change != "ADDED")
    assert sink.snapshot().index(refused) > sink.snapshot().index(change)
    assert plain_line(refused, T0).split()[1:4] == ["[diagnosis]", "diagnosis", "fail:"]
    assert to_dict(refused)["type"] == "DiagnosisChanged"
    assert inner.stopped.is_set()


def test_probe_tallies_alone_do_not_repeat_the_diagnosis() -> None:
    """Each probe moves "N of N recent probes" and the median: `run` prints the sentence once."""
    session = DiagnosingSession(FakeSession())
    sink = CollectingSink()
    session.start(sink)
    try:
        wait_for(sink, f"via {POD_IP}:12345 (pod {POD})")
        for i in range(6):
            ok = ProbeEvent(
                T0 + 10 + i, "echo-ok", "127.0.0.1", 5000 + i, "127.0.0.1", 31234,
                connect_ms=0.4 + i, echo_ms=3.0,
            )  # fmt: skip
            session.observe([ok])
    finally:
        session.stop()
    via = [d.sentence for d in diagnoses(sink) if f"via {POD_IP}" in d.sentence]
    assert len(via) == 1, via
