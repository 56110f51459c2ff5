"""`svcwatch replay --plain/--json` and `svcwatch export` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from svcwatch.model.events import plain_line
from svcwatch.record.writer import Recorder
from tests.unit.record_samples import T0, scripted_stream

ROOT = Path(__file__).resolve().parents[2]


def svcwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svcwatch", *args], capture_output=True, text=True, cwd=ROOT
    )


def record_stream(path: Path) -> Path:
    rec = Recorder(path, session_kind="lab")
    rec.record_start(T0)
    rec.emit_many(scripted_stream())
    rec.close()
    return path


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return record_stream(tmp_path / "talk.svcrec.gz")


def test_replay_plain_prints_the_seed_format_stream(recording: Path) -> None:
    result = svcwatch("replay", "--plain", "--speed", "max", str(recording))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [plain_line(e, T0) for e in scripted_stream()]
    assert (
        "+1.000s  [pktcap]           tcp-packet  "
        "[eth0] 192.168.97.1:40000 -> 192.168.97.3:31234 SYN" in result.stdout
    )


def test_replay_json_prints_one_object_per_event(recording: Path) -> None:
    result = svcwatch("replay", "--json", "--speed", "max", str(recording))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["type"], r["kind"], r["ts"]) for r in rows] == [
        (type(e).__name__, e.kind, e.ts) for e in scripted_stream()
    ]


def test_a_truncated_recording_replays_up_to_the_damage_with_one_warning(tmp_path: Path) -> None:
    path = record_stream(tmp_path / "cut.svcrec")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:8]) + lines[8][:30])
    result = svcwatch("replay", "--plain", "--speed", "max", str(path))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [plain_line(e, T0) for e in scripted_stream()[:6]]
    assert (
        result.stderr
        == "svcwatch: warning: cut.svcrec: line 9: truncated JSON; replayed 6 events\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such recording file"),
        ('{"format": "svcwatch-recording", "version": 9}\n', "recording format version 9 is newer"),
        ("not a recording\n", "not a svcwatch recording"),
    ],
    ids=["missing", "future-version", "not-a-recording"],
)
@pytest.mark.parametrize("command", ["replay", "export"])
def test_unreplayable_files_give_one_line_and_exit_2(
    tmp_path: Path, content: str | None, message: str, command: str
) -> None:
    path = tmp_path / "bad.svcrec"
    if content is not None:
        path.write_text(content)
    args = [command, str(path)] + (
        ["--plain"] if command == "replay" else ["-o", str(tmp_path / "x.pcapng")]
    )
    result = svcwatch(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("svcwatch: error: ")
    assert message in result.stderr and "Traceback" not in result.stderr


def test_replay_needs_a_file_or_demo() -> None:
    result = svcwatch("replay", "--plain")
    assert result.returncode == 2 and "give a FILE (or --demo" in result.stderr


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
def test_export_writes_a_pcapng_that_tshark_reads(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "talk.pcapng"
    result = svcwatch("export", str(recording), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote 12 packets to {out} (interfaces: eth0, cni0, veth1)\n"
    rsts = subprocess.run(
        ["tshark", "-r", str(out), "-Y", "tcp.flags.reset==1"], capture_output=True, text=True
    )
    assert len(rsts.stdout.splitlines()) == 6


def test_the_bundled_demo_replays_all_four_scenarios_without_damage() -> None:
    result = svcwatch("replay", "--demo", "--plain", "--speed", "max")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    scenarios = [line.split("scenario=")[1].split()[0] for line in lines if "endpointslice" in line]
    assert scenarios == ["happy", "wrong-port", "wrong-ip", "mixed"]
    assert any("ACK,RST" in line for line in lines) and any(
        "connection refused" in line for line in lines
    )
    assert any("arp who-has 10.42.0.143" in line for line in lines)  # the wrong IP nobody answers
