"""`svcwatch replay` in a real terminal: the live dashboard's entry, with --captions, on the demo.

No root, no lab: tmux runs the installed program on the bundled recording and we read the screen,
polling until the words appear (a stuck UI fails after a deadline; no timing is asserted).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.tmux import Terminal, tmux_terminal

SVCWATCH = Path(sys.executable).with_name("svcwatch")


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    if not SVCWATCH.exists():
        pytest.skip("needs the installed svcwatch script")
    command = (
        f"env -u COLUMNS -u LINES TERM=xterm-256color {SVCWATCH} replay --demo --captions "
        "--speed 2; echo SVCWATCH-EXITED=$?; sleep 600"
    )
    with tmux_terminal(command) as terminal:
        yield terminal


def test_replay_runs_the_dashboard_with_captions_and_its_keys(terminal: Terminal) -> None:
    terminal.wait_for("replay of", "replay ▶ 2x", "Happy path:")  # header and caption bar
    terminal.press("Space")
    terminal.wait_for("replay ⏸ paused at 2x")
    terminal.press("]")
    terminal.wait_for("replay ⏸ paused at 5x")
    terminal.press("2")
    terminal.wait_for("scenario: Wrong port (2)", "Wrong port:")
    terminal.press("q")
    terminal.wait_for("SVCWATCH-EXITED=0")
