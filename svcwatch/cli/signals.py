"""Stop signals at any moment: SIGTERM, SIGINT and SIGHUP end svcwatch cleanly whenever they come.

A signal may arrive during imports, while flags are parsed, while a lab is built, while the
dashboard draws, or while the lab is torn down. Whenever it comes: no traceback, nothing left
behind, and the exit status says what happened. Two phases:

- Nothing running yet (flags, preflight, `lab up`'s build): the first signal raises StopRequested
  in the main thread, so every `finally`/`except BaseException` on the way out undoes what was
  half built; main() then exits 128+N quietly. Later signals never raise again: a second Ctrl-C
  must not interrupt the cleanup of the first.
- A session runs (`during`): a signal never raises into the middle of a build or a teardown. It
  asks the front end to stop as `q` or the end of --duration would (`on_request`, a flag read on
  the front end's own loop), and arms a watchdog: if the process is still there GRACE seconds
  later, or a second signal comes, the watchdog runs the teardown itself (the session's guard
  makes it wait for one already running, and never run twice) and exits 128+N. So a stuck UI, a
  dead terminal or a wedged thread can delay the end, but never prevent it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE = 15.0  # seconds the usual way out may take (a lab build in progress, then its teardown)


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived before anything was running; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(signum: int) -> int:
    """The shell's convention for "ended by signal N": 128 + N (SIGTERM 143, SIGINT 130)."""
    return 128 + signum


class Shutdown:
    """The process's one handler of stop signals (see the module docstring)."""

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self.signum: int | None = None
        self._on_request: Callable[[int], None] | None = None
        self._teardown: Callable[[], None] = lambda: None
        self._hurry = threading.Event()
        self._watchdog: threading.Thread | None = None

    def install(self) -> dict[int, Any]:
        """Handle the stop signals from now on; returns the handlers they had (for `restore`)."""
        return {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}

    @staticmethod
    def restore(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.request(signum)
        if first and self._on_request is None:
            raise StopRequested(signum)

    def request(self, signum: int, *, hurry: bool = False) -> bool:
        """Record a stop (from the handler, or from a thread that saw the terminal go away);
        True for the first. `hurry`: tear down and exit now, without waiting for the front end
        (nobody can see it any more). Safe from any thread; never raises."""
        first = self.signum is None
        if first:
            self.signum = signum
            if self._on_request is not None:
                self._on_request(signum)
            self._arm()
        if hurry or not first:
            self._hurry.set()
        return first

    def during(self, teardown: Callable[[], None], on_request: Callable[[int], None]) -> None:
        """From now on a signal calls `on_request` instead of raising, and the watchdog, if it
        fires, calls `teardown` (which must be safe to call twice and from another thread)."""
        self._teardown, self._on_request = teardown, on_request
        if self.signum is not None:  # one came in between: pass it on now
            on_request(self.signum)

    def _arm(self) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._force_after_grace, name="svcwatch-shutdown", daemon=True
            )
            self._watchdog.start()

    def _force_after_grace(self) -> None:
        self._hurry.wait(self.grace)
        try:
            self._teardown()
        finally:
            assert self.signum is not None
            os._exit(exit_status(self.signum))


_PROCESS: Shutdown | None = None


def process_shutdown(*, fresh: bool = False) -> Shutdown:
    """The process's one Shutdown; main() starts each run with a `fresh` one and installs its
    handlers (so an in-process caller, like a test, keeps its own before and after)."""
    global _PROCESS
    if _PROCESS is None or fresh:
        _PROCESS = Shutdown()
    return _PROCESS


class TerminalWatch:
    """Notices the controlling terminal going away, even when no signal says so.

    A closed pty does not always deliver SIGHUP to us (a shell in between, a race with the
    hangup), and a hung-up terminal answers every ioctl with EIO. So a thread asks the terminal
    for its attributes ten times a second; once it fails, standard output and error are pointed
    at /dev/null (nothing can be shown any more, and every later write, down to the interpreter's
    last flush, then succeeds harmlessly) and `on_gone` runs: the dashboard uses a hurried
    shutdown (teardown, then exit), as nobody is left to watch it stop.
    """

    def __init__(self, on_gone: Callable[[], object], fd: int = 0, interval: float = 0.1) -> None:
        self.on_gone, self.fd, self.interval = on_gone, fd, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="svcwatch-tty", daemon=True)

    def start(self) -> None:
        """Watch from now on (a terminal already gone is noticed at the first look)."""
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        import termios  # POSIX only, like the terminal it watches

        while not self._stopped.is_set():
            try:
                termios.tcgetattr(self.fd)
            except (termios.error, OSError):
                break
            self._stopped.wait(self.interval)
        else:
            return
        _to_devnull((1, 2))
        self.on_gone()


def _to_devnull(fds: tuple[int, ...]) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)
