"""Every writer fails loudly: a recording or a pcap that stops is said, never taken for good.

A real 64 KiB tmpfs fills within a second of a lab session; a killed writer process is a real
SIGKILL. The session goes on (packets keep arriving), the stream says which writer stopped and
why in one line, the lab is torn down as usual, and the exit status is 1 with that line on stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import stream_helpers
from tests.lab.stream_helpers import Lab

pytestmark = pytest.mark.lab

lab = stream_helpers.lab  # a unique lab name, torn down whatever happens


@pytest.fixture
def full_disk() -> Iterator[Path]:
    """A real 64 KiB tmpfs, unmounted again whatever happens."""
    where = Path(tempfile.mkdtemp(prefix="svcwatch-tiny-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def stream(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def assert_stopped_loudly(done: subprocess.CompletedProcess[str], origin: str, why: str) -> None:
    events = stream(done)
    errors = [e for e in events if e["kind"] == "error" and e["source"] == origin]
    assert len(errors) == 1 and why in str(errors[0]["message"]), errors
    at = events.index(errors[0])
    assert any(e["kind"] == "tcp-packet" for e in events[at:]), "packets stopped with the writer"
    assert str(events[-1]["message"]).endswith("torn down")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("svcwatch: error: ") and why in lines[0]


def test_record_onto_full_disk_says_so_and_exits_nonzero(lab: Lab, full_disk: Path) -> None:
    target = full_disk / "talk.svcrec"
    done = lab.run(*lab.stream_args("-d", "4", "--interval", "0.05", "--record", str(target)))
    assert_stopped_loudly(done, "recorder", "recording stopped: No space left on device")


def test_pcap_onto_filling_disk_says_so_once_and_packets_keep_showing(
    lab: Lab, full_disk: Path
) -> None:
    target = full_disk / "talk.pcapng"
    done = lab.run(*lab.stream_args("-d", "4", "--interval", "0.05", "--pcap", str(target)))
    assert_stopped_loudly(done, "pcap", "pcap stopped after")
    assert "No space left on device" in done.stderr


def test_killed_recording_writer_says_so_and_exits_nonzero(lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "talk.svcrec.gz"
    argv = lab.argv(*lab.stream_args("-d", "5", "--record", str(target)))
    with subprocess.Popen(
        argv, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        writer = wait_for_writer(proc.pid)
        os.kill(writer, signal.SIGKILL)
        out, err = proc.communicate(timeout=90)
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    assert_stopped_loudly(done, "recorder", "the writer process was killed (SIGKILL)")


def wait_for_writer(parent: int) -> int:
    """The recorder's writer process: the child of `parent` running the writer module."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            try:
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (proc / "cmdline").read_bytes()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == parent and b"svcwatch.record.writer_process" in cmdline:
                time.sleep(1.0)  # let the session start streaming first
                return int(proc.name)
        time.sleep(0.05)
    pytest.fail("the writer process never started")


def test_a_stray_byte_in_the_stored_slice_is_reported_and_the_watch_goes_on(lab: Lab) -> None:
    """A hand edit saved as Latin-1 used to stop the running svcwatch's watcher for good, while
    `lab scenario` went on promising that it "will sync the rules". Now the stream says what is
    wrong with the file, the next scenario is synced, and `lab scenario` says so only once the
    kernel shows it."""
    from svcwatch.lab.instances import lab_dir

    argv = lab.argv(*lab.stream_args("-d", "30"))
    with subprocess.Popen(argv, env=lab.env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        lines = iter(proc.stdout)
        next(line for line in lines if json.loads(line)["kind"] == "echo-ok")
        stored = lab_dir(lab.state, lab.name) / "endpointslice.yaml"
        stored.write_bytes(stored.read_bytes().replace(b"socat", b"soc\xe4t", 1))
        seen = next(json.loads(line) for line in lines if "not UTF-8" in line)
        assert seen["kind"] == "warning" and "endpointslice.yaml" in seen["message"]
        switched = lab.run("lab", "scenario", "wrong-port", "--name", lab.name)
        assert switched.returncode == 0, switched.stderr
        assert "rules synced by svcwatch (pid" in switched.stdout
        synced = next(e for e in map(json.loads, lines) if e["type"] == "RulesSynced")
        assert synced["added"] and synced["removed"], synced  # wrong-port: a new KUBE-SEP chain
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_dashboard_recording_onto_full_disk_shows_failed_and_exits_1_after_q(
    lab: Lab, full_disk: Path
) -> None:
    from tests.helpers.terminals import PtyProgram, pump_all

    argv = lab.argv(
        "--name", lab.name, "--pods", "1", "--interval", "0.05",
        "--record", str(full_disk / "talk.svcrec"),
    )  # fmt: skip
    program = PtyProgram(argv, lab.env, size=(200, 50))
    try:
        deadline = time.monotonic() + 60
        while b"FAILED]" not in program.output:  # the header stops claiming "recording"
            assert time.monotonic() < deadline, "the header never said the recording failed"
            pump_all([program], 0.2)
        os.write(program.master, b"q")
        while program.proc.poll() is None and time.monotonic() < deadline + 60:
            pump_all([program], 0.1)
        pump_all([program], 0.3)
    finally:
        program.kill()
    screen = program.output.decode(errors="replace")
    assert program.proc.returncode == 1
    assert "Traceback" not in screen
    assert "svcwatch: error: " in screen and "recording stopped: No space left on device" in screen
