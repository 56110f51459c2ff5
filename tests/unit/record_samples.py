"""Sample recordings for the record tests: the blog post's wrong-port exchange as real frames.

Frames are built with scapy (as a capture would have seen them: Ethernet on the lab's eth0, cni0
and veth, SLL2 as `tcpdump -i any` writes in cluster mode), wrapped in the events the capture
emits, next to probe results, a slice change, rules syncs and chain snapshots.
"""

from __future__ import annotations

from pathlib import Path

from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.events import Event, Notice, PacketEvent, ProbeEvent, RulesSynced, SliceChanged
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.service import Service

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "socat.yaml"
T0 = 1_700_000_000.0
CLIENT, NODE, POD, BRIDGE = "192.168.97.1", "192.168.97.3", "10.42.0.142", "10.42.0.1"


def seed_objects() -> tuple[Service, EndpointSlice]:
    objs = collect(parse_documents(MANIFESTS.read_text(), "socat.yaml"))
    (service,) = objs.services
    (slice_,) = objs.slices_for(service)
    return service, slice_


def tcp_frame(
    src: str, dst: str, sport: int, dport: int, flags: str, *, sll2: bool = False
) -> bytes:
    from scapy.layers.inet import IP, TCP  # scapy is heavy: only the tests that build frames pay
    from scapy.layers.l2 import CookedLinuxV2, Ether

    packet = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)
    link = (
        CookedLinuxV2(proto=0x0800, ifindex=2, pkttype=0)
        if sll2
        else Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    )
    return bytes(link / packet)


def packet(
    ts: float,
    iface: str,
    direction: str,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: str,
    *,
    sll2: bool = False,
) -> PacketEvent:
    tcp_flags = {"S": "SYN", "SA": "SYN,ACK", "RA": "ACK,RST", "A": "ACK"}[flags]
    return PacketEvent(
        ts=ts,
        kind="tcp-packet",
        iface=iface,
        direction=direction,
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        flags=tcp_flags,
        raw=tcp_frame(src, dst, sport, dport, flags, sll2=sll2),
        linktype=276 if sll2 else 1,
    )


def wrong_port_exchange(t: float, sport: int = 40000) -> list[Event]:
    """One refused probe: SYN in on eth0, DNATed out cni0 and veth, RST back the same way."""
    return [
        packet(t, "eth0", "in", CLIENT, NODE, sport, 31234, "S"),
        packet(t + 0.0001, "cni0", "out", BRIDGE, POD, sport, 12346, "S"),
        packet(t + 0.0002, "veth1", "out", BRIDGE, POD, sport, 12346, "S"),
        packet(t + 0.0003, "veth1", "in", POD, BRIDGE, 12346, sport, "RA"),
        packet(t + 0.0004, "cni0", "other", POD, BRIDGE, 12346, sport, "RA"),
        packet(t + 0.0005, "eth0", "out", NODE, CLIENT, 31234, sport, "RA"),
        ProbeEvent(
            ts=t + 0.0006,
            kind="io-error",
            src=CLIENT,
            sport=sport,
            dst=NODE,
            dport=31234,
            phase="connect",
            error="connection refused",
            errno="ECONNREFUSED",
            started=t,
        ),
    ]


def chain_tree(packets: int, endpoint_port: int = 12345) -> ChainTree:
    sep = "KUBE-SEP-ABCDEF"
    return ChainTree(
        service="default/socat",
        entry=[
            Rule(
                "KUBE-NODEPORTS",
                "-m comment --comment default/socat -j KUBE-EXT-XYZ",
                target="KUBE-EXT-XYZ",
                comment="default/socat",
                packets=packets,
                bytes=packets * 60,
            )
        ],
        chains={
            "KUBE-SVC-XYZ": [Rule("KUBE-SVC-XYZ", f"-j {sep}", target=sep, packets=packets)],
            sep: [
                Rule(
                    sep,
                    f"-p tcp -j DNAT --to-destination {POD}:{endpoint_port}",
                    target="DNAT",
                    dnat_to=f"{POD}:{endpoint_port}",
                    packets=packets,
                )
            ],
        },
        proxy_backend="iptables-nft",
    )


def scripted_stream() -> list[Event]:
    """A happy start, the switch to wrong-port, and two refused probes."""
    _, slice_ = seed_objects()
    return [
        Notice(ts=T0 + 0.5, kind="scenario", message="scenario wrong-port"),
        SliceChanged(
            ts=T0 + 0.6,
            slice="default/socat",
            change="MODIFIED",
            resource_version="7",
            diff=("ports[0].port: 12345 -> 12346",),
            scenario="wrong-port",
            manifest=slice_.to_manifest(),
        ),
        RulesSynced(
            ts=T0 + 0.7,
            service="default/socat",
            added=("KUBE-SEP-ABCDEF",),
            took_ms=21.5,
            proxy_backend="iptables-legacy",
        ),
        *wrong_port_exchange(T0 + 1.0),
        *wrong_port_exchange(T0 + 2.0, sport=40002),
    ]
