"""Decode a live pcap byte stream (`tcpdump -i any -U -w -`) into PacketEvents.

On a real cluster the node's packets come from a short-lived agent pod running tcpdump and
streaming pcap over an exec channel. `tcpdump -i any` writes the Linux "cooked" link type (SLL2
with libpcap >= 1.10, SLL before), which carries the interface index and packet type; `ifnames`
maps those indexes to names (the agent lists them with `ip -o link`). Ethernet captures from one
interface work too (their interface name is `ifnames[0]`, or "?" when not given). Reading is
incremental: each record is yielded as soon as its bytes arrive.

A busy Service sends tens of thousands of packets a second, so the reader's cost must follow the
bytes that arrive, never the bytes still waiting: it reads whatever the stream has (up to
READ_SIZE), walks the complete records in that buffer by offset, and drops the consumed prefix
only once per read (a bytearray drops its front in place). Only each record's own bytes are copied
(into the event's frame).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from svcwatch.model.decode import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    decode_frame,
)
from svcwatch.model.errors import InputError
from svcwatch.model.events import PacketEvent

_MAGICS = {  # magic as read little-endian -> (byte order, timestamp fraction divisor)
    0xA1B2C3D4: ("<", 1e6),
    0xD4C3B2A1: (">", 1e6),
    0xA1B23C4D: ("<", 1e9),
    0x4D3CB2A1: (">", 1e9),
}
PCAPNG_MAGIC = 0x0A0D0D0A
SUPPORTED_LINKTYPES = (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2)
READ_SIZE = 1 << 16  # bytes asked of the stream per read; a pipe or websocket returns what it has
MAX_CAPLEN = 262144  # libpcap's largest snapshot: a bigger record length is a corrupt stream


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    """Exactly `size` bytes, or None at a clean end of stream (a partial record is an end too)."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_pcap_header(stream: BinaryIO) -> tuple[str, float, int]:
    """The byte order, timestamp divisor and link type from a pcap global header."""
    header = _read_exact(stream, 24)
    if header is None:
        raise InputError("empty pcap stream (did tcpdump start?)")
    (magic,) = struct.unpack_from("<I", header)
    if magic == PCAPNG_MAGIC:
        raise InputError("pcapng stream: run tcpdump with -w - (classic pcap), not --pcapng")
    if magic not in _MAGICS:
        raise InputError(f"not a pcap stream (magic 0x{magic:08x})")
    order, divisor = _MAGICS[magic]
    linktype = struct.unpack_from(order + "I", header, 20)[0] & 0x0FFFFFFF
    if linktype not in SUPPORTED_LINKTYPES:
        raise InputError(
            f"unsupported pcap link type {linktype} (expected Ethernet, Linux SLL or SLL2)"
        )
    return order, divisor, linktype


def _iface_of(frame: bytes, linktype: int, ifnames: Mapping[int, str]) -> str:
    if linktype == LINKTYPE_LINUX_SLL2 and len(frame) >= 8:
        index = struct.unpack_from("!i", frame, 4)[0]
        return ifnames.get(index, f"if{index}")
    # SLL v1 carries no interface; one-interface Ethernet captures name theirs as index 0.
    return ifnames.get(0, "any" if linktype == LINKTYPE_LINUX_SLL else "?")


def iter_pcap_events(
    stream: BinaryIO, *, ifnames: Mapping[int, str], node: str | None, keep_raw: bool = True
) -> Iterator[PacketEvent]:
    """Yield an event per decodable record until the stream ends (a partial last record is an
    end too).

    Args:
        stream: a binary stream of classic pcap whose read(n) returns what is available (a pipe,
            the exec stream, a file).
        ifnames: interface index -> name on the capturing node.
        node: the node's name, shown in each event's interface tag.
    """
    order, divisor, linktype = read_pcap_header(stream)
    header = struct.Struct(order + "IIII")
    buffer = bytearray()
    read = getattr(stream, "read1", None) or stream.read  # a buffered stream: what it has now
    while True:
        chunk = read(READ_SIZE)
        if not chunk:
            return
        buffer += chunk
        records, used = _complete_records(buffer, header)
        del buffer[:used]  # in place: CPython moves a bytearray's start instead of copying
        for seconds, fraction, frame in records:
            event = decode_frame(
                frame,
                _iface_of(frame, linktype, ifnames),
                0,
                seconds + fraction / divisor,
                linktype,
                node,
                keep_raw,
            )
            if event is not None:
                yield event


def _complete_records(
    buffer: bytearray, header: struct.Struct
) -> tuple[list[tuple[int, int, bytes]], int]:
    """(seconds, fraction, frame) of each whole record at the start of `buffer`, and their size."""
    size, unpack, end, offset = header.size, header.unpack_from, len(buffer), 0
    records: list[tuple[int, int, bytes]] = []
    with memoryview(buffer) as view:  # released before the caller resizes the buffer
        while end - offset >= size:
            seconds, fraction, caplen, _ = unpack(view, offset)
            if caplen > MAX_CAPLEN:
                raise InputError(f"corrupt pcap stream: a record of {caplen} bytes")
            stop = offset + size + caplen
            if stop > end:
                break
            records.append((seconds, fraction, view[offset + size : stop].tobytes()))
            offset = stop
    return records, offset
