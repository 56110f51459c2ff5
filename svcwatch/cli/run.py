"""`svcwatch run`: the merged event stream, headless, as the blog post's lines or as JSON Lines.

The same session as the dashboard (the lab by default, a cluster with --cluster) feeds one queue;
this command prints it in time order until --duration ends or Ctrl-C, then stops the session (and
tears down the lab if it built it and nothing else uses it). Sources deliver in batches (the
capture every ~50 ms, a probe when it finishes), so events are held for a short window and
released sorted by their timestamp: a SYN seen at +3.519s prints before the probe that completed
at +3.522s. Each line is flushed as it is written, so scripts and tests can follow it live.
"""

from __future__ import annotations

import heapq
import itertools
import json
import sys
import threading
import time
from typing import Any, TextIO

import click

from svcwatch.cli import options
from svcwatch.cli.signals import StopRequested, process_shutdown
from svcwatch.model.errors import OutputError, SetupError, WaitCancelled
from svcwatch.model.events import Event, Notice, plain_line, to_dict
from svcwatch.session.base import Session
from svcwatch.session.guard import StartStopGuard
from svcwatch.sinks import QueueSink

REORDER_SECONDS = 0.25  # longer than the capture's flush period, short enough to feel live


class StreamPrinter:
    """Holds events for REORDER_SECONDS, then writes them by timestamp, a flushed line each."""

    def __init__(self, out: TextIO, *, as_json: bool, t0: float) -> None:
        self.out, self.as_json, self.t0 = out, as_json, t0
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()

    def add(self, events: list[Event]) -> None:
        for event in events:
            heapq.heappush(self._heap, (event.ts, next(self._seq), event))

    def release(self, now: float | None = None) -> None:
        """Write every event older than the window (all of them when `now` is None)."""
        horizon = None if now is None else now - REORDER_SECONDS
        while self._heap and (horizon is None or self._heap[0][0] <= horizon):
            _, _, event = heapq.heappop(self._heap)
            self._write(self.format(event) + "\n")

    def _write(self, line: str) -> None:
        try:
            self.out.write(line)
            self.out.flush()
        except BrokenPipeError:  # the reader left (`| head`): the caller ends quietly
            raise
        except OSError as exc:  # `> /dev/full`, a full disk, a terminal gone
            self._heap.clear()  # nothing more can be written: do not try again for each event
            raise OutputError(
                f"cannot write the stream to standard output: {exc.strerror or exc}"
            ) from None

    def format(self, event: Event) -> str:
        if self.as_json:
            return json.dumps(to_dict(event), separators=(",", ":"))
        return plain_line(event, self.t0)


class _Starter(threading.Thread):
    """Runs `session.start` off the main thread so its progress notices print while it builds."""

    def __init__(self, session: Session, sink: QueueSink) -> None:
        super().__init__(name="session-start", daemon=True)
        self.session, self.sink = session, sink
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.session.start(self.sink)
        except BaseException as exc:  # re-raised on the main thread, which prints it as one line
            self.error = exc


def stream(
    session: Session,
    printer: StreamPrinter,
    duration: float | None,
    stop: threading.Event | None = None,
) -> bool:
    """Start `session`, print its events until `duration` passes or `stop` is set (a signal), then
    stop it; whether it started streaming.

    `duration` also bounds the start: a start still waiting after that long (a node agent pod
    that stays Pending) is called off, torn down, and ends as one SetupError line. A signal
    during the start calls it off too; the caller then exits 128+N (False returned).
    """
    sink = QueueSink()
    starter = _Starter(session, sink)
    limit = duration if duration is not None else float("inf")
    deadline = time.monotonic() + limit  # of the start; then of the streaming
    stop = stop or threading.Event()
    ended: list[Notice] = []
    started = False
    try:
        starter.start()
        while not stop.is_set():
            batch = sink.drain(timeout=0.05)
            printer.add(batch)
            printer.release(time.time())
            ended = [e for e in batch if isinstance(e, Notice) and e.kind == "ended"]
            if ended:  # the lab went away under the run (`lab down`): nothing left to stream
                break
            if not started and not starter.is_alive():
                if starter.error is not None:
                    raise starter.error
                started, deadline = True, time.monotonic() + limit
            if time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:  # an in-process caller's Ctrl-C: as a signal
        stop.set()
    finally:
        _end(session, starter, sink, printer)
    if ended:
        raise SetupError(ended[0].message)
    return started or _start_outcome(starter, stop, duration)


def _end(session: Session, starter: _Starter, sink: QueueSink, printer: StreamPrinter) -> None:
    """Call off a start still in progress, wait for it (never tear down under a build that is
    still running), stop the session, print what is left."""
    if starter.is_alive():
        session.cancel_start()
    starter.join()
    try:
        session.stop()
    finally:
        printer.add(sink.drain())
        printer.release()


def _start_outcome(starter: _Starter, stop: threading.Event, duration: float | None) -> bool:
    """After the loop ended during the start: True when it finished anyway, False when a signal
    called it off; the end of --duration calling it off is one SetupError line."""
    error = starter.error
    if error is None or stop.is_set():
        return error is None
    if isinstance(error, WaitCancelled):
        raise SetupError(f"--duration {duration:g}s ended before the run was ready: {error}")
    raise error


@click.command(
    help="Print the merged stream (packets, probes, slice and rule changes) until "
    "--duration ends or Ctrl-C; the lab is built or reused, and at the end torn down only if "
    "this run built it, no other svcwatch still uses it, and neither `lab up` nor --keep "
    "kept it."
)
@click.option("--plain", is_flag=True, help="Lines in the blog post's format (the default).")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON Lines, one event per line, explicit fields."
)
@click.option(
    "-d",
    "--duration",
    type=options.FiniteFloat(min=0),
    default=None,
    help="Stop after this many seconds of streaming (default: until Ctrl-C). A start still "
    "waiting after this long (--cluster: a node agent pod that stays Pending) is called off "
    "and what it created deleted: exit 2 (nothing was observed). Ctrl-C exits 0, or 130 "
    "when it called off such a wait.",
)
@options.lab_options
@options.probe_options
@options.cluster_options
@click.option(
    "--record",
    type=click.Path(dir_okay=False),
    default=None,
    help="Record the stream to this file (replay with `svcwatch replay FILE`).",
)
@click.option(
    "--pcap",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write every captured packet to this pcapng file.",
)
def run(plain: bool, as_json: bool, duration: float | None, **kwargs: Any) -> None:
    from svcwatch.cli.replay import one_output_format
    from svcwatch.session.factory import make_session  # backends are heavy: import on use

    one_output_format(plain=plain, as_json=as_json)
    from svcwatch.session.settings import SessionSettings

    t0 = time.time()
    session = StartStopGuard(make_session(SessionSettings.from_flags(diagnosis=True, **kwargs)))
    # Ctrl-C, SIGTERM and SIGHUP (SIGINT too when started as a background job, which inherits it
    # ignored) end the stream as --duration does: the lab torn down, exit 0. At any moment: a
    # signal during the build waits for it, then tears down (cli/signals.py, session/guard.py).
    # A signal during the start (a node agent pod still Pending) calls it off, removes what it
    # made, and exits 128+N: nothing was streamed.
    stop = threading.Event()
    shutdown = process_shutdown()
    shutdown.during(session.stop, lambda _signum: stop.set())
    try:
        printer = StreamPrinter(sys.stdout, as_json=as_json, t0=t0)
        if not stream(session, printer, duration, stop) and shutdown.signum is not None:
            raise StopRequested(shutdown.signum)
    except BrokenPipeError:  # `svcwatch run | head`: the reader left, the lab is already down
        from svcwatch.cli import silence_stdout

        silence_stdout()  # exit 0, quietly, as Unix tools do on a closed pipe
