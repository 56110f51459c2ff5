"""The node agent's filtered rules read gives the same ChainTree as a whole-table dump.

A throw-away namespace is loaded by the real `iptables-restore` (nf_tables backend, and legacy when
installed) with a node's worth of Services rendered by svcwatch's own kube-proxy renderer, with
counters; the agent reads one Service at a time through LocalTransport (the command the exec API
would run on a node) and the tree must equal `service_tree` over `iptables-save -c`.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from svcwatch.cluster.agent import NodeAgent
from svcwatch.kubeproxy.chains import ext_chain, svc_chain
from svcwatch.kubeproxy.node_rules import render_node
from svcwatch.kubeproxy.render import ProxyConfig
from svcwatch.kubeproxy.restore import parse_save, service_tree, to_restore_text
from svcwatch.model.endpointslice import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from svcwatch.model.service import Service, ServicePort
from svcwatch.session.cluster_nodes import chain_tree
from tests.helpers.local_transport import LocalTransport
from tests.helpers.namespaces import run_in

pytestmark = pytest.mark.lab

NODE = "node-a"
NFT_DATA = Path(__file__).resolve().parents[1] / "data" / "nft"
CONFIG = ProxyConfig(node_name=NODE)


def slice_of(service: Service, ips: list[str], port: int = 8080, name: str = "") -> EndpointSlice:
    endpoints = tuple(
        Endpoint((ip,), EndpointConditions(True, True, False), node_name=NODE if i % 2 else "b")
        for i, ip in enumerate(ips)
    )
    return EndpointSlice(
        service.namespace,
        f"{service.name}-x{len(ips)}",
        endpoints,
        (EndpointPort(port, name),),
        labels={"kubernetes.io/service-name": service.name},
    )


def watched() -> list[tuple[Service, list[EndpointSlice]]]:
    """One of each shape: ClusterIP, NodePort, Local policy, no endpoints, two named ports."""
    plain = Service("shop", "cart", (ServicePort(80, target_port=8080),), cluster_ip="10.43.0.10")
    nodeport = Service(
        "shop",
        "web",
        (ServicePort(80, target_port=8080, node_port=30080),),
        type="NodePort",
        cluster_ip="10.43.0.11",
    )
    local = Service(
        "shop",
        "edge",
        (ServicePort(443, target_port=8080, node_port=30443),),
        type="LoadBalancer",
        cluster_ip="10.43.0.12",
        external_traffic_policy="Local",
    )
    empty = Service(
        "shop",
        "gone",
        (ServicePort(80, node_port=30081),),
        type="NodePort",
        cluster_ip="10.43.0.13",
    )
    named = Service(
        "shop",
        "dns",
        (ServicePort(53, "UDP", "dns"), ServicePort(53, "TCP", "dns-tcp")),
        cluster_ip="10.43.0.14",
    )
    named_slice = EndpointSlice(
        "shop",
        "dns-1",
        (Endpoint(("10.42.1.5",)), Endpoint(("10.42.1.6",))),
        (EndpointPort(53, "dns", "UDP"), EndpointPort(53, "dns-tcp", "TCP")),
        labels={"kubernetes.io/service-name": "dns"},
    )
    return [
        (plain, [slice_of(plain, ["10.42.0.5", "10.42.0.6", "10.42.0.7"])]),
        (nodeport, [slice_of(nodeport, ["10.42.0.8", "10.42.0.9"])]),
        (local, [slice_of(local, ["10.42.0.10", "10.42.0.11", "10.42.0.12"])]),
        (empty, []),
        (named, [named_slice]),
    ]


def filler(count: int) -> list[tuple[Service, list[EndpointSlice]]]:
    out = []
    for i in range(count):
        svc = Service("other", f"s{i}", (ServicePort(80),), cluster_ip=f"10.43.1.{i}")
        out.append((svc, [slice_of(svc, [f"10.42.2.{i}"], port=80)]))
    return out


def with_counters(text: str) -> str:
    """Restore input whose every rule starts with distinct packet/byte counters."""
    numbered = iter(range(1, 1_000_000))
    return re.sub(r"^-A ", lambda _: f"[{(n := next(numbered))}:{n * 60}] -A ", text, flags=re.M)


@pytest.fixture(params=["iptables", "iptables-legacy"])
def node_ns(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A namespace loaded with the node's rules by `<tool>-restore`; (namespace, tool)."""
    tool = request.param
    if shutil.which(f"{tool}-restore") is None:
        pytest.skip(f"{tool}-restore is not installed")
    name = f"svcwatch-t{secrets.token_hex(3)}-rules"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        text = with_counters(to_restore_text(render_node([*watched(), *filler(40)], CONFIG)))
        run_in(
            name,
            [f"{tool}-restore", "--counters"],
            input=text.encode(),
            check=True,
            capture_output=True,
        )
        yield name, tool
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def full_tree(name: str, tool: str, service: Service) -> object:
    dump = run_in(name, [f"{tool}-save", "-c"], capture_output=True, check=True).stdout
    return service_tree(parse_save(dump.decode()), service)


def test_filtered_read_is_the_full_dumps_tree(node_ns: tuple[str, str]) -> None:
    name, tool = node_ns
    agent = NodeAgent(NODE, LocalTransport(name))
    for service, _ in watched():
        rules = agent.read_rules(service, entry=True)
        tree = chain_tree(rules, service)
        expected = full_tree(name, tool, service)
        tree.proxy_backend = ""  # the whole dump's tree is built without naming the backend
        assert tree == expected, service.key
        assert "s7" not in rules.text  # nothing of the other Services left the node
    nodeport = watched()[1][0]
    tree = chain_tree(agent.read_rules(nodeport, entry=True), nodeport)
    hashed = ("shop/web", "tcp")
    assert [r.target for r in tree.entry] == [svc_chain(*hashed), ext_chain(*hashed)]
    assert all(r.packets > 0 and r.bytes == 60 * r.packets for r in tree.all_rules())
    empty = chain_tree(agent.read_rules(watched()[3][0], entry=True), watched()[3][0])
    assert [r.target for r in empty.filter_rules] == ["REJECT", "REJECT"]


def test_a_counters_read_skips_only_the_jumps_in(node_ns: tuple[str, str]) -> None:
    name, tool = node_ns
    agent = NodeAgent(NODE, LocalTransport(name))
    service = watched()[2][0]
    full = chain_tree(agent.read_rules(service, entry=True), service)
    light = agent.read_rules(service, entry=False)
    tree = chain_tree(light, service)
    assert (tree.chains, tree.filter_rules) == (full.chains, full.filter_rules)
    assert light.backend == ("iptables-legacy" if tool == "iptables-legacy" else "iptables-nft")
    # legacy hands out the whole table anyway, so its reads always carry the jumps
    assert tree.entry == (full.entry if tool == "iptables-legacy" else [])


class CountingTransport(LocalTransport):
    """LocalTransport that remembers what it ran (a count of execs on a real node)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ran: list[str] = []

    def run(self, argv: Sequence[str], timeout: float = 20.0) -> str:
        self.ran.append(argv[-1] if argv[0] != "sh" else "sh")
        return super().run(argv, timeout)


def test_nftables_mode_costs_one_exec_a_read() -> None:
    """kube-proxy in nftables mode: found once, then one `nft list table` per read."""
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed")
    name = f"svcwatch-t{secrets.token_hex(3)}-nft"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        transaction = NFT_DATA / "kube-proxy.transaction"
        run_in(name, ["nft", "-f", str(transaction)], check=True, capture_output=True)
        transport = CountingTransport(name)
        agent = NodeAgent(NODE, transport)
        socat = Service(
            "default",
            "socat",
            (ServicePort(12345, node_port=31234),),
            type="NodePort",
            cluster_ip="10.43.161.224",
        )
        trees = [chain_tree(agent.read_rules(socat), socat) for _ in range(3)]
        assert transport.ran == ["sh", "kube-proxy", "kube-proxy", "kube-proxy"]
        assert trees[0].proxy_backend == "nftables"
        assert any(c.startswith("service-") for c in trees[0].chains)
        assert trees[0] == trees[2]
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
