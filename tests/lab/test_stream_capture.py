"""NodeCapture and the probe on a throw-away namespace pair: real sockets, real kernel filter."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from svcwatch import netns
from svcwatch.capture.sniffer import NodeCapture
from svcwatch.model.events import CaptureStarted, Event, PacketEvent, ProbeEvent
from svcwatch.probe.tcp import probe_once
from tests.helpers.sinks import CollectingSink

pytestmark = pytest.mark.lab

SERVER_IP, CLIENT_IP, SILENT_IP = "10.250.0.1", "10.250.0.2", "10.250.0.77"


@dataclass
class Pair:
    """Namespace `server` (the "node") and `client`, joined by veth `wire` (server end)."""

    server: str
    client: str
    prefix: str

    def add_veth(self, ifname: str, peer: str) -> None:
        """One more veth from the server namespace to the client, created while capturing."""
        with iproute(self.server) as ipr:
            ipr.link(
                "add", ifname=ifname, kind="veth", peer={"ifname": peer, "net_ns_fd": self.client}
            )
            ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")
        with iproute(self.client) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=peer)[0], state="up")


def iproute(name: str) -> Any:
    from pyroute2 import IPRoute  # heavy: only these tests build namespaces

    with netns.entered(name):
        return IPRoute()


@pytest.fixture
def pair() -> Iterator[Pair]:
    from pyroute2 import netns as pr_netns

    prefix = f"svcwatch-t{secrets.token_hex(3)}"
    server, client = f"{prefix}-srv", f"{prefix}-cli"
    pr_netns.create(server)
    try:
        pr_netns.create(client)
        with iproute(server) as ipr:
            ipr.link(
                "add", ifname="wire", kind="veth", peer={"ifname": "wire", "net_ns_fd": client}
            )
            for ifname in ("lo", "wire"):
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")
            ipr.addr(
                "add", index=ipr.link_lookup(ifname="wire")[0], address=SERVER_IP, prefixlen=24
            )
        with iproute(client) as ipr:
            for ifname in ("lo", "wire"):
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")
            ipr.addr(
                "add", index=ipr.link_lookup(ifname="wire")[0], address=CLIENT_IP, prefixlen=24
            )
            ipr.route("add", dst="10.251.0.0/24", type="unreachable")
        yield Pair(server, client, prefix)
    finally:
        for name in (server, client):
            if netns.exists(name):
                pr_netns.remove(name)
    assert not any(n.startswith(prefix) for n in netns.list_names())


@pytest.fixture
def echo_server(pair: Pair) -> Iterator[int]:
    """An echo listener on SERVER_IP:7000 inside the server namespace."""
    listener = netns.socket_in(pair.server, socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((SERVER_IP, 7000))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield 7000
    stop.set()
    thread.join()
    listener.close()


def wait_for(
    sink: CollectingSink, predicate: Callable[[list[Event]], bool], limit: float = 5.0
) -> list[Event]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        events = sink.snapshot()
        if predicate(events):
            return events
        time.sleep(0.05)
    return sink.snapshot()


def packets(events: list[Event]) -> list[PacketEvent]:
    return [e for e in events if isinstance(e, PacketEvent)]


def probe(pair: Pair, target: tuple[str, int], timeout: float = 1.0) -> ProbeEvent:
    return asyncio.run(probe_once(target, netns=pair.client, timeout=timeout, payload=b"hello"))


def test_capture_sees_the_handshake_with_interface_and_direction(
    pair: Pair, echo_server: int
) -> None:
    sink = CollectingSink()
    capture = NodeCapture(pair.server, sink, service_key="test/echo")
    capture.start(f"tcp port {echo_server} or arp")
    try:
        result = probe(pair, (SERVER_IP, echo_server))
        events = wait_for(sink, lambda ev: any(p.flags.startswith("FIN") for p in packets(ev)))
    finally:
        capture.stop()
    assert result.kind == "echo-ok" and result.src == CLIENT_IP
    started = [e for e in events if isinstance(e, CaptureStarted)]
    assert started[0].bpf == "tcp port 7000 or arp" and "wire" in started[0].interfaces
    seen = [(p.iface, p.direction, p.flags) for p in packets(events) if p.kind == "tcp-packet"]
    assert ("wire", "in", "SYN") == seen[0]
    assert ("wire", "out", "SYN,ACK") == seen[1]
    syn = next(p for p in packets(events) if p.kind == "tcp-packet")
    assert (syn.src, syn.sport, syn.dst, syn.dport) == (CLIENT_IP, result.sport, SERVER_IP, 7000)
    assert any(p.length == 5 for p in packets(events))  # the echo's payload
    stats = capture.stats()
    assert stats["drops"] == 0 and stats["frames"] >= len(seen)


def test_kernel_filter_keeps_other_traffic_out_and_refilter_announces_itself(
    pair: Pair, echo_server: int
) -> None:
    sink = CollectingSink()
    capture = NodeCapture(pair.server, sink, service_key="test/echo")
    capture.start("tcp port 9")
    try:
        assert probe(pair, (SERVER_IP, echo_server)).kind == "echo-ok"
        time.sleep(0.2)
        assert packets(sink.snapshot()) == []
        capture.set_filter(f"tcp port {echo_server}")
        assert probe(pair, (SERVER_IP, echo_server)).kind == "echo-ok"
        events = wait_for(sink, lambda ev: len(packets(ev)) >= 3)
    finally:
        capture.stop()
    assert [e.bpf for e in events if isinstance(e, CaptureStarted)] == [
        "tcp port 9",
        "tcp port 7000",
    ]
    assert packets(events)[0].flags == "SYN"


def test_veths_made_after_the_capture_started_are_seen(pair: Pair) -> None:
    sink = CollectingSink()
    capture = NodeCapture(pair.server, sink, service_key="test/echo")
    capture.start("arp")
    try:
        pair.add_veth("vethlate", "late")
        with iproute(pair.server) as ipr:
            ipr.addr(
                "add",
                index=ipr.link_lookup(ifname="vethlate")[0],
                address="10.252.0.1",
                prefixlen=24,
            )
        # Connecting to a silent address on the new link makes the server ask who-has on it.
        with netns.entered(pair.server):
            sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("10.252.0.9", 80))
        events = wait_for(sink, lambda ev: any(p.iface == "vethlate" for p in packets(ev)))
        sock.close()
    finally:
        capture.stop()
    late = [p for p in packets(events) if p.iface == "vethlate"]
    assert late and late[0].text() == "[vethlate] arp who-has 10.252.0.9 tell 10.252.0.1"


def test_probe_words_for_a_silent_address_and_an_unreachable_route(pair: Pair) -> None:
    timed_out = probe(pair, (SILENT_IP, 7000), timeout=0.3)
    assert (timed_out.phase, timed_out.error, timed_out.src) == (
        "connect",
        "i/o timeout",
        CLIENT_IP,
    )
    unreachable = probe(pair, ("10.251.0.5", 7000))
    assert (unreachable.error, unreachable.errno) == ("no route to host", "EHOSTUNREACH")


def test_probe_refused_and_capture_sees_the_reset(pair: Pair) -> None:
    sink = CollectingSink()
    capture = NodeCapture(pair.server, sink, service_key="test/echo")
    capture.start("tcp port 7001")
    try:
        refused = probe(pair, (SERVER_IP, 7001))
        events = wait_for(sink, lambda ev: any(p.flags == "ACK,RST" for p in packets(ev)))
    finally:
        capture.stop()
    assert (refused.error, refused.errno) == ("connection refused", "ECONNREFUSED")
    assert [p.flags for p in packets(events)] == ["SYN", "ACK,RST"]
