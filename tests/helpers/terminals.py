"""Real terminals for tests: a program on a fresh pseudo-terminal, which the test can close.

Closing the master side is exactly what a terminal emulator, tmux or sshd does when its window,
pane or connection goes away: the kernel hangs the terminal up (SIGHUP to the session's
controlling process, EIO on every later read or write). `controlling=False` opens the pty without
making it the controlling terminal, so no SIGHUP comes and only the EIO tells the program.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Sequence


class PtyProgram:
    """A program running on its own pty (80x24 unless told), its output kept as bytes."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        controlling: bool = True,
        size: tuple[int, int] = (80, 24),
    ) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))

        def become_session_leader() -> None:
            os.setsid()
            if controlling:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color"},
            preexec_fn=become_session_leader,  # noqa: PLW1509 - only setsid and an ioctl
            close_fds=True,
        )
        os.close(slave)
        self.output = bytearray()
        self.closed = False

    def pump(self, seconds: float) -> None:
        """Read what the program draws for `seconds` (a terminal that reads, as a real one)."""
        end = time.monotonic() + seconds
        while not self.closed and time.monotonic() < end:
            wait = max(0.0, min(0.05, end - time.monotonic()))
            ready, _, _ = select.select([self.master], [], [], wait)
            if ready:
                try:
                    self.output += os.read(self.master, 1 << 16)
                except OSError:  # the program closed its side: nothing more to read
                    return

    def close_terminal(self) -> None:
        """The window, pane or connection goes away."""
        if not self.closed:
            self.closed = True
            os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close_terminal()


def pump_all(programs: Sequence[PtyProgram], seconds: float) -> None:
    """Keep every program's terminal read for `seconds` (they draw concurrently)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for program in programs:
            program.pump(0.01)


def wait_all_gone(programs: Sequence[PtyProgram], guard: float) -> list[PtyProgram]:
    """Wait up to `guard` seconds for every program to end; the ones still running."""
    end = time.monotonic() + guard
    alive = list(programs)
    while alive and time.monotonic() < end:
        alive = [p for p in alive if p.proc.poll() is None]
        time.sleep(0.05)
    return alive
