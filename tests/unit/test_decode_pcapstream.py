"""A pcap byte stream (what `tcpdump -i any -U -w -` writes) decodes into the same events."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from svcwatch.capture.pcapstream import iter_pcap_events
from svcwatch.model.errors import InputError

scapy_all = pytest.importorskip("scapy.all")  # only to write the pcap files


def pcap_bytes(tmp_path: Path, packets: list[object], **writer_kwargs: object) -> bytes:
    path = tmp_path / "capture.pcap"
    writer = scapy_all.PcapWriter(str(path), **writer_kwargs)
    for pkt in packets:
        writer.write(pkt)
    writer.close()
    return path.read_bytes()


class Trickle(io.RawIOBase):
    """A stream that hands out at most 7 bytes per read, like a pipe under load."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.data[self.pos : self.pos + min(7, size if size >= 0 else 7)]
        self.pos += len(chunk)
        return chunk


def test_sll2_stream_names_interfaces_and_directions(tmp_path: Path) -> None:
    v2 = scapy_all.CookedLinuxV2
    syn = scapy_all.IP(src="192.168.97.2", dst="192.168.97.3") / scapy_all.TCP(
        sport=54398, dport=31234, flags="S"
    )
    dnat = scapy_all.IP(src="10.42.0.1", dst="10.42.0.142") / scapy_all.TCP(
        sport=10639, dport=12345, flags="S"
    )
    arp = scapy_all.ARP(op=1, psrc="10.42.0.1", pdst="10.42.0.143")
    packets = [
        v2(proto=0x0800, ifindex=2, pkttype=0) / syn,
        v2(proto=0x0800, ifindex=3, pkttype=4) / dnat,
        v2(proto=0x0806, ifindex=7, pkttype=4) / arp,
    ]
    for i, pkt in enumerate(packets):
        pkt.time = 1000 + i / 1000
    data = pcap_bytes(tmp_path, packets)
    events = list(iter_pcap_events(Trickle(data), ifnames={2: "eth0", 3: "cni0"}, node="k3d-0"))  # type: ignore[arg-type]
    assert [e.text() for e in events] == [
        "[k3d-0/eth0] 192.168.97.2:54398 -> 192.168.97.3:31234 SYN",
        "[k3d-0/cni0] 10.42.0.1:10639 -> 10.42.0.142:12345 SYN",
        "[k3d-0/if7] arp who-has 10.42.0.143 tell 10.42.0.1",
    ]
    assert [e.direction for e in events] == ["in", "out", "out"]
    assert events[1].ts == pytest.approx(1000.001)


def test_ethernet_stream_with_nanosecond_timestamps(tmp_path: Path) -> None:
    pkt = (
        scapy_all.Ether()
        / scapy_all.IP(src="10.42.0.142", dst="10.42.0.1")
        / scapy_all.TCP(flags="RA")
    )
    pkt.time = 5.25
    data = pcap_bytes(tmp_path, [pkt], nano=True)
    (event,) = iter_pcap_events(io.BytesIO(data), ifnames={0: "eth0"}, node=None)
    assert (event.iface, event.flags) == ("eth0", "ACK,RST") and event.ts == pytest.approx(5.25)


def test_a_stream_cut_mid_record_ends_cleanly(tmp_path: Path) -> None:
    pkt = scapy_all.Ether() / scapy_all.IP() / scapy_all.TCP()
    data = pcap_bytes(tmp_path, [pkt, pkt])
    assert len(list(iter_pcap_events(io.BytesIO(data[:-10]), ifnames={}, node=None))) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty pcap stream"),
        (b"\x0a\x0d\x0d\x0a" + b"\x00" * 20, "pcapng"),
        (b"GET / HTTP/1.1\r\n" + b"\x00" * 8, "not a pcap stream"),
    ],
)
def test_bad_streams_are_input_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(iter_pcap_events(io.BytesIO(data), ifnames={}, node=None))


class Chunked(io.RawIOBase):
    """A stream whose reads return the given sizes in turn (cycling), whatever was asked for."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.pos, self.reads = data, sizes, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self.sizes[self.reads % len(self.sizes)]
        self.reads += 1
        chunk = self.data[self.pos : self.pos + min(want, size if size >= 0 else want)]
        self.pos += len(chunk)
        return chunk


def mixed_sll2_packets(count: int) -> list[object]:
    """TCP, UDP, ICMP-quoting and ARP frames on several interfaces, in both directions."""
    v2, ip = scapy_all.CookedLinuxV2, scapy_all.IP
    packets: list[object] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            inner = (
                ip(src="192.168.97.2", dst="10.43.0.10")
                / scapy_all.TCP(sport=40000 + i, dport=80, flags="SA" if i % 8 else "S")
                / (b"x" * (i % 300))
            )  # some frames longer than the 256-byte snapshot tcpdump takes
        elif kind == 1:
            inner = ip(src="10.42.0.7", dst="10.42.0.9") / scapy_all.UDP(sport=53, dport=i)
        elif kind == 2:
            quoted = ip(src="10.42.0.1", dst="10.42.0.9") / scapy_all.TCP(sport=i, dport=81)
            inner = ip(src="10.42.0.9", dst="10.42.0.1") / scapy_all.ICMP(type=3, code=3) / quoted
        else:
            inner = scapy_all.ARP(op=2, psrc="10.42.0.9", pdst="10.42.0.1")
        proto = 0x0806 if kind == 3 else 0x0800
        pkt = v2(proto=proto, ifindex=2 + i % 3, pkttype=4 * (i % 2)) / inner
        pkt.time = 1_000_000 + i / 1000
        packets.append(pkt)
    return packets


@pytest.mark.parametrize(
    "sizes",
    [[1], [2, 3], [15, 16, 17], [23, 1, 300], [4096], [1 << 20], "random"],
    ids=lambda s: s if isinstance(s, str) else "-".join(map(str, s)),
)
def test_any_chunk_boundaries_give_the_same_events(tmp_path: Path, sizes: list[int] | str) -> None:
    """Records split anywhere (mid-header, mid-frame, several per read) decode identically."""
    packets = mixed_sll2_packets(120)
    data = pcap_bytes(tmp_path, packets, linktype=276, snaplen=256)
    ifnames = {2: "eth0", 3: "cni0", 4: "veth1"}
    whole = list(iter_pcap_events(io.BytesIO(data), ifnames=ifnames, node="n1"))
    if sizes == "random":
        rng = random.Random(1234)
        sizes = [rng.choice((1, 2, 5, 16, 17, 40, 99, 280, 1000, 5000)) for _ in range(500)]
    assert isinstance(sizes, list)
    chunked = list(iter_pcap_events(Chunked(data, sizes), ifnames=ifnames, node="n1"))  # type: ignore[arg-type]
    assert chunked == whole
    assert len(whole) == 120
    assert [e.kind for e in whole[:4]] == ["tcp-packet", "udp-packet", "icmp", "arp-reply"]
    assert whole[2].text() == (
        "[n1/veth1] 10.42.0.9 -> 10.42.0.1 icmp port unreachable (for port 2 -> 81)"
    )
    assert [(e.iface, e.node, e.direction) for e in whole[:2]] == [
        ("eth0", "n1", "in"),
        ("cni0", "n1", "out"),
    ]
    assert [e.ts for e in whole] == [pytest.approx(1_000_000 + i / 1000) for i in range(120)]
    assert all(e.raw is not None and len(e.raw) <= 256 for e in whole)


def test_a_corrupt_record_length_is_an_input_error(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(tmp_path, mixed_sll2_packets(2), linktype=276))
    data[24 + 8 : 24 + 12] = (10**9).to_bytes(4, "little")  # the first record's caplen
    with pytest.raises(InputError, match="corrupt pcap stream"):
        list(iter_pcap_events(io.BytesIO(bytes(data)), ifnames={}, node=None))
