"""The recorder: an EventSink that streams everything the dashboard shows into a recording file.

Backends call `emit` from their own threads (the capture thread at thousands of packets a second),
so `emit` only appends to a queue: a capture's batch (`CapturedFrames`) as its frames in one blob
(`PackedFrames`, model/frames.py: a few flat buffers, so a held burst is not 60,000 objects for
Python's garbage collector to walk while the capture runs), other events as they are. A feeder
thread hands the queue's contents over to a writer process (svcwatch/record/writer_process.py) in
batches: the blobs, which the writer decodes again; other packets as plain tuples of their fields;
everything else already encoded. The JSON encoding of packets (~5 us each), gzip
and file I/O run there, on another core and off this process's GIL, where they no longer slow the
capture down. During a burst of packets the feeder holds the capture's batches back until the
capture pauses (at most HOLD): the capture then has both CPUs to itself (see `_await_pause`). The
writer process flushes at most 0.5 s after data arrived and ends when its stdin closes, so a crash
(even SIGKILL) loses at most about a second and leaves no process behind.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import svcwatch
from svcwatch import __version__
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, PacketEvent
from svcwatch.model.frames import CapturedFrames, PackedFrames, pack_frames
from svcwatch.model.service import Service
from svcwatch.record import format as fmt
from svcwatch.record.writer_process import FLUSH_INTERVAL, Part, frame, packet_fields

__all__ = ["FLUSH_INTERVAL", "Recorder"]

PIPE_SIZE = 1 << 20
# The feeder's hold on packet batches during a burst (`Recorder._await_pause`): until no new item
# came for PAUSE seconds (the capture hands over a batch every 0.05 s while packets flow), at most
# HOLD seconds.
PAUSE = 0.25
HOLD = 0.5
MESSAGE_PACKETS = 1024  # packets per message to the writer process (see _messages)
_CLOSE = object()  # queue sentinel: write what is left, then stop
_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode  # compact, reused


def _open_file(path: Path) -> int:
    """`path` created (or truncated) for writing, as a file descriptor for the writer process."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise InputError(
            f"cannot write the recording: {exc.strerror or exc}", source=str(path)
        ) from exc


def _start_writer(fd: int, path: Path) -> subprocess.Popen[bytes]:
    """The writer process, importing the same svcwatch as this one, in its own session.

    Its own session: Ctrl-C in the terminal reaches the dashboard, not the writer, which writes
    everything and exits once the dashboard closes the pipe (or dies).
    """
    package_root = str(Path(svcwatch.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    writer = subprocess.Popen(
        [sys.executable, "-m", "svcwatch.record.writer_process", str(fd), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(fd,),
        env=env,
        start_new_session=True,
    )
    _widen_pipe(writer)
    return writer


def _widen_pipe(writer: subprocess.Popen[bytes]) -> None:
    """A 1 MiB pipe (Linux): a burst's batches go through with fewer wakeups of either side."""
    try:
        import fcntl  # POSIX only

        set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
        if set_size is not None and writer.stdin is not None:
            fcntl.fcntl(writer.stdin.fileno(), set_size, PIPE_SIZE)
    except (ImportError, OSError):  # above /proc/sys/fs/pipe-max-size: the default 64 KiB will do
        pass


def _messages(parts: list[Part], most: int = MESSAGE_PACKETS) -> list[list[Part]]:
    """`parts` cut into messages of at most `most` packets each. Pickling is one C call that
    holds the GIL throughout; a burst's 20,000 packets in one message would hold it ~30 ms,
    during which the capture thread (same process) cannot take a frame. Small messages, each
    followed by a pipe write, hand the GIL back every ~2 ms."""
    messages: list[list[Part]] = [[]]
    count = 0
    for part in parts:
        if not isinstance(part, list):  # text, or packed frames: no object per packet to pickle
            messages[-1].append(part)
            continue
        for start in range(0, len(part), most):
            chunk = part[start : start + most]
            if count + len(chunk) > most and messages[-1]:
                messages.append([])
                count = 0
            messages[-1].append(chunk)
            count += len(chunk)
    return messages


class Recorder:
    """Streams events, chain snapshots, objects, scenario changes and key presses to `path`.

    Thread-safe. `close()` writes an `end` record and waits for the writer thread.
    """

    def __init__(
        self, path: Path, *, session_kind: str, meta: dict[str, Any] | None = None
    ) -> None:
        self.path = Path(path)
        self.events_written = 0
        self.feeder_cpu_seconds = 0.0  # CPU this process spent handing records over
        self.writer_cpu_seconds = 0.0  # that plus the writer process's (benchmarks/record.py)
        self.error: str | None = None
        self.on_error: Callable[[str], None] | None = None  # told once, when recording stops
        fd = _open_file(self.path)
        try:
            self._writer = _start_writer(fd, self.path)
        finally:
            os.close(fd)  # the writer process holds it now
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._last_chain: dict[str, Any] | None = None
        self.created = time.time()
        head = fmt.header(
            session_kind=session_kind, created=self.created, version=__version__, meta=meta
        )
        self._queue.put(json.dumps(head) + "\n")
        self._thread = threading.Thread(target=self._run, name="svcwatch-recorder", daemon=True)
        self._thread.start()

    # --- EventSink -------------------------------------------------------------------------

    @property
    def writer_pid(self) -> int:
        """The writer process (it exits once this one closes the recording or dies)."""
        return self._writer.pid

    def emit(self, event: Event) -> None:
        self._queue.put(event)

    def emit_many(self, events: Sequence[Event]) -> None:
        if isinstance(events, CapturedFrames):  # the capture's batch: its frames, packed now
            self._queue.put(pack_frames(events))
        elif events:
            self._queue.put(list(events))  # one queue operation per capture batch

    # --- what the session records besides events --------------------------------------------

    def record_chain(self, tree: ChainTree, ts: float) -> None:
        """A chain snapshot; skipped when nothing (not even a counter) changed since the last."""
        data = fmt.chain_to_dict(tree)  # now: the tree is mutable and may change after we return
        with self._lock:
            if data == self._last_chain:
                return
            self._last_chain = data
        self._queue.put({"rec": "chain", "ts": ts, "chain": data})

    def record_objects(self, service: Service, slice_: EndpointSlice, ts: float) -> None:
        self._queue.put(fmt.objects_record(service, slice_, ts))

    def record_facts(self, facts: list[dict[str, Any]], ts: float) -> None:
        self._queue.put({"rec": "facts", "ts": ts, "facts": facts})

    def record_scenario(self, name: str, ts: float) -> None:
        self._queue.put({"rec": "scenario", "ts": ts, "name": name})

    def record_shown(self, what: str, seen: int, ts: float, fields: dict[str, Any]) -> None:
        """What the dashboard displayed after `seen` events (format.py: the `shown` record)."""
        self._queue.put({"rec": "shown", "ts": ts, "seen": seen, "what": what, **fields})

    def record_start(self, ts: float) -> None:
        """The moment the stream starts: the +0.000s of the plain output."""
        self._queue.put({"rec": "start", "ts": ts})

    def record_title(self, title: str, ts: float) -> None:
        """The session's title once started (the header is written before it is known)."""
        self._queue.put({"rec": "title", "ts": ts, "title": title})

    def record_key(self, key: str, ts: float) -> None:
        self._queue.put({"rec": "key", "ts": ts, "key": key})

    def close(self) -> None:
        """Write the `end` record, flush, close the file; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_CLOSE)
        self._thread.join()

    # --- feeder thread ----------------------------------------------------------------------

    def _run(self) -> None:
        closing = False
        while not closing:
            batch = self._next_batch()
            closing = _CLOSE in batch
            parts = self._parts(batch)
            if closing:
                end = {"rec": "end", "ts": time.time(), "events": self.events_written}
                parts.append(json.dumps(end) + "\n")
            self._send(parts)
        self._finish()

    def _await_pause(self) -> None:
        """Return once the capture paused (no new item for PAUSE), HOLD passed, or the recording
        is closing.

        Handing a batch over costs this process ~0.3 us a frame and the writer process ~6 us;
        small next to a packet's way through the kernel, but during a burst both CPUs of a small
        machine are busy with the traffic and its capture, and any work beside them (even at
        nice 19 in the writer, since two CPUs are often one core's two hyperthreads) slows the
        capture. benchmarks/record.py, 20,000-packet burst, recorded / unrecorded capture rate:
        medians 0.80-0.87 when batches went over as they came; with this hold, and the batches
        held packed (module docstring), 0.97-1.29 in each of nine repeats (docs/design.md). The
        data still reaches the file within about a second.
        """
        deadline = time.monotonic() + HOLD
        size = self._queue.qsize()
        while time.monotonic() < deadline and not self._closed:
            time.sleep(PAUSE)
            if self._queue.qsize() == size:
                return
            size = self._queue.qsize()

    def _next_batch(self, limit: int = 50_000) -> list[Any]:
        batch = [self._queue.get()]
        if isinstance(batch[0], PackedFrames):
            self._await_pause()
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _parts(self, batch: list[Any]) -> list[Part]:
        """The batch as the writer process takes it: packet runs as tuples, the rest as text."""
        parts: list[Part] = []
        for item in batch:
            if isinstance(item, PackedFrames):
                parts.append(item)
                self.events_written += len(item)
            elif isinstance(item, list) and set(map(type, item)) == {PacketEvent}:
                parts.append(list(map(packet_fields, item)))  # a capture batch: all in C
                self.events_written += len(item)
            elif isinstance(item, list):
                for event in item:
                    self._add_event(parts, event)
            elif isinstance(item, (str, dict)):
                parts.append(item if isinstance(item, str) else _dumps(item) + "\n")
            elif item is not _CLOSE:
                self._add_event(parts, item)
        return parts

    def _add_event(self, parts: list[Part], event: Event) -> None:
        self.events_written += 1
        if type(event) is not PacketEvent:
            parts.append(_dumps(fmt.event_record(event)) + "\n")
        elif parts and isinstance(parts[-1], list):
            parts[-1].append(packet_fields(event))
        else:
            parts.append([packet_fields(event)])

    def _send(self, parts: list[Part]) -> None:
        pipe = self._writer.stdin
        if self.error is not None or pipe is None or not parts:
            return
        try:
            for message in _messages(parts):
                for buffer in frame(message):
                    pipe.write(buffer)  # a pipe write releases the GIL: the capture runs here
            pipe.flush()
        except OSError:  # the writer process is gone (disk full, killed): the session goes on
            self._report(self._writer_report())

    def _writer_report(self) -> dict[str, Any]:
        """Close the pipe, wait for the writer process and read its report (its CPU, its error).

        Without a report it died: the report says how, so the error is never silent.
        """
        try:
            out, err = self._writer.communicate(timeout=30)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self._writer.kill()
            out, err = b"", b""
        try:
            report: dict[str, Any] = json.loads(out)
        except ValueError:
            code = self._writer.wait()
            if code < 0:
                why = f"the writer process was killed ({signal.Signals(-code).name})"
            else:
                last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
                why = f"the writer process failed: {last}"
            report = {"error": f"{self.path}: recording stopped: {why}"}
        return report

    def _report(self, report: dict[str, Any]) -> None:
        """Keep the first error and tell `on_error` about it, once."""
        error = report.get("error")
        if error and self.error is None:
            self.error = str(error)
            if self.on_error is not None:
                self.on_error(self.error)

    def _finish(self) -> None:
        """Close the pipe (the writer writes what is left and exits) and read its report."""
        report = self._writer_report() if self.error is None else {}
        self.feeder_cpu_seconds = time.thread_time()
        self._report(report)
        self.writer_cpu_seconds = self.feeder_cpu_seconds + float(report.get("cpu", 0.0))
