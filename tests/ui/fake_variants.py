"""FakeSession variants for the session-dependent parts of the dashboard.

Each changes one thing a real backend would: frames with raw bytes (the capture keeps them),
node-labelled packets (a multi-node cluster), a broken watch (cluster), kube-proxy in nftables
mode (rules read with `nft list table ip kube-proxy`, here a real listing from tests/data/nft), and
wall-clock timestamps (so a RecordingSession's pulls and the events share one timeline).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from svcwatch.kubeproxy.nft import service_tree_nft
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.events import Event, PacketEvent
from svcwatch.session.capabilities import Capabilities
from tests.ui.fakes import FakeSession

NFT_DATA = Path(__file__).resolve().parents[1] / "data" / "nft"


def tcp_frame(event: PacketEvent) -> bytes:
    """The Ethernet frame a capture would have kept for this TCP PacketEvent."""
    from scapy.layers.inet import IP, TCP  # scapy is heavy: only these tests build frames
    from scapy.layers.l2 import Ether

    flags = "".join({"SYN": "S", "ACK": "A", "RST": "R"}[f] for f in event.flags.split(","))
    packet = IP(src=event.src, dst=event.dst) / TCP(
        sport=event.sport or 0, dport=event.dport or 0, flags=flags
    )
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / packet)


class RawFramesSession(FakeSession):
    """TCP packets carry their frames, as the lab's capture emits them; optionally a node name."""

    def __init__(self, *args: object, node: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.node = node

    def _emit(self, events: list[Event]) -> None:
        super()._emit([self._framed(e) for e in events])

    def _framed(self, event: Event) -> Event:
        if not isinstance(event, PacketEvent):
            return event
        raw = tcp_frame(event) if event.kind == "tcp-packet" else None
        return replace(event, raw=raw, node=self.node)


class StaleWatchSession(FakeSession):
    """A cluster-shaped session whose watch broke `stale_since` (None: live)."""

    kind = "cluster"
    title = "cluster test (default/socat)"

    def __init__(self, stale_since: float | None = None) -> None:
        super().__init__()
        self.stale_since = stale_since

    def capabilities(self) -> Capabilities:
        return Capabilities(scenarios=self, slice_editing=self, watch_health=self)


class NftablesSession(FakeSession):
    """kube-proxy in nftables mode: the chain is read from a real `nft list` listing."""

    kind = "cluster"
    title = "cluster test (default/socat)"

    def __init__(self, listing: str = "kube-proxy.nft") -> None:
        super().__init__()
        self.listing = (NFT_DATA / listing).read_text()

    def read_chain(self) -> ChainTree:
        return service_tree_nft(self.listing, self.service())


class WallClockSession(RawFramesSession):
    """Events stamped with the wall clock as they are emitted, as a live backend stamps them."""

    def __init__(self) -> None:
        super().__init__()
        self.last_ts = 0.0

    def _tick(self) -> float:
        self.last_ts = max(self.last_ts + 0.000_001, time.time())
        return self.last_ts


class StickyLoadBalancerSession(FakeSession):
    """The blog post's Service as a LoadBalancer with an externalIP, loadBalancerSourceRanges and
    ClientIP session affinity: entry points and affinity rules the plain NodePort lacks."""

    def __init__(self, scenario: str = "mixed") -> None:
        super().__init__(scenario)
        self._service = replace(
            self._service,
            type="LoadBalancer",
            external_ips=("192.168.97.50",),
            load_balancer_ips=("192.168.97.240",),
            source_ranges=("192.168.97.0/24",),
            session_affinity="ClientIP",
            affinity_seconds=600,
        )
