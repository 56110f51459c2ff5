"""The node agent's real commands, run through LocalTransport inside a throw-away "node" namespace.

The cluster agent runs `tcpdump -i any -U -w - FILTER`, `iptables-save -c -t nat|filter` and
`ip -o link` on a node through the exec API; here the same argv runs for real in a namespace built
for the test (a node with a bridge-side veth to one pod namespace, and a real k3s node's ruleset
loaded), so the decoding and parsing are checked on the kernel's own output.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from svcwatch import netns
from svcwatch.capture.bpf import filter_for
from svcwatch.capture.pcapstream import iter_pcap_events
from svcwatch.capture.sniffer import NodeCapture
from svcwatch.cluster.agent import NodeAgent
from svcwatch.kubeproxy.restore import parse_save, service_tree
from svcwatch.model.endpointslice import Endpoint, EndpointPort, EndpointSlice
from svcwatch.model.events import PacketEvent
from svcwatch.model.service import Service, ServicePort
from tests.helpers.local_transport import LocalTransport
from tests.helpers.namespaces import run_in
from tests.helpers.sinks import CollectingSink

pytestmark = pytest.mark.lab

DATA = Path(__file__).resolve().parents[1] / "data" / "iptables"
NODE_IP, POD_IP, PORT = "10.42.0.1", "10.42.0.142", 12345
SOCAT = Service(
    "default",
    "socat",
    (ServicePort(PORT, node_port=31234),),
    type="NodePort",
    cluster_ip="10.43.161.224",
)
SLICE = EndpointSlice(
    "default",
    "socat",
    (Endpoint((POD_IP,)),),
    (EndpointPort(PORT),),
    labels={"kubernetes.io/service-name": "socat"},
)


@dataclass
class FakeNode:
    node: str  # the "node" namespace: veth `cni9` to the pod, k3s rules loaded
    pod: str  # the pod namespace: `eth0` with POD_IP, an echo server on PORT


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    prefix = f"svcwatch-t{secrets.token_hex(3)}"
    node = FakeNode(f"{prefix}-node", f"{prefix}-pod0")
    ip("netns", "add", node.node)
    try:
        ip("netns", "add", node.pod)
        # Both ends are born inside the namespaces: nothing ever appears in the host namespace.
        ip(
            "-n",
            node.node,
            "link",
            "add",
            "cni9",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            node.pod,
        )
        ip("-n", node.node, "addr", "add", f"{NODE_IP}/24", "dev", "cni9")
        ip("-n", node.pod, "addr", "add", f"{POD_IP}/24", "dev", "eth0")
        for name, link in (
            (node.node, "cni9"),
            (node.node, "lo"),
            (node.pod, "eth0"),
            (node.pod, "lo"),
        ):
            ip("-n", name, "link", "set", link, "up")
        restore = DATA / "k3s-node.restore"
        run_in(
            node.node,
            ["iptables-restore", "--counters", str(restore)],
            check=True,
            capture_output=True,
        )
        yield node
    finally:
        for name in (node.pod, node.node):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def serve_echo(pod_ns: str) -> socket.socket:
    """A one-connection-at-a-time echo server on POD_IP:PORT inside the pod namespace."""
    server = netns.socket_in(pod_ns, socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((POD_IP, PORT))
    server.listen()

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(100))

    threading.Thread(target=loop, daemon=True).start()
    return server


def talk(node_ns: str, port: int) -> bytes | str:
    """Connect from the node to the pod and send "hello": the echo, or the error's name."""
    client = netns.socket_in(node_ns, socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(3)
    try:
        client.connect((POD_IP, port))
        client.sendall(b"hello")
        return client.recv(100)
    except ConnectionRefusedError:
        return "refused"
    finally:
        client.close()


def tcp_shapes(events: list[PacketEvent]) -> list[tuple[object, ...]]:
    return [shape(e) for e in events if e.kind == "tcp-packet"]


def caught_up(agent_events: list[PacketEvent], reference: CollectingSink) -> bool:
    """The agent saw the wrong-port RST and every TCP frame the lab capture saw so far."""
    lab = [e for e in reference.snapshot() if isinstance(e, PacketEvent)]
    agent = list(agent_events)
    return any("RST" in e.flags for e in agent) and tcp_shapes(agent) == tcp_shapes(lab)


def shape(event: PacketEvent) -> tuple[object, ...]:
    return (
        event.kind,
        event.iface,
        event.direction,
        event.src,
        event.dst,
        event.sport,
        event.dport,
        event.flags,
        event.length,
    )


def test_agent_capture_decodes_like_the_lab_capture(fake_node: FakeNode) -> None:
    agent = NodeAgent("k3s-node", LocalTransport(fake_node.node))
    ifnames = agent.links()
    assert {"lo", "cni9"} <= set(ifnames.values())
    # The slice lists the right and the wrong port, so the filter keeps the wrong-port RST too.
    both_ports = SLICE.with_ports(EndpointPort(PORT), EndpointPort(PORT + 1, name="wrong"))
    bpf = filter_for(SOCAT, both_ports, node_ip=NODE_IP, pod_cidr="10.42.0.0/24")
    server = serve_echo(fake_node.pod)
    reference = CollectingSink()
    lab_capture = NodeCapture(fake_node.node, reference, service_key=SOCAT.key, node=None)
    lab_capture.start(bpf)
    stream = agent.capture(bpf)  # returns once tcpdump says "listening on"
    events: list[PacketEvent] = []
    reader = threading.Thread(
        target=lambda: events.extend(
            iter_pcap_events(cast(BinaryIO, stream), ifnames=ifnames, node=None)
        )
    )
    reader.start()
    try:
        assert talk(fake_node.node, PORT) == b"hello"
        assert talk(fake_node.node, PORT + 1) == "refused"  # the wrong-port scenario: RST
        # Both captures see the same frames, each at its own pace (tcpdump -U per packet, the lab
        # capture in 50 ms batches): wait until the agent's stream has caught up with the lab's.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not caught_up(events, reference):
            time.sleep(0.05)
    finally:
        stream.close()
        reader.join(timeout=10)
        lab_capture.stop()
        server.close()

    tcp = [e for e in events if e.kind == "tcp-packet"]
    assert tcp[0].iface == "cni9" and tcp[0].direction == "out"
    assert (tcp[0].src, tcp[0].dst, tcp[0].dport, tcp[0].flags) == (NODE_IP, POD_IP, PORT, "SYN")
    assert any(e.flags == "SYN,ACK" and e.src == POD_IP and e.direction == "in" for e in tcp)
    assert any(e.length == 5 and e.dst == POD_IP for e in tcp)  # "hello"
    assert any(e.dport == PORT + 1 and e.flags == "SYN" for e in tcp), (
        tcp_shapes(tcp),
        stream.stderr_text,  # type: ignore[attr-defined]
        tcp_shapes([e for e in reference.snapshot() if isinstance(e, PacketEvent)]),
    )
    assert any(e.sport == PORT + 1 and "RST" in e.flags for e in tcp), [shape(e) for e in tcp]
    assert all(e.linktype == 276 for e in events)  # Linux cooked v2: the interface index travels
    lab_events = [e for e in reference.snapshot() if isinstance(e, PacketEvent)]
    assert tcp_shapes(tcp) == tcp_shapes(lab_events)


def test_agent_reads_the_service_chain_among_a_real_nodes_rules(fake_node: FakeNode) -> None:
    agent = NodeAgent("k3s-node", LocalTransport(fake_node.node))

    rules = agent.read_rules(SOCAT)

    assert rules.mode == "iptables"
    assert rules.command in ("iptables", "iptables-nft", "iptables-legacy-save")
    saved = parse_save(rules.text)
    # Only the Service's own chains leave the node, not the CNI's or other Services'.
    chains = set(saved.table("nat").chains)
    assert not {"FLANNEL-POSTRTG", "CNI-HOSTPORT-DNAT", "KUBE-SVC-NPX46M4PTMTKRN6Y"} & chains
    tree = service_tree(saved, SOCAT)
    assert list(tree.chains) == [
        "KUBE-EXT-6GHM6NOKDRAB634Q",
        "KUBE-SVC-6GHM6NOKDRAB634Q",
        "KUBE-SEP-STAYFALK6DPGANUO",
        "KUBE-SEP-L7Q23S57UQHHMQS4",
    ]
    dnat = [r for r in tree.all_rules() if r.dnat_to]
    assert [(r.dnat_to, r.packets) for r in dnat] == [
        ("10.42.0.142:12345", 23),
        ("10.42.0.143:12345", 21),
    ]
    assert all("traefik" not in (r.comment or "") for r in tree.all_rules())


def test_a_node_without_kube_proxy_rules_says_so(fake_node: FakeNode) -> None:
    agent = NodeAgent("pod-only", LocalTransport(fake_node.pod))  # the pod namespace has no rules
    rules = agent.read_rules(SOCAT)
    assert rules.mode in ("none", "nftables")
    assert "KUBE-SERVICES" not in rules.text
