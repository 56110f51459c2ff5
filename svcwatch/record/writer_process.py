"""The recorder's writer process: JSON encoding, gzip and file I/O, off the capture's GIL.

Encoding a packet to its JSON line costs ~5 us of Python; in a thread of the live process that
time is taken from the capture thread (they share one GIL), which cost a 20k-packet burst ~40% of
its throughput. So the parent (`svcwatch.record.writer.Recorder`) only hands over batches: each
packet as the plain tuple of its fields (`PACKET_FIELDS`, ~0.5 us with pickling), everything else
already encoded as text. This process, started as `python -m svcwatch.record.writer_process FD
PATH`, turns them into the format-1 lines `svcwatch.record.format` defines, writes them to the
already-open file FD (gzip-compressed when PATH ends in `.gz`) and flushes at most
`FLUSH_INTERVAL` after data arrived, so a crash loses at most about a second.

Messages on stdin are length-prefixed pickles (`frame`), each a list of parts: a `str` (lines as
they go to the file), a list of packet tuples, or a capture's batch as `PackedFrames` (its frames in
one blob: this process decodes them again, so the capture's process pays only for a copy). EOF on
stdin ends the process: the parent closed it, or died (even by SIGKILL), so the writer never
outlives the session. On exit it prints one JSON line to stdout: its CPU seconds and the error that
stopped the recording, if any.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import operator
import os
import pickle
import select
import signal
import struct
import sys
import time
from binascii import b2a_base64
from collections.abc import Callable, Iterable
from functools import partial
from itertools import chain, repeat
from typing import Any, cast

from svcwatch.model.events import PacketEvent
from svcwatch.model.frames import PackedFrames, unpack_frames

FLUSH_INTERVAL = 0.5  # seconds data may wait in this process before it reaches the OS
# Below the capture's priority: in a burst the capture and the traffic it watches get the CPU
# first; the pipe and the parent's queue hold the backlog until this process catches up.
NICENESS = 19  # the lowest: in a burst, every other process comes first
GZIP_LEVEL = 1  # packet floods: 1/3 less CPU than level 3 for <1% more bytes (~8 B a frame)
PACKET_FIELDS = tuple(f.name for f in dataclasses.fields(PacketEvent))
_LENGTH = struct.Struct("<I")  # a message's length, before its pickle

Part = str | list[tuple[Any, ...]] | PackedFrames
packet_fields = operator.attrgetter(*PACKET_FIELDS)  # a PacketEvent as a tuple, in C


def frame(parts: list[Part]) -> list[bytes]:
    """One message: its length, then its pickle (two buffers, so the pickle is not copied).

    The pickler runs in "fast" mode, without its memo: half the time in the parent, which is the
    time the capture waits for the GIL (parts are flat tuples of scalars: nothing to share).
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(parts)
    payload = buffer.getvalue()
    return [_LENGTH.pack(len(payload)), payload]


class _JsonText(dict[Any, str]):
    """JSON text of values seen before, so `map(cache.__getitem__, column)` runs in C.

    Interface names, addresses, flag words, ports: a few thousand values in a whole session.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, value: Any) -> str:
        if len(self) >= self.limit:
            self.clear()
        text = self[value] = json.dumps(value)
        return text


_TEXTS = _JsonText(4096)  # str fields and `node` (None -> null)
_NUMBERS = _JsonText(70_000)  # ports (None -> null): every port fits
_b64 = partial(b2a_base64, newline=False)
_text, _number = _TEXTS.__getitem__, _NUMBERS.__getitem__
# `svcwatch.record.format.packet_line`, cell by cell (a unit test holds the two equal)
_CELLS: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("ts", repr),
    *((name, _text) for name in ("kind", "iface", "direction", "src", "dst")),
    ("sport", _number),
    ("dport", _number),
    ("flags", _text),
    ("length", repr),
    ("detail", _text),
    ("node", _text),
    ("linktype", repr),
)


def _raw_field(raw: bytes | None) -> str:
    return "" if raw is None else f',"raw":"{_b64(raw).decode()}"'


def packet_lines(rows: list[tuple[Any, ...]]) -> str:
    """Packets (tuples of `PACKET_FIELDS`) as their recording lines, built column by column.

    Every column is one `map` of a C function and the pieces are joined once, so this costs
    about half of `format.packet_line` per packet, and no Python bytecode per packet at all.
    """
    if not rows:
        return ""
    column = dict(zip(PACKET_FIELDS, zip(*rows, strict=True), strict=True))
    pieces: list[Iterable[str]] = [repeat('{"rec":"event","event":{"type":"PacketEvent"')]
    for name, cell in _CELLS:
        pieces += [repeat(f',"{name}":'), map(cell, column[name])]
    raws = column["raw"]
    if None not in raws:  # the capture's frames
        pieces += [repeat(',"raw":"'), map(bytes.decode, map(_b64, raws)), repeat('"}}\n')]
    else:
        pieces += [list(map(_raw_field, raws)), repeat("}}\n")]
    return "".join(chain.from_iterable(zip(*pieces, strict=False)))  # repeat() is endless


def _lines(part: Part) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, PackedFrames):
        return packet_lines(list(map(packet_fields, unpack_frames(part))))
    return packet_lines(part)


def encode(parts: list[Part]) -> bytes:
    """The parts of one message as the lines of the recording, UTF-8."""
    return "".join(map(_lines, parts)).encode()


def _read_exactly(fd: int, size: int) -> bytes | None:
    """`size` bytes from `fd`; None at EOF (a message cut short by a dead parent counts too)."""
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int) -> list[Part] | None:
    """The next message on `fd`; None when the parent closed the pipe or died."""
    head = _read_exactly(fd, _LENGTH.size)
    if head is None:
        return None
    payload = _read_exactly(fd, _LENGTH.unpack(head)[0])
    return None if payload is None else cast("list[Part]", pickle.loads(payload))


class RecordingFile:
    """The recording file: writes, flushes (gzip: Z_SYNC_FLUSH) and keeps the first I/O error."""

    def __init__(self, fd: int, path: str) -> None:
        self.path = path
        self.error: str | None = None
        raw = os.fdopen(fd, "wb")
        self._file: gzip.GzipFile | io.BufferedWriter = (
            gzip.GzipFile(filename=path, mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL)
            if path.endswith(".gz")
            else raw
        )
        self._raw = raw

    def _guard(self, action: Any, *args: Any) -> None:
        if self.error is None:
            try:
                action(*args)
            except OSError as exc:  # disk full: the session goes on, the error is reported
                self.error = f"{self.path}: recording stopped: {exc.strerror or exc}"

    def write(self, data: bytes) -> None:
        self._guard(self._file.write, data)

    def flush(self) -> None:
        self._guard(self._file.flush)  # GzipFile.flush() is a Z_SYNC_FLUSH: readable up to here

    def close(self) -> None:
        self._guard(self._file.close)
        if self._raw is not self._file:
            self._guard(self._raw.close)


def _quiet(source: int, until: float) -> bool:
    """Nothing arrives on `source` before `until` (monotonic): time to flush."""
    timeout = until - time.monotonic()
    return timeout <= 0 or not select.select([source], [], [], timeout)[0]


def pump(source: int, out: RecordingFile) -> None:
    """Write every message from `source` to `out` until EOF, flushing within FLUSH_INTERVAL.

    The first write error ends the pump at once: this process exits with its report, and the
    parent, whose next hand-over then fails, says so while the session goes on.
    """
    dirty_since: float | None = None  # when the oldest unflushed data was written
    while out.error is None:
        if dirty_since is not None and _quiet(source, dirty_since + FLUSH_INTERVAL):
            out.flush()
            dirty_since = None
            continue
        parts = read_message(source)
        if parts is None:
            break
        out.write(encode(parts))
        dirty_since = dirty_since or time.monotonic()
    out.close()


def main(argv: list[str]) -> None:
    """`FD PATH`: record what arrives on stdin to FD until EOF, then report on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the session; EOF ends us
    try:
        os.nice(NICENESS)
    except OSError:  # not allowed here: run at the session's priority
        pass
    fd, path = int(argv[0]), argv[1]
    out = RecordingFile(fd, path)
    pump(sys.stdin.fileno(), out)
    report = {"cpu": time.process_time(), "error": out.error}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    if out.error is not None:
        os._exit(1)  # now: the parent is still writing to our stdin, and must see EPIPE soon


if __name__ == "__main__":
    main(sys.argv[1:])
