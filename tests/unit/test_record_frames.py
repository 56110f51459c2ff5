"""A capture's batch reaches the recording as its raw frames, and comes back as the same packets.

The live capture hands each batch to the recorder as `CapturedFrames`; the recorder forwards only
its frames (one blob) and the writer process decodes them again. What a user relies on: every
frame the dashboard showed is in the recording, in order, byte for byte, with the very fields the
dashboard showed (kind, addresses, ports, flags, direction, interface, node, time).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from svcwatch.model.decode import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, decode_frame
from svcwatch.model.events import Event, PacketEvent
from svcwatch.model.frames import CapturedFrames, pack_frames, unpack_frames
from svcwatch.record.reader import load_recording
from svcwatch.record.writer import Recorder
from tests.unit.record_samples import T0, scripted_stream

sc = pytest.importorskip("scapy.all")  # only to build frames


def frames() -> list[bytes]:
    """One of each frame kind the stream shows (TCP flags, UDP, ICMP quoting a port, ARP, VLAN)."""
    client, node, pod = "192.168.97.1", "192.168.97.3", "10.42.0.143"
    quoted = sc.IP(src=client, dst=node) / sc.UDP(sport=47514, dport=31234)
    out: list[Any] = [
        sc.Ether() / sc.IP(src=client, dst=node) / sc.TCP(sport=40000, dport=31234, flags=flags)
        for flags in ("S", "SA", "A", "RA", "PA", "FA")
    ]
    out += [
        sc.Ether()
        / sc.IP(src=client, dst=pod)
        / sc.UDP(sport=5000, dport=12345)
        / sc.Raw(b"x" * 18),
        sc.Ether() / sc.IP(src=node, dst=client) / sc.ICMP(type=3, code=3) / quoted,
        sc.Ether(dst="ff:ff:ff:ff:ff:ff") / sc.ARP(op=1, psrc="10.42.0.1", pdst=pod),
        sc.Ether(dst="0a:58:0a:2a:00:01")
        / sc.ARP(op=2, psrc=pod, hwsrc="0a:58:0a:2a:00:8e", pdst="10.42.0.1"),
        sc.Ether()
        / sc.Dot1Q(vlan=7)
        / sc.IP(src=client, dst=node)
        / sc.TCP(dport=31234, flags="S"),
    ]
    return [bytes(f) for f in out]


def captured(count: int, node: str | None = "node-1", start: float = T0) -> CapturedFrames:
    """`count` events decoded as the capture decodes them, on three interfaces, every pkttype."""
    kinds, events = frames(), []
    for i in range(count):
        ts = start + i * 1.000000001e-5  # nanosecond stamps, as SO_TIMESTAMPNS gives them
        iface = ("eth0", "cni0", "veth1a2b3c")[i % 3]
        event = decode_frame(kinds[i % len(kinds)], iface, i % 7, ts, LINKTYPE_ETHERNET, node)
        assert event is not None
        events.append(event)
    return CapturedFrames(events, linktype=LINKTYPE_ETHERNET, node=node)


def raws(events: list[Event]) -> list[bytes | None]:
    return [getattr(e, "raw", None) for e in events]


@pytest.mark.parametrize("node", ["node-1", None])
def test_packed_frames_decode_to_the_same_packets_byte_for_byte(node: str | None) -> None:
    batch = captured(500, node)
    back = list(unpack_frames(pack_frames(batch)))
    assert back == list(batch)
    assert [e.raw for e in back] == [e.raw for e in batch]
    assert {e.direction for e in back} == {"in", "out", "other"}


def test_cooked_frames_from_tcpdump_pack_and_decode_too() -> None:
    sll2 = (
        sc.CookedLinuxV2(proto=0x0800, ifindex=5, pkttype=4)
        / sc.IP(src="10.42.0.143", dst="192.168.97.1")
        / sc.TCP(sport=12345, dport=54398, flags="SA")
    )
    event = decode_frame(bytes(sll2), "cni0", 0, T0, LINKTYPE_LINUX_SLL2, "kind-worker")
    assert event is not None and event.direction == "out"
    batch = CapturedFrames([event], linktype=LINKTYPE_LINUX_SLL2, node="kind-worker")
    assert list(unpack_frames(pack_frames(batch))) == [event]


def test_a_frame_that_no_longer_decodes_is_an_error_not_a_gap() -> None:
    batch = captured(3)
    packed = pack_frames(batch)
    broken = replace(packed, blob=b"\x00" * len(packed.blob))  # not a frame of any kind
    with pytest.raises(ValueError, match="no longer decodes"):
        list(unpack_frames(broken))


@pytest.mark.parametrize("name", ["burst.svcrec", "burst.svcrec.gz"])
def test_every_captured_frame_is_recorded_in_order_byte_for_byte(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    others = scripted_stream()
    rec = Recorder(path, session_kind="lab")
    want: list[Event] = []
    for i in range(40):  # capture batches of varied sizes, other events and plain lists between
        batch = captured(1 + i * 97, start=T0 + i)
        rec.emit_many(batch)
        rec.emit(others[i % len(others)])
        plain = list(captured(2, start=T0 + i + 0.5))
        rec.emit_many(plain)
        want += [*batch, others[i % len(others)], *plain]
    rec.close()
    got = load_recording(path)
    assert got.complete and got.damage is None and rec.error is None
    packets = [e for e in got.events if isinstance(e, PacketEvent)]
    assert len(packets) == sum(isinstance(e, PacketEvent) for e in want) > 75_000
    assert got.events == want
    assert raws(got.events) == raws(want)
    assert rec.events_written == len(want)


def test_a_flood_that_never_pauses_still_reaches_the_file_within_about_a_second(
    tmp_path: Path,
) -> None:
    """The recorder holds a capture's batches back while packets flow (so a burst keeps its
    speed), but never longer than its hold (0.5 s): packets reach the file while the flood goes
    on, so a crash loses at most about the last second (a recorder that held them until the
    flood paused would write nothing for the whole 10 s this flood may last)."""
    import threading
    import time

    path = tmp_path / "flood.svcrec.gz"
    rec = Recorder(path, session_kind="lab")
    stop = threading.Event()

    batch = captured(30)

    def flood() -> None:  # a batch every 0.05 s, as the capture hands them over in a flood
        while not stop.wait(0.05):
            rec.emit_many(CapturedFrames(batch, linktype=batch.linktype, node=batch.node))

    flooding = threading.Thread(target=flood)
    flooding.start()
    seen_at = None
    try:
        began = time.monotonic()
        while seen_at is None and time.monotonic() - began < 10:
            time.sleep(0.2)
            if _packets_on_disk(path):
                seen_at = time.monotonic() - began
    finally:
        stop.set()
        flooding.join()
        rec.close()
    assert seen_at is not None, "nothing reached the file while the flood lasted"


def _packets_on_disk(path: Path) -> bool:
    try:
        return any(isinstance(e, PacketEvent) for e in load_recording(path).events)
    except Exception:  # nothing readable yet  # noqa: BLE001
        return False
