"""The capture's hot path: one frame's header bytes -> one PacketEvent, with `struct` only.

Pure (bytes in, an event out), so it lives in model/: the live capture decodes each frame here, and
the recorder's writer process decodes the same frames again from a `frames.CapturedFrames` batch.
Every frame the node sees passes through here, up to tens of thousands per second, so this module
reads fixed offsets with precompiled `struct.Struct`s and table lookups and never touches scapy
(whose full dissection costs ~350 us a packet; see docs/design.md). It understands exactly
what the blog post prints: IPv4 TCP (flags in its words and order: SYN,ACK  ACK,RST  PSH,ACK
FIN,ACK), UDP, ICMP errors with the ports of the packet they quote, and ARP requests and replies.
Frames come as Ethernet (AF_PACKET on the lab node, DLT_EN10MB) or with a Linux "cooked" header
(`tcpdump -i any`: SLL, DLT 113, or SLL2, DLT 276). Anything else, or a frame cut short inside
the headers, decodes to None.
"""

from __future__ import annotations

import socket
import struct

from svcwatch.model.events import PacketEvent

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINK_NAMES = {
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_LINUX_SLL: "Linux SLL",
    LINKTYPE_LINUX_SLL2: "Linux SLL2",
}

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100

# AF_PACKET's sll_pkttype -> the event's direction word.
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = range(5)
DIRECTIONS = ("in", "in", "in", "other", "out")

_U16 = struct.Struct("!H")
_IPV4 = struct.Struct("!BxH5xB2x4s4s")  # ver/ihl, total length, proto, src, dst
_PORTS = struct.Struct("!HH")
_TCP = struct.Struct("!HH8xBB")  # sport, dport, data offset, flags
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_SLL = struct.Struct("!HHH8sH")  # pkttype, hatype, addr len, addr, protocol
_SLL2 = struct.Struct("!HHiHBB8s")  # protocol, reserved, ifindex, hatype, pkttype, addr len, addr

_inet_ntoa = socket.inet_ntoa

# tcpdump's flag order, which the blog post follows ("ACK,RST", not "RST,ACK").
_FLAG_ORDER = (
    (0x01, "FIN"),
    (0x02, "SYN"),
    (0x08, "PSH"),
    (0x10, "ACK"),
    (0x04, "RST"),
    (0x20, "URG"),
    (0x40, "ECE"),
    (0x80, "CWR"),
)
TCP_FLAG_WORDS: tuple[str, ...] = tuple(
    ",".join(word for bit, word in _FLAG_ORDER if value & bit) for value in range(256)
)

ICMP_UNREACHABLE_WORDS = {
    0: "net unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "net prohibited",
    10: "host prohibited",
    13: "communication prohibited",
}
ICMP_TYPE_WORDS = {0: "echo reply", 5: "redirect", 8: "echo request", 11: "time exceeded"}


def tcp_flag_words(flags: int) -> str:
    """The TCP flag byte as the blog post writes it, e.g. 0x12 -> "SYN,ACK"."""
    return TCP_FLAG_WORDS[flags & 0xFF]


def icmp_words(icmp_type: int, code: int) -> str:
    """An ICMP type/code in words ("port unreachable"), or "type T code C" when unnamed."""
    if icmp_type == 3:
        return ICMP_UNREACHABLE_WORDS.get(code, f"unreachable code {code}")
    return ICMP_TYPE_WORDS.get(icmp_type, f"type {icmp_type} code {code}")


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def decode_frame(
    frame: bytes,
    iface: str,
    pkttype: int,
    ts: float,
    linktype: int = LINKTYPE_ETHERNET,
    node: str | None = None,
    keep_raw: bool = True,
) -> PacketEvent | None:
    """Decode one captured frame into the event the stream shows, or None if it is not one.

    Args:
        frame: the bytes as captured, starting at the link-layer header named by `linktype`.
        iface: the interface it was seen on (for SLL2, the caller maps the header's ifindex).
        pkttype: AF_PACKET's packet type (0 host, 4 outgoing...); SLL/SLL2 headers override it.
        ts: wall-clock seconds when it was seen.
        keep_raw: keep the frame in the event (pcap export, recordings).
    Returns:
        A PacketEvent, or None for other protocols and frames cut short inside their headers.
    """
    try:
        if linktype == LINKTYPE_ETHERNET:
            offset, ethertype = 14, _U16.unpack_from(frame, 12)[0]
            if ethertype == ETH_P_8021Q:
                offset, ethertype = 18, _U16.unpack_from(frame, 16)[0]
        elif linktype == LINKTYPE_LINUX_SLL2:
            ethertype, _, _, _, pkttype, _, _ = _SLL2.unpack_from(frame, 0)
            offset = 20
        elif linktype == LINKTYPE_LINUX_SLL:
            pkttype, _, _, _, ethertype = _SLL.unpack_from(frame, 0)
            offset = 16
        else:
            return None
        direction = DIRECTIONS[pkttype] if 0 <= pkttype < 5 else "other"
        seen: _Seen = (ts, iface, direction, node, frame if keep_raw else None, linktype)
        if ethertype == ETH_P_IP:
            return _decode_ipv4(frame, offset, seen)
        if ethertype == ETH_P_ARP:
            return _decode_arp(frame, offset, seen)
    except struct.error:  # cut short inside a header
        return None
    return None


# Where and how a frame was seen: ts, iface, direction, node, raw, linktype.
_Seen = tuple[float, str, str, str | None, bytes | None, int]


def _event(
    seen: _Seen,
    kind: str,
    src: str,
    dst: str,
    sport: int | None,
    dport: int | None,
    flags: str,
    length: int,
    detail: str,
) -> PacketEvent:
    ts, iface, direction, node, raw, linktype = seen
    return PacketEvent(
        ts,
        kind,
        iface,
        direction,
        src,
        dst,
        sport,
        dport,
        flags,
        length,
        detail,
        node,
        raw,
        linktype,
    )


def _decode_ipv4(frame: bytes, offset: int, seen: _Seen) -> PacketEvent | None:
    ver_ihl, total_len, proto, src_b, dst_b = _IPV4.unpack_from(frame, offset)
    if ver_ihl >> 4 != 4:
        return None
    ihl = (ver_ihl & 0x0F) * 4
    l4 = offset + ihl
    src, dst = _inet_ntoa(src_b), _inet_ntoa(dst_b)
    if proto == 6:
        sport, dport, doff, flags = _TCP.unpack_from(frame, l4)
        payload = max(total_len - ihl - (doff >> 4) * 4, 0)
        return _event(
            seen, "tcp-packet", src, dst, sport, dport, TCP_FLAG_WORDS[flags], payload, ""
        )
    if proto == 17:
        sport, dport = _PORTS.unpack_from(frame, l4)
        payload = max(total_len - ihl - 8, 0)
        return _event(seen, "udp-packet", src, dst, sport, dport, "", payload, "")
    if proto == 1:
        return _decode_icmp(frame, l4, seen, src, dst)
    return None


def _decode_icmp(frame: bytes, l4: int, seen: _Seen, src: str, dst: str) -> PacketEvent:
    icmp_type, code = frame[l4], frame[l4 + 1]
    sport = dport = None
    if icmp_type in (3, 11):  # errors quote the IP header and 8 bytes of the packet they answer
        inner = l4 + 8
        try:
            ver_ihl, _, proto, _, _ = _IPV4.unpack_from(frame, inner)
            if proto in (6, 17):
                sport, dport = _PORTS.unpack_from(frame, inner + (ver_ihl & 0x0F) * 4)
        except struct.error:  # quoted packet cut short: the error itself is still worth showing
            pass
    return _event(seen, "icmp", src, dst, sport, dport, "", 0, icmp_words(icmp_type, code))


def _decode_arp(frame: bytes, offset: int, seen: _Seen) -> PacketEvent | None:
    _, ptype, hlen, plen, op, sha, spa, _, tpa = _ARP.unpack_from(frame, offset)
    if ptype != ETH_P_IP or hlen != 6 or plen != 4:
        return None
    src, dst = _inet_ntoa(spa), _inet_ntoa(tpa)
    if op == 1:
        return _event(seen, "arp-request", src, dst, None, None, "", 0, "")
    if op == 2:
        return _event(seen, "arp-reply", src, dst, None, None, "", 0, mac_text(sha))
    return None
