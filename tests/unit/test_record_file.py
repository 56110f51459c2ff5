"""A recording reads back as written; damaged, foreign and future files fail as users expect."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, PacketEvent, RulesSynced, to_dict
from svcwatch.record import DEMO_RECORDING
from svcwatch.record.format import packet_line
from svcwatch.record.reader import load_recording
from svcwatch.record.writer import Recorder
from tests.unit.record_samples import T0, chain_tree, packet, scripted_stream, seed_objects


def write_sample(path: Path) -> list[Event]:
    """Record the scripted stream with chains, objects, a scenario and keys; return its events."""
    service, slice_ = seed_objects()
    events = scripted_stream()
    rec = Recorder(path, session_kind="lab", meta={"title": "lab t0001"})
    rec.record_start(T0)
    rec.record_objects(service, slice_, T0 + 0.1)
    rec.record_chain(chain_tree(0), T0 + 0.2)
    rec.record_scenario("wrong-port", T0 + 0.5)
    rec.record_key("2", T0 + 0.5)
    rec.emit_many(events[:3])
    rec.record_chain(chain_tree(0, endpoint_port=12346), T0 + 0.8)
    rec.record_chain(chain_tree(0, endpoint_port=12346), T0 + 0.9)  # unchanged: not written again
    for event in events[3:]:
        rec.emit(event)
    rec.record_chain(chain_tree(4, endpoint_port=12346), T0 + 3.0)
    rec.close()
    return events


def assert_same_events(got: list[Event], want: list[Event]) -> None:
    assert got == want
    # Raw frames and manifests are compare=False on the events; check them explicitly.
    assert [getattr(e, "raw", None) for e in got] == [getattr(e, "raw", None) for e in want]
    assert [getattr(e, "manifest", None) for e in got] == [
        getattr(e, "manifest", None) for e in want
    ]


@pytest.mark.parametrize("name", ["talk.svcrec", "talk.svcrec.gz"])
def test_round_trip_keeps_events_chains_objects_scenarios_and_keys(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    events = write_sample(path)
    rec = load_recording(path)
    assert rec.header["format"] == "svcwatch-recording" and rec.header["version"] == 2
    assert rec.session_kind == "lab" and rec.meta["title"] == "lab t0001"
    assert_same_events(rec.events, events)
    assert [(ts, tree) for ts, tree in rec.chains] == [
        (T0 + 0.2, chain_tree(0)),
        (T0 + 0.8, chain_tree(0, endpoint_port=12346)),
        (T0 + 3.0, chain_tree(4, endpoint_port=12346)),
    ]
    assert rec.objects == [(T0 + 0.1, *seed_objects())]
    assert rec.scenarios == [(T0 + 0.5, "wrong-port")] and rec.keys == [(T0 + 0.5, "2")]
    assert rec.start_ts == T0
    assert rec.complete and rec.damage is None and rec.warning() is None


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    write_sample(tmp_path / "a.svcrec.gz")
    renamed = tmp_path / "a.svcrec"
    (tmp_path / "a.svcrec.gz").rename(renamed)
    assert gzip.open(renamed).read(1) == b"{"
    assert len(load_recording(renamed).events) == len(scripted_stream())


def test_packets_are_stored_as_base64_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.svcrec"
    events = write_sample(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["format"] == "svcwatch-recording" and lines[-1] == {
        "rec": "end",
        "ts": lines[-1]["ts"],
        "events": len(events),
    }
    first_packet = next(
        r["event"] for r in lines if r.get("rec") == "event" and r["event"]["type"] == "PacketEvent"
    )
    assert (
        first_packet["iface"] == "eth0"
        and first_packet["direction"] == "in"
        and first_packet["raw"]
    )


def cut_lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_a_file_cut_mid_line_replays_up_to_the_cut_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "talk.svcrec"
    events = write_sample(path)
    lines = cut_lines(path)
    # Keep the header, 5 records, and half of the 7th line.
    kept = lines[:6] + [lines[6][: len(lines[6]) // 2]]
    path.write_text("".join(kept))
    rec = load_recording(path)
    n_events = sum(1 for line in lines[1:6] if '"rec":"event"' in line)
    assert_same_events(rec.events, events[:n_events])
    assert rec.warning() == f"talk.svcrec: line 7: truncated JSON; replayed {n_events} events"


def test_a_garbled_line_stops_the_replay_there(tmp_path: Path) -> None:
    path = tmp_path / "talk.svcrec"
    write_sample(path)
    lines = cut_lines(path)
    lines[9] = lines[9][:20] + "\x00\x00garbage" + lines[9][20:]
    path.write_text("".join(lines))
    rec = load_recording(path)
    assert rec.damage is not None and rec.damage.line == 10 and rec.damage.reason == "corrupt JSON"
    assert rec.warning() == f"talk.svcrec: line 10: corrupt JSON; replayed {len(rec.events)} events"
    assert not rec.complete


def test_a_cut_gzip_file_keeps_what_was_flushed(tmp_path: Path) -> None:
    path = tmp_path / "talk.svcrec.gz"
    events = write_sample(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    rec = load_recording(path)
    assert 0 < len(rec.events) < len(events)
    assert_same_events(rec.events, events[: len(rec.events)])
    assert rec.damage is not None and "replayed" in (rec.warning() or "")


def test_record_kinds_from_a_newer_minor_revision_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "talk.svcrec"
    events = write_sample(path)
    lines = cut_lines(path)
    lines.insert(3, json.dumps({"rec": "theme", "ts": T0, "name": "svcwatch-light"}) + "\n")
    path.write_text("".join(lines))
    rec = load_recording(path)
    assert rec.skipped == 1 and rec.damage is None
    assert_same_events(rec.events, events)


def test_a_version_1_recording_reads_with_the_version_2_names(tmp_path: Path) -> None:
    """Version 1 said "backend" for the session kind and for the iptables flavour."""
    path = tmp_path / "old.svcrec"
    events = write_sample(path)
    old = [
        line.replace('"session_kind"', '"backend"').replace('"proxy_backend"', '"backend"')
        for line in cut_lines(path)
    ]
    old[0] = old[0].replace('"version": 2', '"version": 1')
    path.write_text("".join(old))
    rec = load_recording(path)
    assert rec.header["version"] == 1 and rec.session_kind == "lab" and rec.damage is None
    assert_same_events(rec.events, events)  # RulesSynced.proxy_backend came from "backend"
    assert rec.chains[0][1] == chain_tree(0) and chain_tree(0).proxy_backend == "iptables-nft"


def test_the_bundled_demo_recording_replays_with_the_new_names() -> None:
    rec = load_recording(DEMO_RECORDING)
    assert rec.session_kind == "lab" and rec.warning() is None
    synced = [e for e in rec.events if isinstance(e, RulesSynced)]
    assert synced and {e.proxy_backend for e in synced} == {"iptables-nft"}
    assert {tree.proxy_backend for _, tree in rec.chains} == {"iptables-nft"}


def test_a_future_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.svcrec"
    path.write_text(json.dumps({"format": "svcwatch-recording", "version": 3}) + "\n")
    with pytest.raises(
        InputError, match=r"new.svcrec: recording format version 3 is newer .* upgrade svcwatch"
    ):
        load_recording(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello world\n",
        b'{"format": "something-else", "version": 1}\n',
        b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00",
    ],
    ids=["empty", "text", "other-json", "pcapng"],
)
def test_a_file_that_is_not_a_recording_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.svcrec"
    path.write_bytes(content)
    with pytest.raises(InputError, match="x.svcrec: not a svcwatch recording"):
        load_recording(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.svcrec: no such recording file"):
        load_recording(tmp_path / "nope.svcrec")


CRASHING_RECORDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from svcwatch.model.events import Notice
    from svcwatch.record.writer import Recorder
    rec = Recorder(Path(sys.argv[1]), session_kind="lab")
    i = 0
    while True:  # until killed: a session that crashes mid-stream
        rec.emit(Notice(ts=time.time(), kind="info", message=f"event {i}"))
        i += 1
        time.sleep(0.002)
    """
)


@pytest.mark.parametrize("name", ["crash.svcrec", "crash.svcrec.gz"])
def test_a_killed_recorder_leaves_a_replayable_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RECORDER, str(path)], cwd=Path(__file__).parents[2]
    )
    try:
        # Wait (no time limit asserted) until the writer thread has flushed a few hundred events.
        while not path.exists() or len(_readable_events(path)) < 200:
            assert proc.poll() is None, "the recorder process died on its own"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rec = load_recording(path)
    assert len(rec.events) >= 200
    assert [e.text() for e in rec.events] == [f"event {i}" for i in range(len(rec.events))]
    assert not rec.complete and rec.warning() is not None


def _readable_events(path: Path) -> list[Event]:
    try:
        return load_recording(path).events
    except InputError:  # the header is not flushed yet
        return []


def test_packets_keep_link_type_and_direction(tmp_path: Path) -> None:
    path = tmp_path / "sll2.svcrec"
    sll2 = packet(T0, "eth0", "out", "10.0.0.1", "10.0.0.2", 1, 2, "S", sll2=True)
    rec = Recorder(path, session_kind="cluster")
    rec.emit(sll2)
    rec.close()
    (got,) = load_recording(path).events
    assert isinstance(got, PacketEvent) and (got.linktype, got.direction, got.raw) == (
        276,
        "out",
        sll2.raw,
    )


def test_the_fast_packet_encoding_matches_the_generic_one() -> None:
    sample = packet(T0, "eth0", "in", "10.0.0.1", "10.0.0.2", 1, 2, "S")
    odd = replace(
        sample, raw=None, node='node "1"', detail="ä\\x", length=5, sport=None, dport=None
    )
    for event in (sample, odd):
        generic = to_dict(event, include_raw=True)
        del generic["text"], generic["source"]
        line = packet_line(event)
        assert line.endswith("}\n") and "\n" not in line[:-1]
        assert json.loads(line) == {"rec": "event", "event": generic}
