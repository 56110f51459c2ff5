"""A recorded lab run of the four scenarios replays to the same stream and exports real RSTs.

`svcwatch run --record F --json` runs on a real lab while another process switches the scenario
(happy -> wrong-port -> wrong-ip -> mixed) as soon as the previous one has shown itself. The
replay of F, headless, must give back the stream `run` printed; F's packets exported to pcapng
must open in tshark with the lab's interface names, and the wrong-port RSTs must be found by a
display filter.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from svcwatch import netns
from svcwatch.model.events import PacketEvent, to_dict
from svcwatch.record.reader import load_recording
from svcwatch.session.replay import REPLAY_ORIGIN, ReplaySession
from tests.helpers.sinks import CollectingSink
from tests.helpers.tshark import tshark

pytestmark = pytest.mark.lab

WAIT = 60.0  # a guard against hangs, never an assertion about speed


@dataclass
class RecordedRun:
    name: str
    env: dict[str, str]
    recording: Path
    printed: list[dict[str, Any]]  # what `svcwatch run --json` printed


def svcwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "svcwatch", *args]


def next_scenario(printed: list[dict[str, Any]], current: str, since: int) -> str | None:
    """The scenario to switch to once `current` has shown its symptom in printed[since:]."""
    recent = printed[since:]
    if current == "happy" and any(e["kind"] == "echo-ok" for e in recent):
        return "wrong-port"
    if current == "wrong-port" and any(e.get("error") == "connection refused" for e in recent):
        return "wrong-ip"
    if current == "wrong-ip" and any(
        e["kind"] == "io-error" and e.get("error") != "connection refused" for e in recent
    ):
        return "mixed"
    return None


def mixed_has_shown(printed: list[dict[str, Any]], since: int) -> bool:
    recent = printed[since:]
    return any(e["kind"] == "echo-ok" for e in recent) and any(
        e["kind"] == "io-error" for e in recent
    )


def drive(proc: subprocess.Popen[str], name: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """Read the run's JSON lines, switching scenarios from another process as each one shows."""
    assert proc.stdout is not None
    printed: list[dict[str, Any]] = []
    current, since = "happy", 0
    for line in proc.stdout:
        printed.append(json.loads(line))
        if current == "mixed":
            if mixed_has_shown(printed, since):
                proc.send_signal(signal.SIGTERM)  # run stops cleanly: the lab goes, the file closes
                current = "done"
            continue
        following = next_scenario(printed, current, since)
        if following:
            done = subprocess.run(
                svcwatch("lab", "scenario", following, "--name", name),
                env=env,
                capture_output=True,
                text=True,
                timeout=WAIT,
            )
            assert done.returncode == 0, done.stderr
            current, since = following, len(printed)
    assert proc.wait(timeout=WAIT) == 0
    assert current == "done", f"the run ended in scenario {current}"
    return printed


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedRun]:
    tmp = tmp_path_factory.mktemp("record")
    name = "t" + secrets.token_hex(3)[:5]
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(tmp / "state")}
    recording = tmp / "run.svcrec.gz"
    argv = svcwatch(
        "run",
        "--json",
        "--name",
        name,
        "--pods",
        "2",
        "--interval",
        "0.3",
        "-s",
        "happy",
        "-d",
        "90",
        "--record",
        str(recording),
    )
    try:
        with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) as proc:
            try:
                printed = drive(proc, name, env)
            finally:
                if proc.poll() is None:
                    proc.kill()
        yield RecordedRun(name, env, recording, printed)
    finally:
        subprocess.run(
            svcwatch("lab", "down", "--name", name), env=env, capture_output=True, timeout=WAIT
        )
        assert not [n for n in netns.list_names() if n.startswith(f"svcwatch-{name}-")]


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


def test_the_recording_holds_exactly_the_stream_run_printed(recorded_run: RecordedRun) -> None:
    rec = load_recording(recorded_run.recording)
    assert rec.complete and rec.warning() is None
    assert canonical([to_dict(e) for e in rec.events]) == canonical(recorded_run.printed)
    assert [name for _, name in rec.scenario_starts()] == [
        "happy",
        "wrong-port",
        "wrong-ip",
        "mixed",
    ]
    packets = [e for e in rec.events if isinstance(e, PacketEvent)]
    assert packets and all(p.raw for p in packets)


def test_a_headless_replay_emits_the_recorded_stream(recorded_run: RecordedRun) -> None:
    rec = load_recording(recorded_run.recording)
    session = ReplaySession(rec, speed=math.inf)
    sink = CollectingSink()
    session.start(sink)
    assert session.wait_finished(WAIT)
    session.stop()
    replayed = [e for e in sink.snapshot() if getattr(e, "origin", None) != REPLAY_ORIGIN]
    assert replayed == rec.events
    assert [getattr(e, "raw", None) for e in replayed] == [
        getattr(e, "raw", None) for e in rec.events
    ]


def test_replay_json_prints_what_run_printed(recorded_run: RecordedRun) -> None:
    done = subprocess.run(
        svcwatch("replay", "--json", "--speed", "max", str(recorded_run.recording)),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert canonical([json.loads(line) for line in done.stdout.splitlines()]) == canonical(
        recorded_run.printed
    )


def test_a_scenario_jump_shows_that_scenarios_recorded_chain_and_slice(
    recorded_run: RecordedRun,
) -> None:
    session = ReplaySession(recorded_run.recording, speed=1.0)
    session.pause()
    session.request_scenario("wrong-port")
    assert session.current_scenario() == "wrong-port"
    session.clock.seek(
        min(ts for ts, name in session.recording.scenario_starts() if name == "wrong-ip") - 0.01
    )
    assert session.current_scenario() == "wrong-port"  # the last moment before wrong-ip
    assert session.current_slice().ports[0].port == 12346
    dnats = [
        r.dnat_to for rules in session.read_chain().chains.values() for r in rules if r.dnat_to
    ]
    assert dnats == ["10.42.0.142:12346"]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
def test_the_exported_pcapng_shows_the_lab_interfaces_and_the_wrong_port_rsts(
    recorded_run: RecordedRun, tmp_path: Path
) -> None:
    out = tmp_path / "run.pcapng"
    done = subprocess.run(
        svcwatch("export", str(recorded_run.recording), "-o", str(out)),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    packets = [
        e for e in load_recording(recorded_run.recording).events if isinstance(e, PacketEvent)
    ]

    def fields(*args: str) -> list[list[str]]:
        return tshark(out, "-T", "fields", *args, timeout=WAIT)

    assert [row[0] for row in fields("-e", "frame.interface_name")] == [p.iface for p in packets]
    rsts = fields("-Y", "tcp.flags.reset==1", "-e", "frame.interface_name", "-e", "tcp.srcport")
    echo_veth = {p.iface for p in packets if p.iface.startswith("veth") and p.src == "10.42.0.142"}
    assert {(iface, port) for iface, port in rsts} == {
        ("eth0", "31234"),
        ("cni0", "12346"),
        *((veth, "12346") for veth in echo_veth),
    }
    assert len(rsts) == sum("RST" in p.flags for p in packets)
