"""pcapng export: the captured frames, each on its own named interface with its direction.

Wireshark and tshark show a pcapng file's interfaces by the name in each Interface Description
Block, so one IDB per (node, interface, link type) makes eth0, cni0 and the veths appear as in the
blog post, and each Enhanced Packet Block's `epb_flags` carries the AF_PACKET direction (inbound,
outbound; OTHERHOST as inbound + promiscuous). scapy's writer keys interfaces by name only and
always writes a nameless interface 0, so the blocks are written here with struct (pcapng spec,
draft-ietf-opsawg-pcapng): little-endian, microsecond timestamps.
"""

from __future__ import annotations

import contextlib
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from svcwatch import __version__
from svcwatch.model.errors import InputError, OutputError
from svcwatch.model.events import Event, PacketEvent

SNAPLEN = 262144
_SHB, _IDB, _EPB = 0x0A0D0D0A, 1, 6
_OPT_END, _OPT_COMMENT = 0, 1
_SHB_USERAPPL = 4
_IF_NAME, _IF_DESCRIPTION = 2, 3
_EPB_FLAGS = 2
# epb_flags: bits 0-1 direction (1 inbound, 2 outbound), bits 2-4 reception type (4 promiscuous).
DIRECTION_FLAGS = {"in": 0b01, "out": 0b10, "other": 0b01 | (4 << 2)}
FLUSH_INTERVAL = 1.0


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(block_type: int, body: bytes, options: bytes = b"") -> bytes:
    if options:
        options += _option(_OPT_END, b"")
    total = 12 + len(_pad(body)) + len(options)
    return struct.pack("<II", block_type, total) + _pad(body) + options + struct.pack("<I", total)


def section_header() -> bytes:
    body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)  # byte-order magic, v1.0, length unknown
    return _block(_SHB, body, _option(_SHB_USERAPPL, f"svcwatch {__version__}".encode()))


def interface_block(name: str, linktype: int, node: str | None = None) -> bytes:
    body = struct.pack("<HHI", linktype, 0, SNAPLEN)
    options = _option(_IF_NAME, name.encode())
    if node:
        options += _option(_IF_DESCRIPTION, f"{name} on node {node}".encode())
    return _block(_IDB, body, options)


def packet_block(interface_id: int, event: PacketEvent, raw: bytes) -> bytes:
    micros = int(round(event.ts * 1_000_000))
    body = (
        struct.pack("<IIIII", interface_id, micros >> 32, micros & 0xFFFFFFFF, len(raw), len(raw))
        + raw
    )
    flags = DIRECTION_FLAGS.get(event.direction, 0)
    return _block(_EPB, body, _option(_EPB_FLAGS, struct.pack("<I", flags)) if flags else b"")


class PcapngSink:
    """An EventSink writing every PacketEvent that carries raw bytes to a pcapng file.

    Thread-safe; other events are ignored. Flushed about every second and on `close()`. A write
    that fails (disk full, device gone) never raises into the capture thread that emits: the
    first error is kept in `error`, `on_error` hears it once, and nothing more is written.
    """

    def __init__(self, path: Path, on_error: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = open(self.path, "wb")
        except OSError as exc:
            raise InputError(
                f"cannot write the pcapng file: {exc.strerror or exc}", source=str(self.path)
            ) from exc
        self.on_error = on_error
        self.error: str | None = None
        self._interfaces: dict[tuple[str | None, str, int], int] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self.packets = 0
        self.skipped = 0  # packets without raw bytes (nothing to write)
        self._guarded(self._file.write, section_header())

    @property
    def interface_names(self) -> list[str]:
        return [name for _, name, _ in self._interfaces]

    def emit(self, event: Event) -> None:
        self.emit_many((event,))

    def emit_many(self, events: Sequence[Event]) -> None:
        with self._lock:
            if self._file.closed:
                return
            for event in events:
                if isinstance(event, PacketEvent) and not self._write_packet(event):
                    return
            if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
                self._guarded(self._file.flush)
                self._last_flush = time.monotonic()

    def _write_packet(self, event: PacketEvent) -> bool:
        """Write one packet (and its interface's block the first time); False once failed."""
        if not event.raw:
            self.skipped += 1
            return True
        key = (event.node, event.iface, event.linktype)
        interface_id = self._interfaces.get(key)
        if interface_id is None:
            interface_id = self._interfaces[key] = len(self._interfaces)
            block = interface_block(event.iface, event.linktype, event.node)
            if not self._guarded(self._file.write, block):
                return False
        if not self._guarded(self._file.write, packet_block(interface_id, event, event.raw)):
            return False
        self.packets += 1
        return True

    def _guarded(self, action: Callable[..., object], *args: bytes) -> bool:
        """Run one file operation; on OSError keep the error, close the file, tell `on_error`."""
        try:
            action(*args)
            return True
        except OSError as exc:
            self._fail(exc)
            return False

    def _fail(self, exc: OSError) -> None:
        if self.error is not None:
            return
        self.error = error = (
            f"{self.path}: pcap stopped after {self.packets} packets: {exc.strerror or exc}"
        )
        with contextlib.suppress(OSError):
            self._file.close()  # the buffered rest cannot be written either
        if self.on_error is not None:
            self.on_error(error)

    def close(self) -> None:
        """Flush and close; never raises (a failure lands in `error`)."""
        with self._lock:
            if not self._file.closed:
                if self._guarded(self._file.flush):
                    self._guarded(self._file.close)


def write_pcapng(path: Path, events: Iterable[Event]) -> int:
    """Write the PacketEvents of `events` (those with raw bytes) to `path`; returns how many."""
    sink = PcapngSink(path)
    try:
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) >= 4096:
                sink.emit_many(batch)
                batch.clear()
        sink.emit_many(batch)
    finally:
        sink.close()
    if sink.error is not None:
        raise OutputError(sink.error)
    return sink.packets
