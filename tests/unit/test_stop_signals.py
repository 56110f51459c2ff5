"""A stop signal is never lost, wherever in the interpreter it lands (svcwatch/cli/signals.py).

Each case runs a small program in its own interpreter with svcwatch's real handlers installed and
sends it a real SIGTERM at the awkward moment: inside a finalizer (where Python swallows any
exception: "Exception ignored in ..."), which is what a SIGTERM landing in importlib's module-lock
callback did in CI, leaving a `svcwatch run` that never ended; and again in the middle of the
cleanup the first signal started. What a user sees: the program ends with the shell's 143, its
cleanup ran to the end, and no "Exception ignored" noise.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

GUARD = 30.0  # seconds: a guard against hangs, never an assertion about speed

PRELUDE = """
import os, signal, sys, time
from svcwatch.cli.signals import StopRequested, exit_status, process_shutdown

shutdown = process_shutdown(fresh=True)
previous = shutdown.install()
"""


def run_program(body: str) -> subprocess.CompletedProcess[str]:
    source = PRELUDE + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=GUARD
    )


def test_a_sigterm_landing_in_a_finalizer_still_stops_the_program() -> None:
    done = run_program(
        """
        class Finalized:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # the handler runs here, inside __del__
                    pass

        try:
            Finalized()
            for _ in range(300):
                time.sleep(0.01)
            print("the stop was lost")
        except StopRequested as exc:
            print("stopped")
            sys.exit(exit_status(exc.signum))
        """
    )
    assert (done.returncode, done.stdout.strip()) == (143, "stopped"), done
    assert "Exception ignored" not in done.stderr, done.stderr


def test_a_second_sigterm_does_not_cut_short_the_cleanup_of_the_first() -> None:
    done = run_program(
        """
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except StopRequested as exc:
            os.kill(os.getpid(), signal.SIGTERM)  # impatient: again, during the cleanup
            time.sleep(0.5)  # undoing what was half built
            print("cleaned up")
            sys.exit(exit_status(exc.signum))
        """
    )
    assert (done.returncode, done.stdout.strip()) == (143, "cleaned up"), done


def test_a_second_sigterm_while_a_session_runs_ends_it_through_the_teardown() -> None:
    """Once a session runs, the first signal asks it to stop; a second one does not wait for a
    front end that may be stuck: the watchdog tears down and exits 143."""
    done = run_program(
        """
        shutdown.during(lambda: print("torn down", flush=True), lambda signum: None)
        os.kill(os.getpid(), signal.SIGTERM)  # asks; the stuck front end never answers
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        print("still running")
        """
    )
    assert (done.returncode, done.stdout.strip()) == (143, "torn down"), done


def test_a_program_that_ends_normally_leaves_no_watchdog_behind() -> None:
    done = run_program(
        """
        import threading
        shutdown.uninstall(previous)
        for _ in range(100):
            if not any(t.name == "svcwatch-shutdown" for t in threading.enumerate()):
                break
            time.sleep(0.01)
        print(sorted(t.name for t in threading.enumerate()))
        """
    )
    assert (done.returncode, done.stdout.strip()) == (0, "['MainThread']"), done
