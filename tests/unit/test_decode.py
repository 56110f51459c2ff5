"""The hot-path decoder against frames built by scapy, printed the way the blog post prints them."""

from __future__ import annotations

from typing import Any

import pytest

from svcwatch.model.decode import (
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    decode_frame,
    tcp_flag_words,
)
from svcwatch.model.events import PacketEvent, plain_line

# scapy is heavy to import; these tests only use it to build frames.
scapy_all = pytest.importorskip("scapy.all")
Ether, IP, TCP, UDP, ARP, ICMP, Raw = (
    scapy_all.Ether,
    scapy_all.IP,
    scapy_all.TCP,
    scapy_all.UDP,
    scapy_all.ARP,
    scapy_all.ICMP,
    scapy_all.Raw,
)
CookedLinuxV2, CookedLinux = scapy_all.CookedLinuxV2, scapy_all.CookedLinux


def decode(pkt: Any, iface: str = "eth0", pkttype: int = 0, **kwargs: Any) -> PacketEvent:
    event = decode_frame(bytes(pkt), iface, pkttype, 100.0, **kwargs)
    assert event is not None
    return event


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ("S", "SYN"),
        ("SA", "SYN,ACK"),
        ("A", "ACK"),
        ("RA", "ACK,RST"),
        ("PA", "PSH,ACK"),
        ("FA", "FIN,ACK"),
        ("R", "RST"),
        ("FPA", "FIN,PSH,ACK"),
    ],
)
def test_tcp_flags_in_the_seeds_words(flags: str, words: str) -> None:
    pkt = (
        Ether()
        / IP(src="192.168.97.2", dst="192.168.97.3")
        / TCP(sport=54398, dport=31234, flags=flags)
    )
    event = decode(pkt)
    assert event.flags == words
    assert event.kind == "tcp-packet"


def test_syn_on_eth0_prints_the_seed_line() -> None:
    pkt = (
        Ether()
        / IP(src="192.168.97.2", dst="192.168.97.3")
        / TCP(sport=54398, dport=31234, flags="S")
    )
    event = decode(pkt, pkttype=0)
    assert event.direction == "in"
    assert plain_line(event, 96.481) == (
        "+3.519s  [pktcap]           tcp-packet  [eth0] 192.168.97.2:54398 -> 192.168.97.3:31234 SYN"  # noqa: E501
    )


def test_outgoing_frame_on_a_veth_keeps_the_interface_and_direction() -> None:
    pkt = (
        Ether() / IP(src="10.42.0.1", dst="10.42.0.142") / TCP(sport=10639, dport=12345, flags="S")
    )
    event = decode(pkt, iface="veth0829e839", pkttype=4)
    assert (event.iface, event.direction) == ("veth0829e839", "out")
    assert event.text() == "[veth0829e839] 10.42.0.1:10639 -> 10.42.0.142:12345 SYN"


def test_payload_length_ignores_ethernet_padding_and_tcp_options() -> None:
    pkt = (
        Ether()
        / IP(src="10.42.0.1", dst="10.42.0.142")
        / TCP(
            sport=1,
            dport=12345,
            flags="PA",
            options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))],
        )
        / Raw(b"hello")
    )
    assert decode(pkt).length == 5
    padded = Ether() / IP(src="10.42.0.1", dst="10.42.0.142") / TCP(sport=1, dport=2, flags="A")
    assert decode(bytes(padded) + b"\x00" * 6).length == 0


def test_udp_packet_with_length() -> None:
    event = decode(
        Ether()
        / IP(src="192.168.97.2", dst="192.168.97.3")
        / UDP(sport=5000, dport=31235)
        / Raw(b"x" * 18)
    )
    assert (event.kind, event.sport, event.dport, event.length) == ("udp-packet", 5000, 31235, 18)


def test_arp_request_reads_who_has_tell() -> None:
    pkt = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="10.42.0.1", pdst="10.42.0.143")
    event = decode(pkt, iface="cni0", pkttype=4)
    assert event.kind == "arp-request"
    assert event.text() == "[cni0] arp who-has 10.42.0.143 tell 10.42.0.1"


def test_arp_reply_names_the_mac() -> None:
    pkt = Ether() / ARP(op=2, psrc="10.42.0.142", hwsrc="0a:58:0a:2a:00:8e", pdst="10.42.0.1")
    event = decode(pkt, iface="cni0")
    assert event.kind == "arp-reply"
    assert event.text() == "[cni0] arp reply 10.42.0.142 is-at 0a:58:0a:2a:00:8e"


@pytest.mark.parametrize(("code", "words"), [(3, "port unreachable"), (1, "host unreachable")])
def test_icmp_unreachable_quotes_the_ports_of_the_packet_it_answers(code: int, words: str) -> None:
    quoted = IP(src="192.168.97.2", dst="192.168.97.3") / TCP(sport=47514, dport=31234, flags="S")
    pkt = Ether() / IP(src="192.168.97.3", dst="192.168.97.2") / ICMP(type=3, code=code) / quoted
    event = decode(pkt, pkttype=4)
    assert (event.kind, event.detail, event.sport, event.dport) == ("icmp", words, 47514, 31234)
    assert (event.src, event.dst) == ("192.168.97.3", "192.168.97.2")
    assert (
        event.text()
        == f"[eth0] 192.168.97.3 -> 192.168.97.2 icmp {words} (for port 47514 -> 31234)"
    )


def test_icmp_with_a_cut_quote_still_decodes() -> None:
    pkt = (
        Ether()
        / IP(src="192.168.97.3", dst="192.168.97.2")
        / ICMP(type=3, code=1)
        / Raw(b"\x45\x00")
    )
    event = decode(pkt)
    assert (event.detail, event.dport) == ("host unreachable", None)


@pytest.mark.parametrize("cut", [10, 14, 20, 33, 35, 40, 45])
def test_frames_cut_inside_their_headers_decode_to_none(cut: int) -> None:
    pkt = Ether() / IP(src="192.168.97.2", dst="192.168.97.3") / TCP(sport=1, dport=2, flags="S")
    assert decode_frame(bytes(pkt)[:cut], "eth0", 0, 1.0) is None


def test_truncated_arp_decodes_to_none() -> None:
    pkt = Ether() / ARP(op=1, psrc="10.42.0.1", pdst="10.42.0.143")
    assert decode_frame(bytes(pkt)[:30], "cni0", 0, 1.0) is None


def test_other_protocols_decode_to_none() -> None:
    assert (
        decode_frame(bytes(Ether(type=0x86DD) / Raw(b"\x60" + b"\x00" * 60)), "eth0", 0, 1.0)
        is None
    )
    gre = Ether() / IP(src="1.1.1.1", dst="2.2.2.2", proto=47) / Raw(b"\x00" * 8)
    assert decode_frame(bytes(gre), "eth0", 0, 1.0) is None


def test_sll2_frame_takes_direction_from_its_header() -> None:
    inner = IP(src="10.42.0.142", dst="192.168.97.2") / TCP(sport=12345, dport=54398, flags="SA")
    frame = CookedLinuxV2(proto=0x0800, ifindex=5, pkttype=4) / inner
    event = decode(frame, iface="cni0", pkttype=0, linktype=LINKTYPE_LINUX_SLL2)
    assert (event.direction, event.flags, event.linktype) == ("out", "SYN,ACK", LINKTYPE_LINUX_SLL2)
    assert event.text() == "[cni0] 10.42.0.142:12345 -> 192.168.97.2:54398 SYN,ACK"


def test_sll2_arp_and_sll_v1() -> None:
    arp = CookedLinuxV2(proto=0x0806, ifindex=3, pkttype=1) / ARP(
        op=1, psrc="10.42.0.1", pdst="10.42.0.143"
    )
    assert decode(arp, iface="veth1", linktype=LINKTYPE_LINUX_SLL2).kind == "arp-request"
    v1 = CookedLinux(pkttype=0, proto=0x0800) / IP(src="1.2.3.4", dst="5.6.7.8") / TCP(flags="RA")
    assert decode(v1, linktype=LINKTYPE_LINUX_SLL).flags == "ACK,RST"


def test_raw_bytes_are_kept_only_on_request() -> None:
    pkt = bytes(Ether() / IP() / TCP())
    kept = decode_frame(pkt, "eth0", 0, 1.0)
    assert kept is not None and kept.raw == pkt
    dropped = decode_frame(pkt, "eth0", 0, 1.0, keep_raw=False)
    assert dropped is not None and dropped.raw is None


def test_flag_words_table_covers_every_byte() -> None:
    assert tcp_flag_words(0x12) == "SYN,ACK"
    assert tcp_flag_words(0x14) == "ACK,RST"
    assert tcp_flag_words(0) == ""
