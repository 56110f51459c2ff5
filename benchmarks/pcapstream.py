"""pcap stream reader benchmark: the agent's tcpdump output through svcwatch's real reader.

On a cluster node the agent runs `tcpdump -i any -U -w -` (classic pcap, Linux cooked capture v2,
256-byte snapshots) and svcwatch decodes the stream with `iter_pcap_events`. This feeds the same
format (TCP frames with SLL2 headers, built here with struct) through that reader and prints:

  * packets/s decoded from memory, from a pipe (LocalTransport's ProcessStream, `cat` standing in
    for tcpdump) and from the exec stream with 4 MiB arriving at once (ExecStream over an
    in-memory websocket), each against the reference measured in the same run: the same frames
    decoded by `decode_frame` in one loop, with no stream at all;
  * the lag (now - packet timestamp) second by second while a child process offers 50k packets/s
    through a pipe: flat means the reader keeps up.

Nothing is asserted; the targets (>= 100k packets/s, flat lag at 50k/s) are read off the output.

    .venv/bin/python benchmarks/pcapstream.py            # 300k packets, 6 s at 50k/s
    .venv/bin/python benchmarks/pcapstream.py --quick    # 60k packets, 3 s at 50k/s
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, cast

from svcwatch.capture.pcapstream import iter_pcap_events
from svcwatch.cluster.podexec import ERROR, STDOUT, ExecStream
from svcwatch.model.decode import LINKTYPE_LINUX_SLL2, decode_frame
from tests.helpers.local_transport import LocalTransport

IFNAMES = {2: "eth0", 3: "cni0", 4: "veth1"}
GLOBAL_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 256, LINKTYPE_LINUX_SLL2)


def frame(i: int) -> bytes:
    """One SLL2 + IPv4 + TCP frame (a SYN,ACK or an ACK with some payload), as tcpdump saw it."""
    payload = b"x" * (i % 64)
    tcp = struct.pack(
        "!HHIIBBHHH", 40000 + i % 20000, 80, i, 0, 5 << 4, 0x12 if i % 2 else 0x10, 65535, 0, 0
    )
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp) + len(payload),
        0,
        0,
        64,
        6,
        0,
        bytes([192, 168, 97, 2]),
        bytes([10, 43, (i >> 8) & 255, i & 255]),
    )
    sll2 = struct.pack("!HHiHBB8s", 0x0800, 0, 2 + i % 3, 1, 4 * (i % 2), 6, b"\x02" * 8)
    return sll2 + ip + tcp + payload


def record(ts: float, data: bytes) -> bytes:
    return struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(data), len(data)) + data


def stream_bytes(frames: list[bytes]) -> bytes:
    return GLOBAL_HEADER + b"".join(record(1e9 + i / 1e4, f) for i, f in enumerate(frames))


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds / 1000:7.1f}k packets/s"


def reference(frames: list[bytes]) -> float:
    """Seconds to decode the frames with no stream: the decoder's own cost."""
    began = time.perf_counter()
    for i, data in enumerate(frames):
        decode_frame(data, "eth0", 0, 1e9 + i, LINKTYPE_LINUX_SLL2, None, True)
    return time.perf_counter() - began


def through_reader(stream: BinaryIO, expected: int) -> float:
    began = time.perf_counter()
    count = sum(1 for _ in iter_pcap_events(stream, ifnames=IFNAMES, node=None))
    seconds = time.perf_counter() - began
    if count != expected:
        sys.exit(f"reader decoded {count} of {expected} packets")
    return seconds


class BufferedWebsocket:
    """The exec websocket as ExecStream sees it, with the whole stdout delivered in big frames
    (what a busy node's stream looks like after the reader fell behind)."""

    def __init__(self, data: bytes, frame_size: int) -> None:
        self.frames = deque(data[i : i + frame_size] for i in range(0, len(data), frame_size))
        self.current = b""

    def is_open(self) -> bool:
        return bool(self.frames)

    def update(self, timeout: float) -> None:
        self.current = self.frames.popleft()

    def read_channel(self, channel: int) -> bytes:
        if channel == ERROR:  # the command's exit status, once the stream has ended
            return b"" if self.frames else b'{"status": "Success"}'
        out, self.current = (self.current, b"") if channel == STDOUT else (b"", self.current)
        return out

    def close(self) -> None:
        self.frames.clear()


def throughput(count: int) -> None:
    frames = [frame(i) for i in range(count)]
    data = stream_bytes(frames)
    ref = min(reference(frames) for _ in range(3))
    print(f"reference: decode_frame over {count} frames in memory {rate(count, ref)}")
    cases: list[tuple[str, Any]] = [
        ("reader from memory (BytesIO)", lambda: io.BytesIO(data)),
        ("reader from a pipe (ProcessStream)", None),
        (
            "reader from the exec stream, 4 MiB frames",
            lambda: ExecStream(BufferedWebsocket(data, 4 << 20), ["tcpdump"], "bench", "-"),
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.pcap"
        path.write_bytes(data)
        for label, make in cases:
            opener = make or (lambda: LocalTransport().open_stream(["cat", str(path)]))
            best = min(through_reader(cast(BinaryIO, opener()), count) for _ in range(3))
            print(f"{label:<44} {rate(count, best)}   {ref / best:5.2f}x the reference")


WRITER = r"""
import struct, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
frames = [bytes.fromhex(h) for h in open(sys.argv[4]).read().split()]
out = sys.stdout.buffer
out.write(bytes.fromhex(sys.argv[3])); out.flush()
pack, begin, sent, total = struct.Struct("<IIII").pack, time.time(), 0, int(rate * seconds)
while sent < total:
    now = time.time()
    due = min(total, int((now - begin) * rate))
    if due > sent:
        sec, usec = int(now), int(now % 1 * 1e6)
        out.write(b"".join(pack(sec, usec, len(f), len(f)) + f
                           for f in (frames[i % len(frames)] for i in range(sent, due))))
        out.flush()
        sent = due
    time.sleep(0.001)
"""


def lag_at(offered: float, seconds: float) -> None:
    """Per second: packets decoded and how far behind the packets' own timestamps the reader is.

    The writer is a child process run through LocalTransport, as the agent's tcpdump would be."""
    per_second: dict[int, list[float]] = {}
    kept: deque[object] = deque(maxlen=20000)  # what a dashboard keeps
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.hex"
        path.write_text(" ".join(frame(i).hex() for i in range(1000)))
        argv = [sys.executable, "-c", WRITER, str(offered), str(seconds), GLOBAL_HEADER.hex()]
        stream = LocalTransport().open_stream([*argv, str(path)])
        begin = time.time()
        for event in iter_pcap_events(cast(BinaryIO, stream), ifnames=IFNAMES, node=None):
            now = time.time()
            kept.append(event)
            per_second.setdefault(int(now - begin), []).append(now - event.ts)
        stream.close()
    print(f"lag at {offered / 1000:.0f}k packets/s offered through a pipe:")
    for second, lags in sorted(per_second.items()):
        lags.sort()
        print(
            f"  second {second}: {len(lags):6d} decoded"
            f"  lag p50 {statistics.median(lags) * 1000:6.1f} ms"
            f"  p99 {lags[int(len(lags) * 0.99)] * 1000:6.1f} ms  max {lags[-1] * 1000:6.1f} ms"
        )
    firsts, lasts = _edges(per_second.values(), offered / 2)
    print(
        f"lag p50 first second {firsts * 1000:.1f} ms, "
        f"last second {lasts * 1000:.1f} ms (flat: equal)"
    )


def _edges(seconds: Iterable[list[float]], least: float) -> tuple[float, float]:
    """The median lag of the first and the last whole second."""
    full = [s for s in seconds if len(s) >= least]
    return statistics.median(full[0]), statistics.median(full[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer packets, shorter lag run")
    args = parser.parse_args()
    throughput(60_000 if args.quick else 300_000)
    lag_at(50_000, 3 if args.quick else 6)


if __name__ == "__main__":
    main()
