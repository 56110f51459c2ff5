"""SyncTracker: write -> rules -> first packet per slice change, as the UI and JSON show it."""

from __future__ import annotations

from svcwatch.model.events import Notice, PacketEvent, ProbeEvent
from svcwatch.watch.sync import SyncTracker


def packet(ts: float) -> PacketEvent:
    return PacketEvent(
        ts=ts,
        kind="tcp-packet",
        iface="eth0",
        direction="out",
        src="192.168.97.2",
        dst="192.168.97.3",
        sport=40000,
        dport=31234,
        flags="S",
    )


def probe(ts: float, started: float) -> ProbeEvent:
    return ProbeEvent(
        ts=ts,
        kind="io-error",
        src="192.168.97.2",
        sport=40002,
        dst="192.168.97.3",
        dport=31234,
        phase="connect",
        error="connection refused",
        started=started,
    )


def test_write_rules_and_first_packet_make_one_timing() -> None:
    tracker = SyncTracker("default/socat")
    tracker.written("7", at=100.000)
    partial = tracker.rules_applied("7", at=100.012)
    assert partial is not None and partial.effect_at is None
    assert partial.text() == "default/socat rv=7 write->rules 12.0ms write->first-packet pending"
    assert tracker.observed(packet(100.030)) is not None
    assert tracker.last is not None and tracker.last.effect_ms is not None
    assert round(tracker.last.effect_ms, 1) == 30.0 and tracker.last.ts == 100.030
    # The record is closed: later packets change nothing.
    assert tracker.observed(packet(101.0)) is None


def test_packets_before_the_rules_changed_do_not_count() -> None:
    tracker = SyncTracker("default/socat")
    tracker.written("8", at=200.0)
    assert tracker.observed(packet(200.001)) is None  # rules not there yet
    tracker.rules_applied("8", at=200.005)
    # A probe that started before the rules changed went through the old rules.
    assert tracker.observed(probe(ts=200.100, started=200.004)) is None
    assert tracker.observed(Notice(ts=200.2, kind="info", message="x")) is None
    timing = tracker.observed(probe(ts=200.300, started=200.006))
    assert timing is not None and timing.effect_at == 200.300 and timing.rules_at == 200.005


def test_a_newer_write_supersedes_and_stale_rule_reports_are_ignored() -> None:
    tracker = SyncTracker("default/socat")
    tracker.written("9", at=300.0)
    tracker.written("10", at=300.5)
    assert tracker.rules_applied("9", at=300.6) is None
    timing = tracker.rules_applied("10", at=300.7)
    assert timing is not None and timing.resource_version == "10" and timing.written_at == 300.5


def test_on_a_cluster_the_first_packet_after_the_write_closes_the_record() -> None:
    tracker = SyncTracker(expects_rules=False)
    tracker.written("48214", at=400.0, slice_key="default/socat")
    timing = tracker.observed(packet(400.8))
    assert timing is not None and timing.rules_ms is None
    assert timing.text() == "default/socat rv=48214 write->rules n/a write->first-packet 800.0ms"


def test_nothing_pending_means_nothing_to_report() -> None:
    tracker = SyncTracker("default/socat")
    assert tracker.observed(packet(1.0)) is None
    assert tracker.rules_applied(None, at=1.0) is None
    assert tracker.last is None
