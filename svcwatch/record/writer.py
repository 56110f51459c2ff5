"""The recorder: an EventSink that streams everything the dashboard shows into a recording file.

Backends call `emit` from their own threads (the capture thread at thousands of packets a second),
so `emit` only appends to a queue; one writer thread turns records into JSON lines and flushes the
file at least every `FLUSH_INTERVAL` seconds. A crash therefore loses at most about a second, and
a gzip file is flushed with Z_SYNC_FLUSH so everything before the crash stays readable.
"""

from __future__ import annotations

import gzip
import json
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from svcwatch import __version__
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, PacketEvent
from svcwatch.model.service import Service
from svcwatch.record import format as fmt

FLUSH_INTERVAL = 0.5  # seconds; data reaches the OS within ~2x this
_CLOSE = object()  # queue sentinel: write what is left, then stop
_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode  # compact, reused


def open_for_writing(path: Path) -> IO[str]:
    """`path` as a text file; gzip-compressed when its name ends in `.gz`."""
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "wt", encoding="utf-8", compresslevel=6)
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write the recording: {exc.strerror or exc}", source=str(path)
        ) from exc


class Recorder:
    """Streams events, chain snapshots, objects, scenario changes and key presses to `path`.

    Thread-safe. `close()` writes an `end` record and waits for the writer thread.
    """

    def __init__(self, path: Path, *, backend: str, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.events_written = 0
        self.writer_cpu_seconds = 0.0  # CPU the writer thread used (benchmarks/record.py)
        self.error: str | None = None
        self._file = open_for_writing(self.path)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._last_chain: dict[str, Any] | None = None
        self.created = time.time()
        head = fmt.header(backend=backend, created=self.created, version=__version__, meta=meta)
        self._file.write(json.dumps(head) + "\n")
        self._file.flush()
        self._thread = threading.Thread(target=self._run, name="svcwatch-recorder", daemon=True)
        self._thread.start()

    # --- EventSink -------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        self._queue.put(event)

    def emit_many(self, events: Sequence[Event]) -> None:
        if events:
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

    # --- writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        last_flush = time.monotonic()
        dirty = False
        closing = False
        while not closing:
            batch = self._next_batch()
            closing = _CLOSE in batch
            lines = [self._encode(item) for item in batch if item is not _CLOSE]
            if closing:
                lines.append(
                    json.dumps({"rec": "end", "ts": time.time(), "events": self.events_written})
                    + "\n"
                )
            if lines:
                self._write("".join(lines))
                dirty = True
            if dirty and (closing or not batch or time.monotonic() - last_flush >= FLUSH_INTERVAL):
                self._flush()
                dirty, last_flush = False, time.monotonic()
        self._finish()
        self.writer_cpu_seconds = time.thread_time()

    def _next_batch(self, limit: int = 50_000) -> list[Any]:
        try:
            batch = [self._queue.get(timeout=FLUSH_INTERVAL)]
        except queue.Empty:
            return []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _encode(self, item: Any) -> str:
        if isinstance(item, dict):
            return _dumps(item) + "\n"
        if isinstance(item, list):  # one emit_many batch
            return "".join(map(self._encode, item))
        self.events_written += 1
        if type(item) is PacketEvent:
            return fmt.packet_line(item)
        return _dumps(fmt.event_record(item)) + "\n"

    def _write(self, text: str) -> None:
        if self.error is None:
            try:
                self._file.write(text)
            except OSError as exc:  # disk full: keep the session running, report on close
                self.error = f"{self.path}: recording stopped: {exc.strerror or exc}"

    def _flush(self) -> None:
        if self.error is None:
            try:
                self._file.flush()  # GzipFile.flush() is a Z_SYNC_FLUSH: readable up to here
            except OSError as exc:
                self.error = f"{self.path}: recording stopped: {exc.strerror or exc}"

    def _finish(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            self.error = self.error or f"{self.path}: recording stopped: {exc.strerror or exc}"
