"""Dashboards die with their terminal, and a stop signal at any moment leaves nothing behind.

Real terminals (pseudo-terminals this test opens and closes, as a terminal emulator or tmux does),
real signals, real labs. What a user sees: a closed window never leaves a `svcwatch` running on
a deleted pty (nor its lab, nor its root processes); SIGTERM, SIGINT or SIGHUP at any moment of
start-up or shutdown ends it with the shell's 128+N (`run`: 0 once it streams, its documented
end), never a traceback, and every lab it built is gone. Many programs run at once, in batches,
so the moments spread over the whole start-up without the test taking minutes.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcwatch import netns
from tests.helpers.terminals import PtyProgram, pump_all, wait_all_gone
from tests.lab.conftest import lab_processes

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SVCWATCH = str(Path(sys.executable).with_name("svcwatch"))
GUARD = 60.0  # seconds: a guard against hangs, never an assertion about speed
HUP, TERM = 128 + signal.SIGHUP, 128 + signal.SIGTERM
# Killed by the signal before svcwatch's handlers exist (the interpreter still importing): the
# shell shows 128+N too, and nothing was built yet.
BEFORE_HANDLERS = {-signal.SIGHUP: HUP, -signal.SIGTERM: TERM, -signal.SIGINT: 130}


class Labs:
    """Lab names handed out to one test, every one of them removed at the end whatever happens."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.names: list[str] = []

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SVCWATCH_STATE_DIR": str(self.state)}

    def new(self) -> str:
        self.names.append("t" + secrets.token_hex(3)[:5])
        return self.names[-1]

    def left_behind(self) -> list[str]:
        namespaces = netns.list_names()
        mine = [n for n in namespaces if any(n.startswith(f"svcwatch-{x}-") for x in self.names)]
        return mine + [f"echo pid {pid}" for x in self.names for pid in lab_processes(x)]

    def down_all(self) -> None:
        for name in self.names:
            subprocess.run(
                [SVCWATCH, "lab", "down", "--name", name], env=self.env, capture_output=True
            )


@pytest.fixture
def labs(tmp_path: Path) -> Iterator[Labs]:
    created = Labs(tmp_path / "state")
    try:
        yield created
    finally:
        created.down_all()


def status(program: PtyProgram) -> int:
    code = program.proc.returncode
    return BEFORE_HANDLERS.get(code, code)


def no_traceback(program: PtyProgram) -> bool:
    text = program.output.decode(errors="replace")
    return "Traceback" not in text and "internal error" not in text


def spread(count: int, first: float, last: float) -> list[float]:
    return [first + (last - first) * i / (count - 1) for i in range(count)]


def close_terminals_at(programs: list[PtyProgram], delays: list[float]) -> None:
    """Close each program's terminal `delays[i]` seconds after the batch started."""
    start = time.monotonic()
    for program, delay in sorted(zip(programs, delays, strict=True), key=lambda pd: pd[1]):
        pump_all(programs, max(0.0, start + delay - time.monotonic()))
        program.close_terminal()


def test_closing_the_terminal_ends_every_dashboard_and_leaves_no_lab(labs: Labs) -> None:
    """20 dashboards: 10 replays at once, then 10 lab dashboards in two batches. Half of the
    terminals are controlling ones (the kernel sends SIGHUP), half are not (only EIO tells)."""
    batches = [
        ([SVCWATCH, "replay", "--demo"], 10, spread(10, 1.0, 3.0)),
        *[([SVCWATCH, "--name", "LAB", "--pods", "1"], 5, spread(5, 0.5, 5.0))] * 2,
    ]
    ended: list[PtyProgram] = []
    for argv, count, delays in batches:
        programs = [
            PtyProgram(
                [labs.new() if a == "LAB" else a for a in argv], labs.env, controlling=i % 2 == 0
            )
            for i in range(count)
        ]
        close_terminals_at(programs, delays)
        survivors = wait_all_gone(programs, GUARD)
        for program in survivors:
            program.kill()
        assert not survivors, f"{len(survivors)} of {count} outlived their terminal: {argv}"
        ended += programs
    # 129: SIGHUP's 128+N; 2: the terminal was gone before the dashboard began ("needs a
    # terminal"), nothing built.
    assert {status(p) for p in ended} <= {HUP, 2}, [p.proc.returncode for p in ended]
    assert sum(status(p) == HUP for p in ended) >= 15
    assert labs.left_behind() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_every_stop_signal_ends_a_running_replay_dashboard(labs: Labs, sig: int) -> None:
    programs = [PtyProgram([SVCWATCH, "replay", "--demo"], labs.env) for _ in range(3)]
    pump_all(programs, 2.5)  # drawn and replaying
    for program in programs:
        program.proc.send_signal(sig)
    survivors = wait_all_gone(programs, GUARD)
    pump_all(programs, 0.2)
    for program in survivors:
        program.kill()
    assert not survivors
    assert [status(p) for p in programs] == [128 + sig] * 3
    assert all(map(no_traceback, programs))


def test_sigterm_at_any_moment_of_a_dashboard_start_leaves_nothing_and_no_traceback(
    labs: Labs,
) -> None:
    """SIGTERM at 10 moments from 0 to 1.5 s: imports, flags, preflight, the lab build, the
    first frames. Each ends 143 after undoing what it had built."""
    programs = [
        PtyProgram([SVCWATCH, "--name", labs.new(), "--pods", "1"], labs.env) for _ in range(10)
    ]
    signal_at(programs, spread(10, 0.0, 1.5), signal.SIGTERM)
    survivors = wait_all_gone_reading(programs)
    assert not survivors
    assert [status(p) for p in programs] == [TERM] * 10
    assert [no_traceback(p) for p in programs] == [True] * 10
    assert labs.left_behind() == []


def test_sigterm_at_any_moment_of_run_start_and_again_in_its_teardown(labs: Labs) -> None:
    """`svcwatch run` with SIGTERM at 10 moments from 0 to 1.5 s, and a second SIGTERM 0.2 s
    later, in the middle of its teardown: 143 before it streams, 0 after (its end as
    documented), no traceback, no lab."""
    procs = [
        subprocess.Popen(
            [SVCWATCH, "run", "--name", labs.new(), "--pods", "1"],
            env=labs.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    start = time.monotonic()
    for proc, delay in zip(procs, spread(10, 0.0, 1.5), strict=True):
        time.sleep(max(0.0, start + delay - time.monotonic()))
        proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    outcomes = [(BEFORE_HANDLERS.get(code, code), err) for code, err in map(finish, procs)]
    assert {code for code, _ in outcomes} <= {TERM, 0}, outcomes
    assert [err for _, err in outcomes if "Traceback" in err or "error" in err] == []
    assert labs.left_behind() == []


def test_a_signal_just_after_starting_on_an_existing_lab_is_clean(labs: Labs) -> None:
    """The moment the issue names: 0.3-0.5 s after starting a dashboard on a lab `lab up` made.
    No traceback, 143, and the lab is either whole (listed, its namespaces there) or gone."""
    name = labs.new()
    for delay in (0.3, 0.4, 0.5):
        up = subprocess.run(
            [SVCWATCH, "lab", "up", "--name", name, "--pods", "1"],
            env=labs.env,
            capture_output=True,
            text=True,
        )
        assert up.returncode == 0, up.stderr
        program = PtyProgram([SVCWATCH, "--name", name, "--pods", "1"], labs.env)
        signal_at([program], [delay], signal.SIGTERM)
        assert not wait_all_gone_reading([program])
        assert status(program) == TERM and no_traceback(program)
        listed = subprocess.run(
            [SVCWATCH, "lab", "list"], env=labs.env, capture_output=True, text=True
        ).stdout
        assert (name in listed) == bool(labs.left_behind()), (listed, labs.left_behind())


def signal_at(programs: list[PtyProgram], delays: list[float], sig: int) -> None:
    start = time.monotonic()
    for program, delay in zip(programs, delays, strict=True):
        pump_all(programs, max(0.0, start + delay - time.monotonic()))
        program.proc.send_signal(sig)


def wait_all_gone_reading(programs: list[PtyProgram]) -> list[PtyProgram]:
    """Keep reading their terminals (a real one does) until all ended; the ones that did not."""
    end = time.monotonic() + GUARD
    while time.monotonic() < end and any(p.proc.poll() is None for p in programs):
        pump_all(programs, 0.1)
    pump_all(programs, 0.1)
    survivors = [p for p in programs if p.proc.poll() is None]
    for program in programs:
        program.kill()
    return survivors


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        err += "\n(did not end)"
    return proc.returncode, err
