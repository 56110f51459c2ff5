"""Several svcwatch processes on one lab: who tears it down, who is told, and nobody killed.

Real processes (`svcwatch run`, the dashboard in tmux), real signals, the real kernel: each test
reads what a user would read (the exit line, the stream, the screen) and what is left in
`ip netns list`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.tmux import Terminal, tmux_terminal
from tests.lab.conftest import SVCWATCH, lab_namespaces, lab_processes

pytestmark = pytest.mark.lab

PODS = ["--pods", "1"]
DEADLINE = 60.0


def svcwatch(state: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(state)}
    return subprocess.run(
        [SVCWATCH, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


class Stream:
    """A long-running `svcwatch run --plain` whose output we read as it comes."""

    def __init__(self, state: Path, lab: str, *args: str) -> None:
        env = {**os.environ, "SVCWATCH_STATE_DIR": str(state)}
        self.out = state.parent / f"run-{time.monotonic_ns()}.out"
        with self.out.open("w") as out:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(
                [SVCWATCH, "run", "--plain", "--name", lab, "--interval", "0.3", *PODS, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def text(self) -> str:
        return self.out.read_text()

    def wait_for(self, needle: str, after: int = 0) -> int:
        """Wait until `needle` appears after offset `after`; returns the offset after it."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            at = self.text().find(needle, after)
            if at >= 0:
                return at + len(needle)
            assert self.proc.poll() is None or needle in self.text(), self.text()[-3000:]
            time.sleep(0.1)
        pytest.fail(f"never saw {needle!r}; output:\n{self.text()[-3000:]}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)


@pytest.fixture
def lab_name(lab_name: str, state_root: Path) -> Iterator[str]:
    yield lab_name
    svcwatch(state_root, "lab", "down", "--name", lab_name)
    assert lab_namespaces(lab_name) == [] and lab_processes(lab_name) == []


def test_a_second_run_leaves_the_first_runs_lab_alone(lab_name: str, state_root: Path) -> None:
    first = Stream(state_root, lab_name)
    try:
        first.wait_for("echo-ok")
        second = svcwatch(state_root, "run", "--name", lab_name, *PODS, "-d", "1")
        assert second.returncode == 0, second.stderr
        assert f"lab {lab_name} kept: `svcwatch run` (pid {first.proc.pid}) still uses it" in (
            second.stdout
        )
        assert lab_namespaces(lab_name)
        seen = len(first.text())
        first.wait_for("echo-ok", after=seen)  # the first one still probes a working lab
    finally:
        assert first.interrupt() == 0
    assert f"lab {lab_name} torn down" in first.text()
    assert lab_namespaces(lab_name) == []


def test_quitting_the_first_of_two_sessions_keeps_the_lab_for_the_second(
    lab_name: str, state_root: Path
) -> None:
    first = Stream(state_root, lab_name)
    first.wait_for("echo-ok")
    second = Stream(state_root, lab_name)
    try:
        second.wait_for("echo-ok")
        assert first.interrupt() == 0
        assert "still uses it" in first.text()
        seen = len(second.text())
        second.wait_for("this svcwatch now syncs the lab's rules", after=seen)
        second.wait_for("echo-ok", after=seen)
        assert lab_namespaces(lab_name)
    finally:
        assert second.interrupt() == 0
    assert f"lab {lab_name} torn down" in second.text()
    assert lab_namespaces(lab_name) == []


def test_lab_up_lab_survives_run(lab_name: str, state_root: Path) -> None:
    assert svcwatch(state_root, "lab", "up", "--name", lab_name, *PODS).returncode == 0
    done = svcwatch(state_root, "run", "--name", lab_name, *PODS, "-d", "1")
    assert done.returncode == 0, done.stderr
    assert f"lab {lab_name} kept: it was made by `lab up`" in done.stdout
    assert "echo-ok" in done.stdout and lab_namespaces(lab_name)
    assert svcwatch(state_root, "lab", "status", "--name", lab_name).returncode == 0


def test_lab_down_tells_a_running_session_and_kills_no_svcwatch(
    lab_name: str, state_root: Path
) -> None:
    session = Stream(state_root, lab_name)
    session.wait_for("echo-ok")
    down = svcwatch(state_root, "lab", "down", "--name", lab_name)
    assert down.returncode == 0 and f"lab {lab_name} removed" in down.stdout
    code = session.proc.wait(timeout=30)
    assert code == 2  # not -9: it was told, not killed
    assert f"lab {lab_name} was removed by `svcwatch lab down`" in session.text()
    assert lab_namespaces(lab_name) == []


def test_lab_up_will_not_rebuild_under_a_live_session(lab_name: str, state_root: Path) -> None:
    session = Stream(state_root, lab_name)
    try:
        session.wait_for("echo-ok")
        other = svcwatch(state_root, "lab", "up", "--name", lab_name, "--pods", "3")
        assert other.returncode == 2
        assert f"lab {lab_name} is in use by `svcwatch run` (pid {session.proc.pid})" in (
            other.stderr
        )
        seen = len(session.text())
        session.wait_for("echo-ok", after=seen)
    finally:
        assert session.interrupt() == 0


def test_lab_down_does_not_kill_concurrent_status_or_up(lab_name: str, state_root: Path) -> None:
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(state_root)}
    commands = [["lab", "status"]] * 4 + [["lab", "up", *PODS]]
    for _ in range(3):
        assert svcwatch(state_root, "lab", "up", "--name", lab_name, *PODS).returncode == 0
        racers = [
            subprocess.Popen(
                [SVCWATCH, *command, "--name", lab_name],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
            for command in commands
        ]
        time.sleep(0.3)  # they are inside the lab's namespaces, reading links and rules
        assert svcwatch(state_root, "lab", "down", "--name", lab_name).returncode == 0
        for racer in racers:
            err = racer.communicate(timeout=60)[1].decode()  # waits, and closes its pipes
            code = racer.returncode
            assert code != -signal.SIGKILL, f"lab down killed a concurrent {racer.args!r}"
            assert "internal error" not in err and "Traceback" not in err, err
        svcwatch(state_root, "lab", "down", "--name", lab_name)  # the `lab up` may have won


def test_lab_down_does_not_kill_a_svcwatch_inside_the_labs_namespace(
    lab_name: str, state_root: Path
) -> None:
    """The deterministic case of the race: a svcwatch whose main thread sits in the node."""
    assert svcwatch(state_root, "lab", "up", "--name", lab_name, *PODS).returncode == 0
    visitor = subprocess.Popen(
        [
            str(Path(SVCWATCH).with_name("python")),
            "-c",
            "import sys, time; from svcwatch import netns\n"
            f"with netns.entered('svcwatch-{lab_name}-node'):\n"
            "    print('in', flush=True); time.sleep(20)",
        ],
        stdout=subprocess.PIPE,
    )
    with visitor:  # closes its pipe and waits for it
        try:
            assert visitor.stdout is not None and visitor.stdout.readline() == b"in\n"
            assert svcwatch(state_root, "lab", "down", "--name", lab_name).returncode == 0
            assert visitor.poll() is None, "lab down killed a svcwatch process"
        finally:
            visitor.kill()


@pytest.fixture
def dashboard(lab_name: str, state_root: Path) -> Iterator[Terminal]:
    """`svcwatch --name LAB` in a real terminal (tmux), its exit code printed when it ends."""
    env = f"env -u COLUMNS -u LINES SVCWATCH_STATE_DIR={state_root} TERM=xterm-256color"
    command = (
        f"{env} {SVCWATCH} --name {lab_name} --pods 1 --interval 0.3; "
        "echo SVCWATCH-EXITED=$?; sleep 600"
    )
    with tmux_terminal(command) as terminal:
        yield terminal


def test_second_svcwatch_does_not_tear_down_a_live_dashboards_lab(
    dashboard: Terminal, lab_name: str, state_root: Path
) -> None:
    dashboard.wait_for("scenario: Happy path (1)", "echo-ok")
    run = svcwatch(state_root, "run", "--name", lab_name, *PODS, "-d", "2")
    assert run.returncode == 0, run.stderr
    assert f"lab {lab_name} kept: `svcwatch` (pid" in run.stdout
    assert lab_namespaces(lab_name)
    dashboard.wait_for("Healthy:")  # still probing a working lab
    dashboard.press("q")
    dashboard.wait_for(f"svcwatch: lab {lab_name} torn down", "SVCWATCH-EXITED=0")
    assert lab_namespaces(lab_name) == []


def test_quitting_a_dashboard_keeps_a_lab_made_by_lab_up(
    dashboard: Terminal, lab_name: str, state_root: Path
) -> None:
    # `lab up` while the dashboard runs: the lab is now the user's, and stays after `q`.
    dashboard.wait_for("echo-ok")
    up = svcwatch(state_root, "lab", "up", "--name", lab_name, *PODS)
    assert up.returncode == 0 and "healthy: reusing it" in up.stdout
    dashboard.press("q")
    dashboard.wait_for(f"svcwatch: lab {lab_name} kept: it was kept by `lab up`", "EXITED=0")
    assert lab_namespaces(lab_name)


def test_lab_down_under_a_dashboard_is_said_on_its_screen(
    dashboard: Terminal, lab_name: str, state_root: Path
) -> None:
    dashboard.wait_for("echo-ok")
    down = svcwatch(state_root, "lab", "down", "--name", lab_name)
    assert down.returncode == 0 and lab_namespaces(lab_name) == []
    dashboard.wait_for(f"lab {lab_name} was removed by `svcwatch lab down`", "the lab is at fault")
    dashboard.press("q")
    dashboard.wait_for("SVCWATCH-EXITED=0")


def test_a_killed_svcwatch_does_not_keep_its_lab_alive(lab_name: str, state_root: Path) -> None:
    """A user that died without leaving (SIGKILL) is ignored: the next one to quit tears down."""
    killed = Stream(state_root, lab_name)
    killed.wait_for("echo-ok")
    killed.proc.kill()
    killed.proc.wait(timeout=30)
    users = json.loads((state_root / "labs" / lab_name / "users.json").read_text())
    assert [u["pid"] for u in users] == [killed.proc.pid]  # still recorded, but dead
    done = svcwatch(state_root, "run", "--name", lab_name, *PODS, "-d", "1")
    assert done.returncode == 0, done.stderr
    assert f"lab {lab_name} torn down" in done.stdout
    assert lab_namespaces(lab_name) == [] and lab_processes(lab_name) == []


def test_concurrent_runs_on_one_lab_leave_nothing_behind(lab_name: str, state_root: Path) -> None:
    """Three `svcwatch run`s started at once: one builds, the others wait on the lab's lock and
    reuse it; whichever quits last tears it down. None fails, none is killed."""
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(state_root)}
    runs = [
        subprocess.Popen(
            [SVCWATCH, "run", "--name", lab_name, *PODS, "-d", str(duration)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for duration in (1, 2, 3)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "echo-ok" in out
    assert any(f"lab {lab_name} torn down" in out for out, _ in outputs)
    assert lab_namespaces(lab_name) == [] and lab_processes(lab_name) == []


def test_a_change_left_unsynced_by_a_killed_session_is_synced_by_the_next(
    lab_name: str, state_root: Path
) -> None:
    first = Stream(state_root, lab_name, "--sync-delay", "30")  # it will never get to sync
    first.wait_for("echo-ok")
    second = Stream(state_root, lab_name)
    try:
        seen = second.wait_for("echo-ok")
        switched = svcwatch(state_root, "lab", "scenario", "wrong-port", "--name", lab_name)
        assert f"svcwatch (pid {first.proc.pid}) controls this lab" in switched.stdout
        second.wait_for("scenario=wrong-port", after=seen)
        first.proc.kill()  # killed inside its --sync-delay: the rules still say port 12345
        first.proc.wait(timeout=30)
        at = second.wait_for("this svcwatch now syncs the lab's rules", after=seen)
        second.wait_for("connection refused", after=at)  # wrong-port's rules are in the kernel
        assert "iptables  default/socat synced" in second.text()[seen:]  # a sync, no "repair"
        assert "was broken" not in second.text()
    finally:
        assert second.interrupt() == 0
    assert f"lab {lab_name} torn down" in second.text()
    assert lab_namespaces(lab_name) == []
