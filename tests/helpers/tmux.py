"""A command in a real terminal: a detached tmux session on a private tmux server.

Every tmux command here names the test's own server socket (`tmux -L <unique>`, no config file),
so a test never sees or touches the user's tmux sessions, and at the end it kills only its own
server and removes its socket: two tests never share a server, so neither can race the other's
shutdown ("server exited unexpectedly"). The screen is read with capture-pane, polling until the
words appear (a stuck UI fails after a deadline; no timing is asserted).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DEADLINE = 30.0  # seconds to wait for a screen to show something; a stuck UI fails, not hangs
SESSION = "main"


class Terminal:
    """One detached tmux session on a private server, running one command."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run `tmux ARGS` against this terminal's own server only."""
        argv = ["tmux", "-L", self.socket, "-f", "/dev/null", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", SESSION).stdout

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", SESSION, key, check=True)

    def wait_for(self, *words: str) -> str:
        """The screen once every word is on it; fails with the last screen after DEADLINE."""
        end = time.monotonic() + DEADLINE
        screen = ""
        while time.monotonic() < end:
            screen = self.screen()
            if all(word in screen for word in words):
                return screen
            time.sleep(0.2)
        pytest.fail(f"never saw {words!r} on screen; last screen:\n{screen}")


@contextmanager
def tmux_terminal(command: str, width: int = 200, height: int = 50) -> Iterator[Terminal]:
    """`command` in a `width`x`height` terminal on a new private tmux server, killed at the end."""
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    terminal = Terminal(f"svcwatch-test-{secrets.token_hex(6)}")
    size = ["-x", str(width), "-y", str(height)]
    terminal.tmux("new-session", "-d", "-s", SESSION, *size, command, check=True)
    # Detached windows are sized by the server unless told otherwise; wide lines must fit.
    terminal.tmux("set-option", "-t", SESSION, "window-size", "manual")
    terminal.tmux("resize-window", "-t", SESSION, *size)
    socket_path = terminal.tmux("display-message", "-p", "#{socket_path}").stdout.strip()
    try:
        yield terminal
    finally:
        terminal.tmux("kill-server")
        if socket_path:  # a killed server leaves its socket file behind
            Path(socket_path).unlink(missing_ok=True)
