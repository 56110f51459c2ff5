"""Upstream's packet-flow expectations, run against svcwatch's rendering of the same Services.

Most kube-proxy tests in pkg/proxy/iptables/proxier_test.go do not compare rule text: they trace
packets through the rules (`runPacketFlowTests`) and check where each lands and whether it is
masqueraded. tests/data/iptables/upstream/packet-flows.txt holds those flows, copied from the
tests named in its sections (see its header for the revision). Each test here builds the same
Services and EndpointSlices as the upstream test (as its makeTestService / makeTestEndpointSlice
do, without API validation), renders them with upstream's fake proxier settings, and traces the
flows with upstream's tracer logic (tests/helpers/upstream_iptables.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from svcwatch.kubeproxy.render import ProxyConfig, render_services
from svcwatch.kubeproxy.restore import to_restore_text
from svcwatch.model.endpointslice import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from svcwatch.model.service import Service, ServicePort
from tests.helpers.upstream_iptables import (
    FAKE_PROXIER,
    Flow,
    expected,
    flows,
    golden_blocks,
    trace_flows,
    with_overrides,
)

Conditions = tuple[bool, bool, bool]  # ready, serving, terminating
READY, TERMINATING, GONE = (True, True, False), (False, True, True), (False, False, True)


def ep(ip: str, node: str | None = None, conditions: Conditions | None = None) -> Endpoint:
    cond = EndpointConditions(*conditions) if conditions else EndpointConditions()
    return Endpoint((ip,), cond, node_name=node)


def eps(
    ns: str, name: str, *endpoints: Endpoint, port: EndpointPort | None = None
) -> EndpointSlice:
    """makeTestEndpointSlice(ns, name, 1, ...): IPv4, one TCP port (p80/80 unless given)."""
    ports = (port or EndpointPort(80, "p80"),)
    labels = {"kubernetes.io/service-name": name}
    return EndpointSlice(ns, f"{name}-1", endpoints, ports, labels=labels)


def lb(name: str, ip: str, node_port: int = 3001, **fields: object) -> Service:
    """A LoadBalancer in ns1 with port p80/80 and a nodePort (0: none)."""
    port = ServicePort(80, name="p80", node_port=node_port or None)
    return replace(Service("ns1", name, (port,), "LoadBalancer", ip), **fields)  # type: ignore[arg-type]


def check(
    services: list[Service],
    slices: list[EndpointSlice],
    cases: list[Flow],
    config: ProxyConfig = FAKE_PROXIER,
) -> None:
    text = to_restore_text(render_services(services, slices, config))
    assert trace_flows(text, cases) == expected(cases)


def test_every_section_of_the_flow_file_is_used() -> None:
    used = {
        "TestNoEndpointsReject",
        "TestClusterIPGeneral",
        "TestLoadBalancer",
        "TestExternalTrafficPolicyLocal",
        "TestExternalTrafficPolicyCluster",
        *(f"TestNodePorts: {case}" for case in NODE_PORT_CASES),
        "TestHealthCheckNodePort",
        "TestHealthCheckNodePort: after the Service is deleted",
        *(f"TestInternalTrafficPolicy: {case}" for case in ITP_CASES),
        "TestInternalTrafficPolicy: endpoints deleted (every case)",
        *(
            f"TestTerminatingEndpointsTrafficPolicy{p}: {c}"
            for p in TERMINATING_CASES
            for c in TERMINATING_CASES[p]
        ),
        "TestTerminatingEndpoints: after endpoints deleted (every case, both policies)",
        "TestInternalExternalMasquerade: base",
        *(f"TestInternalExternalMasquerade overrides: {case}" for case in MASQUERADE_CASES if case),
    }
    assert used == set(golden_blocks("packet-flows.txt"))


def test_no_endpoints_reject() -> None:
    svc = lb("svc1", "172.30.0.41", external_ips=("192.168.99.11",), load_balancer_ips=("1.2.3.4",))
    check([svc], [], flows("TestNoEndpointsReject"))


def test_cluster_ip_general() -> None:
    svc1 = Service("ns1", "svc1", (ServicePort(80, name="http"),), cluster_ip="172.30.0.41")
    ports = (
        ServicePort(80, name="http"),
        ServicePort(443, name="https", target_port=8443),
        ServicePort(53, "UDP", "dns-udp"),
        ServicePort(53, name="dns-tcp", target_port=5353),
        ServicePort(53, "SCTP", "dns-sctp"),
    )
    svc2 = Service("ns2", "svc2", ports, cluster_ip="172.30.0.42")
    slice2 = replace(
        eps("ns2", "svc2", ep("10.180.0.1", "test-node"), ep("10.180.2.1", "node2")),
        ports=(
            EndpointPort(80, "http"),
            EndpointPort(8443, "https"),
            EndpointPort(53, "dns-udp", "UDP"),
            EndpointPort(5353, "dns-tcp"),
            EndpointPort(53, "dns-sctp", "SCTP"),
        ),
    )
    slice1 = eps("ns1", "svc1", ep("10.180.0.1", "test-node"), port=EndpointPort(80, "http"))
    check([svc1, svc2], [slice1, slice2], flows("TestClusterIPGeneral"))


def test_load_balancer() -> None:
    svc = lb(
        "svc1",
        "172.30.0.41",
        load_balancer_ips=("1.2.3.4", "5.6.7.8"),
        source_ranges=("192.168.0.0/24", "203.0.113.0/25"),  # upstream's " 203.0.113.0/25", trimmed
    )
    check([svc], [eps("ns1", "svc1", ep("10.180.0.1"))], flows("TestLoadBalancer"))


NODE_PORT_CASES = {  # upstream's IPv4 case -> (localhostNodePorts, --nodeport-addresses)
    "ipv4, localhost-nodeports enabled": (True, ()),
    "ipv4, localhost-nodeports disabled": (False, ()),
    "ipv4, localhost-nodeports disabled, localhost in nodeport-addresses": (
        False,
        ("192.168.0.0/24", "127.0.0.1/32"),
    ),
    "ipv4, localhost-nodeports enabled, multiple nodeport-addresses": (
        False,
        ("192.168.0.0/24", "192.168.1.0/24", "2001:db8::/64"),
    ),
}


@pytest.mark.parametrize("case", list(NODE_PORT_CASES))
def test_node_ports(case: str) -> None:
    port = ServicePort(80, name="p80", node_port=3001)
    svc = Service("ns1", "svc1", (port,), "NodePort", "172.30.0.41")
    slices = [eps("ns1", "svc1", ep("10.180.0.1"), ep("10.180.2.1", "test-node"))]
    localhost, addresses = NODE_PORT_CASES[case]
    config = replace(FAKE_PROXIER, localhost_nodeports=localhost, nodeport_addresses=addresses)
    check([svc], slices, flows(f"TestNodePorts: {case}"), config)


def test_health_check_node_port() -> None:
    """With --nodeport-addresses 127.0.0.0/8; the ACCEPT does not depend on it."""
    svc = lb("svc1", "172.30.0.42", health_check_node_port=30000, external_traffic_policy="Local")
    config = replace(FAKE_PROXIER, nodeport_addresses=("127.0.0.0/8",))
    check([svc], [], flows("TestHealthCheckNodePort"), config)
    check([], [], flows("TestHealthCheckNodePort: after the Service is deleted"), config)


@pytest.mark.parametrize("policy", ["Local", "Cluster"])
def test_external_traffic_policy(policy: str) -> None:
    svc = lb(
        "svc1",
        "172.30.0.41",
        external_traffic_policy=policy,
        external_ips=("192.168.99.11",),
        load_balancer_ips=("1.2.3.4",),
        health_check_node_port=30000 if policy == "Local" else None,
    )
    slices = [eps("ns1", "svc1", ep("10.180.0.1"), ep("10.180.2.1", "test-node"))]
    check([svc], slices, flows(f"TestExternalTrafficPolicy{policy}"))


ITP_CASES = {
    "internalTrafficPolicy is cluster": ("Cluster", ("test-node", "node1", "node2")),
    "internalTrafficPolicy is local and there is one local endpoint": (
        "Local",
        ("test-node", "node1", "node2"),
    ),
    "internalTrafficPolicy is local and there are multiple local endpoints": (
        "Local",
        ("test-node", "test-node", "node2"),
    ),
    "internalTrafficPolicy is local and there are no local endpoints": (
        "Local",
        ("node0", "node1", "node2"),
    ),
}


@pytest.mark.parametrize("case", list(ITP_CASES))
def test_internal_traffic_policy(case: str) -> None:
    policy, nodes = ITP_CASES[case]
    svc = Service(
        "ns1", "svc1", (ServicePort(80),), cluster_ip="172.30.1.1", internal_traffic_policy=policy
    )
    endpoints = [ep(f"10.0.1.{i}", node, (True, True, False)) for i, node in enumerate(nodes, 1)]
    check(
        [svc],
        [eps("ns1", "svc1", *endpoints, port=EndpointPort(80, ""))],
        flows(f"TestInternalTrafficPolicy: {case}"),
    )
    check([svc], [], flows("TestInternalTrafficPolicy: endpoints deleted (every case)"))


TERMINATING_CASES: dict[str, dict[str, list[tuple[str, str, Conditions]]]] = {
    "Local": {
        "ready endpoints exist": [
            ("10.0.1.1", "test-node", READY),
            ("10.0.1.2", "test-node", READY),
            ("10.0.1.3", "test-node", TERMINATING),
            ("10.0.1.4", "test-node", GONE),
            ("10.0.1.5", "node-1", READY),
        ],
        "only terminating endpoints exist": [
            ("10.0.1.2", "test-node", TERMINATING),
            ("10.0.1.3", "test-node", TERMINATING),
            ("10.0.1.4", "test-node", GONE),
            ("10.0.1.5", "node-1", READY),
        ],
        "terminating endpoints on remote node": [("10.0.1.5", "node-1", TERMINATING)],
        "no usable endpoints on any node": [
            ("10.0.1.5", "test-node", GONE),
            ("10.0.1.5", "node-1", GONE),
        ],
    },
    "Cluster": {
        "ready endpoints exist": [
            ("10.0.1.1", "test-node", READY),
            ("10.0.1.2", "test-node", READY),
            ("10.0.1.3", "another-node", TERMINATING),
            ("10.0.1.4", "another-node", GONE),
            ("10.0.1.5", "another-node", READY),
        ],
        "only terminating endpoints exist": [
            ("10.0.1.2", "test-node", TERMINATING),
            ("10.0.1.3", "test-node", TERMINATING),
            ("10.0.1.4", "another-node", GONE),
            ("10.0.1.5", "another-node", TERMINATING),
        ],
        "terminating endpoints on remote node": [("10.0.1.5", "node-1", TERMINATING)],
        "no usable endpoints on any node": [
            ("10.0.1.5", "test-node", GONE),
            ("10.0.1.5", "node-1", GONE),
        ],
    },
}


@pytest.mark.parametrize(
    ("policy", "case"), [(p, c) for p in TERMINATING_CASES for c in TERMINATING_CASES[p]]
)
def test_terminating_endpoints(policy: str, case: str) -> None:
    """A LoadBalancer without a nodePort (as allocateLoadBalancerNodePorts: false leaves it)."""
    svc = lb(
        "svc1",
        "172.30.1.1",
        node_port=0,
        ports=(ServicePort(80, target_port=80),),
        external_traffic_policy=policy,
        health_check_node_port=30000,
        load_balancer_ips=("1.2.3.4",),
    )
    endpoints = (ep(ip, node, cond) for ip, node, cond in TERMINATING_CASES[policy][case])
    slices = [eps("ns1", "svc1", *endpoints, port=EndpointPort(80, ""))]
    check([svc], slices, flows(f"TestTerminatingEndpointsTrafficPolicy{policy}: {case}"))
    after = "TestTerminatingEndpoints: after endpoints deleted (every case, both policies)"
    check([svc], [], flows(after))


MASQUERADE_CASES = {  # upstream's case name -> (masqueradeAll, LocalTrafficDetector)
    "": (False, True),
    "no LocalTrafficDetector": (False, False),
    "masqueradeAll": (True, True),
    "masqueradeAll, no LocalTrafficDetector": (True, False),
}


@pytest.mark.parametrize("case", list(MASQUERADE_CASES), ids=lambda c: c or "base")
def test_internal_external_masquerade(case: str) -> None:
    services = [
        lb("svc1", "172.30.0.41", health_check_node_port=30001, load_balancer_ips=("1.2.3.4",)),
        lb(
            "svc2",
            "172.30.0.42",
            3002,
            health_check_node_port=30002,
            external_traffic_policy="Local",
            load_balancer_ips=("5.6.7.8",),
        ),
        lb(
            "svc3",
            "172.30.0.43",
            3003,
            health_check_node_port=30003,
            internal_traffic_policy="Local",
            load_balancer_ips=("9.10.11.12",),
        ),
    ]
    slices = [
        eps("ns1", f"svc{i}", ep(f"10.180.0.{i}", "test-node"), ep(f"10.180.1.{i}", "remote"))
        for i in (1, 2, 3)
    ]
    masquerade_all, detector = MASQUERADE_CASES[case]
    config = replace(
        FAKE_PROXIER, masquerade_all=masquerade_all, cluster_cidr="10.0.0.0/8" if detector else ""
    )
    cases = flows("TestInternalExternalMasquerade: base")
    if case:
        cases = with_overrides(cases, f"TestInternalExternalMasquerade overrides: {case}")
    check(services, slices, cases, config)
