"""CapturedFrames: a capture's batch that also says how to decode its events again from the frames.

The recorder writes every packet the dashboard sees, and at a burst's 40,000 frames/s even ~1 us of
Python per packet in the capture's process (turning each event into something picklable) costs
the capture a tenth of its throughput: the two threads share one GIL. A batch the capture built
with `decode.decode_frame` can go further: its frames, timestamps, interfaces and directions are
all it takes to rebuild its events, so `pack_frames` turns it into one bytes blob and three arrays
with a few C-level passes, and `unpack_frames` rebuilds the very same events in another process
(the recorder's writer), at that process's pace.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from svcwatch.model.decode import PACKET_HOST, PACKET_OTHERHOST, PACKET_OUTGOING, decode_frame
from svcwatch.model.events import PacketEvent

# An event's direction -> a pkttype `decode_frame` turns back into that same direction.
_PKTTYPES: dict[str, int] = {"in": PACKET_HOST, "other": PACKET_OTHERHOST, "out": PACKET_OUTGOING}
_raw, _ts, _iface, _direction = (attrgetter(name) for name in ("raw", "ts", "iface", "direction"))


class CapturedFrames(list[PacketEvent]):
    """Events that are exactly `decode_frame(e.raw, e.iface, <pkttype of e.direction>, e.ts,
    linktype, node)`, each with its frame kept (`raw`). A plain list to every other sink."""

    def __init__(self, events: Iterable[PacketEvent], *, linktype: int, node: str | None) -> None:
        super().__init__(events)
        self.linktype = linktype
        self.node = node


@dataclass(frozen=True)
class PackedFrames:
    """A CapturedFrames batch as a few flat buffers (cheap to pickle: no object per packet)."""

    blob: bytes  # the frames, end to end
    lengths: array[int]  # each frame's length in `blob`
    stamps: array[float]  # each event's ts
    ifaces: list[str]
    pkttypes: bytes
    linktype: int
    node: str | None

    def __len__(self) -> int:
        return len(self.lengths)


def pack_frames(batch: CapturedFrames) -> PackedFrames:
    """`batch` as flat buffers: one C-level pass per column, no Python code per packet."""
    raws: list[Any] = list(map(_raw, batch))
    return PackedFrames(
        b"".join(raws),
        array("I", map(len, raws)),
        array("d", map(_ts, batch)),
        list(map(_iface, batch)),
        bytes(map(_PKTTYPES.__getitem__, map(_direction, batch))),
        batch.linktype,
        batch.node,
    )


def unpack_frames(packed: PackedFrames) -> Iterator[PacketEvent]:
    """The events `pack_frames` packed, decoded again from their frames, in order."""
    blob, offset = packed.blob, 0
    rows = zip(packed.lengths, packed.stamps, packed.ifaces, packed.pkttypes, strict=True)
    for length, ts, iface, pkttype in rows:
        frame = blob[offset : offset + length]
        offset += length
        event = decode_frame(frame, iface, pkttype, ts, packed.linktype, packed.node, True)
        if event is None:  # not from decode_frame after all: a bug, never a silent gap
            raise ValueError(f"a captured frame no longer decodes ({length} bytes at {ts})")
        yield event
