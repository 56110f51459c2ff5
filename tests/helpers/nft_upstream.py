"""Upstream's TestOverallNFTablesRules inputs (kubernetes pkg/proxy/nftables/proxier_test.go at
commit 030880a5): NewFakeProxier's settings and the six Services with their EndpointSlices, for the
renderer's golden test and the lab test that loads the result into a real kernel."""

from __future__ import annotations

from dataclasses import replace

from svcwatch.kubeproxy.nft_render import NftConfig
from svcwatch.model.endpointslice import Endpoint, EndpointPort, EndpointSlice
from svcwatch.model.service import Service, ServicePort

UPSTREAM = NftConfig(
    cluster_cidr="10.0.0.0/8",
    service_cidr="172.30.0.0/16",
    node_ips=("192.168.0.2",),
    masquerade_mark="0x4000",
    node_name="test-node",
)


def endpoint_slice(ns: str, name: str, *ips: str, port: int = 80) -> EndpointSlice:
    return EndpointSlice(
        ns,
        f"{name}-1",
        tuple(Endpoint((ip,)) for ip in ips),
        (EndpointPort(port, "p80"),),
        labels={"kubernetes.io/service-name": name},
    )


def upstream_overall_services() -> list[tuple[Service, list[EndpointSlice]]]:
    """TestOverallNFTablesRules' six Services and their slices (proxier_test.go at 030880a5)."""
    p80 = ServicePort(80, name="p80")
    lb = "LoadBalancer"
    svc1 = Service("ns1", "svc1", (p80,), cluster_ip="172.30.0.41")
    svc2 = Service(
        "ns2", "svc2", (replace(p80, node_port=3001),), type=lb, cluster_ip="172.30.0.42",
        external_traffic_policy="Local", load_balancer_ips=("1.2.3.4",),
        external_ips=("192.168.99.22",), health_check_node_port=30000,
    )  # fmt: skip
    svc3 = Service(
        "ns3", "svc3", (replace(p80, node_port=3003),), type="NodePort", cluster_ip="172.30.0.43"
    )
    svc4 = Service(
        "ns4", "svc4", (replace(p80, target_port=80),), type="NodePort",
        cluster_ip="172.30.0.44", external_ips=("192.168.99.33",),
    )  # fmt: skip
    svc5 = Service(
        "ns5", "svc5", (replace(p80, node_port=3002),), type=lb, cluster_ip="172.30.0.45",
        load_balancer_ips=("5.6.7.8",), health_check_node_port=30000,
        source_ranges=("203.0.113.0/25",), session_affinity="ClientIP", affinity_seconds=10800,
    )  # fmt: skip
    svc6 = Service("ns6", "svc6", (replace(p80, target_port=80),), cluster_ip="172.30.0.46")
    local = Endpoint(("10.180.0.5",), node_name="test-node")
    svc4_slice = replace(
        endpoint_slice("ns4", "svc4", "10.180.0.4"), endpoints=(Endpoint(("10.180.0.4",)), local)
    )
    return [
        (svc1, [endpoint_slice("ns1", "svc1", "10.180.0.1")]),
        (
            svc2,
            [endpoint_slice("ns2", "svc2", "10.180.0.2")],
        ),  # not on this node: no local endpoint
        (svc3, [endpoint_slice("ns3", "svc3", "10.180.0.3")]),
        (svc4, [svc4_slice]),
        (svc5, [endpoint_slice("ns5", "svc5", "10.180.0.3")]),
        (svc6, []),
    ]
