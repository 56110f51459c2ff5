"""Stop signals at any moment: SIGTERM, SIGINT and SIGHUP end svcwatch cleanly whenever they come.

A signal may arrive during imports, while flags are parsed, while a lab is built, while the
dashboard draws, or while the lab is torn down. Whenever it comes: no traceback, nothing left
behind, and the exit status says what happened. Two phases:

- Nothing running yet (flags, preflight, `lab up`'s build): the first signal raises StopRequested
  in the main thread, so every `finally`/`except BaseException` on the way out undoes what was
  half built; main() then exits 128+N quietly. Later signals never raise again, and never hurry:
  a second Ctrl-C must not interrupt the cleanup of the first.
- A session runs (`during`): a signal never raises into the middle of a build or a teardown. It
  asks the front end to stop as `q` or the end of --duration would (`on_request`, a flag read on
  the front end's own loop), and arms a watchdog: if the process is still there GRACE seconds
  later, or a second signal comes, the watchdog runs the teardown itself (the session's guard
  makes it wait for one already running, and never run twice) and exits 128+N. So a stuck UI, a
  dead terminal or a wedged thread can delay the end, but never prevent it.

A Python signal handler runs between two bytecodes of the main thread, wherever it is, so the
handler here does only what is safe anywhere:
- It never starts a thread or takes a lock: the watchdog thread is started by `install`, and the
  handler wakes it with one `os.write` to a pipe. (Starting it from the handler could deadlock on
  a lock of `threading` the interrupted code holds, and a second signal can run the handler again
  inside the first; an Event's lock would deadlock there.)
- It does not raise where Python would swallow the exception: a weakref callback or `__del__`
  (the interpreter prints "Exception ignored in ..." and carries on) or importlib's own frames
  (which may hold the import lock). There it asks again 10 ms later (SIGALRM), until the main
  thread is somewhere an exception unwinds normally; `during` takes over a stop still pending.
  Seen in CI before this: a SIGTERM that landed in importlib's module-lock callback was
  swallowed, and the process never ended.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
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
        self._hurried = False
        self._raise_pending = False
        self._wake: tuple[int, int] | None = None  # the watchdog's pipe (read end, write end)
        self._watchdog: threading.Thread | None = None

    def install(self) -> dict[int, Any]:
        """Handle the stop signals from now on; returns the handlers they had (for `uninstall`)."""
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)  # a handler must never block on a full pipe
        self._wake = (read_end, write_end)
        self._watchdog = threading.Thread(
            target=self._watch, args=(read_end,), name="svcwatch-shutdown", daemon=True
        )
        self._watchdog.start()
        previous: dict[int, Any] = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._raise_if_safe)
        return previous

    def uninstall(self, previous: dict[int, Any]) -> None:
        """Give the signals their old handlers back and end the watchdog (unless a stop is
        under way: then it still guards the rest of the exit)."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        wake, self._wake = self._wake, None  # first: no writer may pick up a closed descriptor
        if wake is not None:
            os.close(wake[1])  # the watchdog reads end-of-file

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.request(signum)
        if first and self._on_request is None:
            self._raise_pending = True
            self._raise_if_safe(signal.SIGALRM, frame)

    def _raise_if_safe(self, _alarm: int, frame: FrameType | None) -> None:
        """Raise the pending StopRequested here, or ask again in 10 ms (module docstring)."""
        if not self._raise_pending or self._on_request is not None or self.signum is None:
            return
        if _swallows_exceptions(frame):
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        self._raise_pending = False
        raise StopRequested(self.signum)

    def request(self, signum: int, *, hurry: bool = False) -> bool:
        """Record a stop (from the handler, or from a thread that saw the terminal go away);
        True for the first. `hurry`: tear down and exit now, without waiting for the front end
        (nobody can see it any more). Safe from any thread and inside a handler; never raises."""
        first = self.signum is None
        if first:
            self.signum = signum
        if hurry or (not first and self._on_request is not None):
            self._hurried = True
        self._wake_watchdog()
        if first and self._on_request is not None:
            self._on_request(signum)
        return first

    def during(self, teardown: Callable[[], None], on_request: Callable[[int], None]) -> None:
        """From now on a signal calls `on_request` instead of raising, and the watchdog, if it
        fires, calls `teardown` (which must be safe to call twice and from another thread)."""
        self._teardown, self._on_request = teardown, on_request
        self._raise_pending = False  # a stop not raised yet is passed on instead:
        if self.signum is not None:
            on_request(self.signum)

    def _wake_watchdog(self) -> None:
        wake = self._wake
        if wake is None:
            return
        try:
            os.write(wake[1], b"!")
        except OSError:  # full (it is awake already) or closed (main() is ending)
            pass

    def _watch(self, read_end: int) -> None:
        """The watchdog: sleeps until the first request, then gives the usual way out `grace`
        seconds (less if hurried), then tears down and exits 128+N."""
        try:
            if not os.read(read_end, 64) or self.signum is None:
                return  # uninstalled before any stop
            deadline = time.monotonic() + self.grace
            while not self._hurried:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([read_end], [], [], left)
                if ready and not os.read(read_end, 64):  # main() ended: only the clock now
                    time.sleep(max(0.0, deadline - time.monotonic()))
                    break
            try:
                self._teardown()
            finally:
                os._exit(exit_status(self.signum))
        finally:
            os.close(read_end)


# Frames where a raised exception would be swallowed or would leave a lock held: importlib's
# own code (its module-lock weakref callback, seen in CI) and finalizers.
_SWALLOWING_CODE = frozenset({"__del__", "_remove", "cb"})


def _swallows_exceptions(frame: FrameType | None) -> bool:
    if frame is None:
        return False
    code = frame.f_code
    return code.co_filename.startswith("<frozen ") or code.co_name in _SWALLOWING_CODE


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
