"""The recorder's writer process: every packet reaches the file, and it never outlives the session.

The recorder hands packets to a child process as tuples and that process writes the JSON lines,
so these tests hold what a user relies on: a burst comes back complete and in order, the packet
lines are the ones `format.packet_line` defines, Ctrl-C and SIGKILL of the session leave a
replayable file and no process behind, and a failing disk or writer is reported, not raised.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.model.events import Event, Notice, PacketEvent
from svcwatch.record.format import packet_line
from svcwatch.record.reader import load_recording
from svcwatch.record.writer import Recorder
from svcwatch.record.writer_process import PACKET_FIELDS, packet_lines
from tests.unit.record_samples import T0, packet, scripted_stream

ROOT = Path(__file__).resolve().parents[2]
GUARD = 60.0  # seconds: a guard against hangs, never an assertion about speed


def burst(count: int) -> list[PacketEvent]:
    """`count` distinct packets on the three interfaces, as a capture batch holds them."""
    sample = packet(T0, "eth0", "in", "192.168.97.1", "192.168.97.3", 40000, 31234, "S")
    assert sample.raw is not None
    return [
        replace(
            sample,
            ts=T0 + i / 1000,
            iface=("eth0", "cni0", "veth1a2b3c")[i % 3],
            sport=40000 + i % 20000,
            raw=sample.raw + i.to_bytes(4, "big"),
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("name", ["burst.svcrec", "burst.svcrec.gz"])
def test_close_writes_every_packet_of_a_burst_in_order(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    packets, others = burst(30_000), scripted_stream()
    rec = Recorder(path, session_kind="lab")
    for i in range(0, len(packets), 1000):  # capture batches, with single events in between
        rec.emit_many(packets[i : i + 1000])
        rec.emit(others[(i // 1000) % len(others)])
    rec.close()
    want = []
    for i in range(0, len(packets), 1000):
        want += [*packets[i : i + 1000], others[(i // 1000) % len(others)]]
    got = load_recording(path)
    assert got.complete and got.damage is None and rec.error is None
    assert got.events == want
    assert [getattr(e, "raw", None) for e in got.events] == [getattr(e, "raw", None) for e in want]
    assert rec.events_written == len(want)


def test_batched_packet_lines_equal_the_documented_packet_line() -> None:
    sample = packet(T0, "eth0", "in", "10.0.0.1", "10.0.0.2", 1, 2, "S")
    odd = replace(sample, raw=None, node='node "1"', detail="ä\\x", sport=None, dport=None)
    sll2 = packet(T0 + 0.25, "eth0", "out", "10.0.0.1", "10.0.0.2", 1, 2, "RA", sll2=True)
    for batch in ([sample, sll2], [sample, odd, sll2], [odd]):
        rows = [tuple(getattr(e, name) for name in PACKET_FIELDS) for e in batch]
        assert packet_lines(rows) == "".join(map(packet_line, batch))


def _writer_gone(pid: int) -> bool:
    """The process is gone (or a zombie waiting for a reaper that is not us)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


SESSION = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from svcwatch.model.events import Notice
    from svcwatch.record.writer import Recorder
    rec = Recorder(Path(sys.argv[1]), session_kind="lab")
    print(rec.writer_pid, flush=True)
    try:
        i = 0
        while True:  # a live session until interrupted or killed
            rec.emit(Notice(ts=time.time(), kind="info", message=f"event {i}"))
            i += 1
            time.sleep(0.002)
    except KeyboardInterrupt:
        rec.close()
    """
)


def run_session(path: Path) -> tuple[subprocess.Popen[str], int]:
    """The session in its own process group (as a terminal runs it), once events reach `path`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SESSION, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    writer_pid = int(proc.stdout.readline())
    proc.stdout.close()  # the session prints nothing else
    deadline = time.monotonic() + GUARD
    while not path.exists() or len(_readable(path)) < 100:
        assert proc.poll() is None and time.monotonic() < deadline, "the session never recorded"
        time.sleep(0.05)
    return proc, writer_pid


def _readable(path: Path) -> list[Event]:
    try:
        return load_recording(path).events
    except Exception:  # the header is not flushed yet  # noqa: BLE001
        return []


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + GUARD
    while not _writer_gone(pid):
        assert time.monotonic() < deadline, f"writer process {pid} outlived its session"
        time.sleep(0.05)


def test_ctrl_c_in_the_terminal_closes_the_recording_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "talk.svcrec.gz"
    proc, writer_pid = run_session(path)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the foreground group
    assert proc.wait(GUARD) == 0
    wait_gone(writer_pid)
    rec = load_recording(path)
    assert rec.complete and rec.warning() is None
    assert [e.text() for e in rec.events] == [f"event {i}" for i in range(len(rec.events))]


def test_a_killed_session_leaves_no_writer_process_and_a_replayable_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.svcrec.gz"
    proc, writer_pid = run_session(path)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(GUARD)
    wait_gone(writer_pid)
    rec = load_recording(path)
    assert len(rec.events) >= 100 and not rec.complete
    assert [e.text() for e in rec.events] == [f"event {i}" for i in range(len(rec.events))]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_reported_on_close_not_raised() -> None:
    rec = Recorder(Path("/dev/full"), session_kind="lab")
    rec.emit_many(burst(100))
    rec.close()
    assert rec.error == "/dev/full: recording stopped: No space left on device"


def test_a_dead_writer_process_is_reported_and_the_session_goes_on(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r.svcrec", session_kind="lab")
    os.kill(rec.writer_pid, signal.SIGKILL)
    for i in range(200):  # the capture keeps emitting: nothing may raise into it
        rec.emit_many(burst(50))
        rec.emit(Notice(ts=T0 + i, kind="info", message="still here"))
    rec.close()
    assert rec.error is not None and "recording stopped" in rec.error


def test_a_killed_writer_is_reported_while_the_session_runs_not_only_at_the_end(
    tmp_path: Path,
) -> None:
    heard: list[str] = []
    rec = Recorder(tmp_path / "r.svcrec", session_kind="lab")
    rec.on_error = heard.append
    os.kill(rec.writer_pid, signal.SIGKILL)
    deadline = time.monotonic() + GUARD
    while not heard:  # the capture keeps emitting; the next hand-over finds the writer gone
        assert time.monotonic() < deadline, "a dead writer was never reported"
        rec.emit_many(burst(50))
        time.sleep(0.02)
    rec.close()
    assert heard == [
        f"{tmp_path / 'r.svcrec'}: recording stopped: the writer process was killed (SIGKILL)"
    ]
    assert rec.error == heard[0]
