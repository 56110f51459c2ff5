"""The renderer against kube-proxy's own test expectations (pkg/proxy/iptables/proxier_test.go).

Each test builds the same Services and EndpointSlices as the upstream test (upstream's
makeTestService / makeTestEndpointSlice, which skip API validation just like these constructors),
renders them with upstream's test proxier settings, and compares byte for byte with the expected
text stored in tests/data/iptables/upstream/, after upstream's own sortIPTablesRules and nothing
else (see tests/helpers/upstream_iptables.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from svcwatch.kubeproxy.render import ProxyConfig, render_services
from svcwatch.kubeproxy.restore import to_restore_text
from svcwatch.model.endpointslice import Endpoint, EndpointPort, EndpointSlice
from svcwatch.model.service import Service, ServicePort
from tests.helpers.upstream_iptables import (
    FAKE_PROXIER,
    chain_lines,
    golden,
    golden_blocks,
    upstream_sorted,
)

UPSTREAM = FAKE_PROXIER
P80 = (ServicePort(80, name="p80"),)


def slice_for(
    ns: str, name: str, *eps: Endpoint, port: int = 80, pname: str = "p80"
) -> EndpointSlice:
    """makeTestEndpointSlice(ns, name, 1, ...): IPv4, one named TCP port."""
    labels = {"kubernetes.io/service-name": name}
    return EndpointSlice(ns, f"{name}-1", eps, (EndpointPort(port, pname),), labels=labels)


def ep(ip: str, node: str | None = None) -> Endpoint:
    return Endpoint((ip,), node_name=node)


def overall_services() -> list[Service]:
    """TestOverallIPTablesRules' six Services (svc4: NodePort type without a nodePort)."""
    return [
        Service("ns1", "svc1", P80, cluster_ip="172.30.0.41"),
        Service(
            "ns2",
            "svc2",
            (ServicePort(80, name="p80", node_port=3001),),
            "LoadBalancer",
            "172.30.0.42",
            external_traffic_policy="Local",
            load_balancer_ips=("1.2.3.4",),
            external_ips=("192.168.99.22",),
            health_check_node_port=30000,
        ),
        Service(
            "ns3", "svc3", (ServicePort(80, name="p80", node_port=3003),), "NodePort", "172.30.0.43"
        ),
        Service(
            "ns4",
            "svc4",
            (ServicePort(80, name="p80", target_port=80),),
            "NodePort",
            "172.30.0.44",
            external_ips=("192.168.99.33",),
        ),
        Service(
            "ns5",
            "svc5",
            (ServicePort(80, name="p80", node_port=3002),),
            "LoadBalancer",
            "172.30.0.45",
            load_balancer_ips=("5.6.7.8",),
            health_check_node_port=30000,
            source_ranges=("203.0.113.0/25",),
            session_affinity="ClientIP",
            affinity_seconds=10800,
        ),
        Service(
            "ns6", "svc6", (ServicePort(80, name="p80", target_port=80),), cluster_ip="172.30.0.46"
        ),
    ]


def overall_slices() -> list[EndpointSlice]:
    return [
        slice_for("ns1", "svc1", ep("10.180.0.1")),
        slice_for("ns2", "svc2", ep("10.180.0.2")),  # no nodeName: not local
        slice_for("ns3", "svc3", ep("10.180.0.3")),
        slice_for("ns4", "svc4", ep("10.180.0.4"), ep("10.180.0.5", "test-node")),
        slice_for("ns5", "svc5", ep("10.180.0.3")),
    ]


def rendered(
    services: list[Service], slices: list[EndpointSlice], config: ProxyConfig = UPSTREAM
) -> str:
    return to_restore_text(render_services(services, slices, config))


def test_overall_iptables_rules_match_upstream() -> None:
    text = rendered(overall_services(), overall_slices())
    assert upstream_sorted(text) == golden("overall-iptables-rules.txt")


def test_upstream_sorting_is_the_only_masking() -> None:
    """Service order changes the raw text but not the sorted one, so the sort hides nothing else."""
    services = overall_services()
    forward = rendered(services, overall_slices())
    backward = rendered(services[::-1], overall_slices())
    assert forward != backward
    assert (
        upstream_sorted(forward)
        == upstream_sorted(backward)
        == golden("overall-iptables-rules.txt")
    )


def test_sync_proxy_rules_repeated_first_sync_matches_upstream() -> None:
    services = [
        Service("ns1", "svc1", P80, cluster_ip="172.30.0.41"),
        Service("ns2", "svc2", (ServicePort(8080, name="p8080"),), cluster_ip="172.30.0.42"),
    ]
    slices = [
        slice_for("ns1", "svc1", ep("10.0.1.1")),
        slice_for("ns2", "svc2", ep("10.0.2.1"), port=8080, pname="p8080"),
    ]
    assert upstream_sorted(rendered(services, slices)) == golden("sync-repeated-first.txt")


CHAIN_CASES = {
    "filter KUBE-FORWARD: nfacct counter absent (v1.30), tcp_be_liberal off": replace(
        UPSTREAM, version="1.30"
    ),
    "filter KUBE-FORWARD: nfacct counter present (v1.31+), tcp_be_liberal off": UPSTREAM,
    "filter KUBE-FORWARD: tcp_be_liberal on": replace(UPSTREAM, conntrack_tcp_liberal=True),
    "nat KUBE-POSTROUTING: randomFully false": UPSTREAM,
    "nat KUBE-POSTROUTING: randomFully true": replace(UPSTREAM, random_fully=True),
    "filter KUBE-FIREWALL: localhost NodePorts on (TestNodePorts, expectFirewall)": UPSTREAM,
    "filter KUBE-FIREWALL: localhost NodePorts off": replace(UPSTREAM, localhost_nodeports=False),
}


@pytest.mark.parametrize("case", list(CHAIN_CASES))
def test_single_chains_match_upstream(case: str) -> None:
    table, chain = case.split(":")[0].split()
    text = rendered([], [], CHAIN_CASES[case])
    assert chain_lines(text, table, chain) == golden_blocks("kube-forward-chains.txt")[case]


def test_every_chain_case_in_the_golden_file_is_checked() -> None:
    assert set(golden_blocks("kube-forward-chains.txt")) == set(CHAIN_CASES)


def test_large_cluster_mode_lines_match_upstream() -> None:
    """TestSyncProxyRulesLargeClusterMode (masqueradeAll on): 2 x 499 endpoints keep their
    comments; 3 more cross the 1000-endpoint threshold and a full sync drops them everywhere.
    The expected lines are upstream's assert.Equal values, copied verbatim."""
    services = [
        Service(
            f"ns{i}", f"svc{i}", (ServicePort(port, name=f"p{port}"),), cluster_ip=f"172.30.0.4{i}"
        )
        for i, port in ((1, 80), (2, 8080), (3, 8081))
    ]
    slices = [
        slice_for("ns1", "svc1", *(ep(f"10.0.{i % 256}.{i // 256}") for i in range(499))),
        slice_for(
            "ns2",
            "svc2",
            *(ep(f"10.1.{i % 256}.{i // 256}") for i in range(499)),
            port=8080,
            pname="p8080",
        ),
    ]
    config = replace(UPSTREAM, masquerade_all=True)
    small = rendered(services, slices, config).splitlines()
    assert (
        "-A KUBE-SEP-DKGQUZGBKLTPAR56 -m comment --comment ns1/svc1:p80 -m tcp -p tcp "
        "-j DNAT --to-destination 10.0.0.0:80"
    ) in small
    svc3 = slice_for(
        "ns3",
        "svc3",
        ep("203.0.113.4"),
        ep("203.0.113.8"),
        ep("203.0.113.12"),
        port=8081,
        pname="p8081",
    )
    large = rendered(services, [*slices, svc3], config).splitlines()
    assert (
        "-A KUBE-SEP-RUVVH7YV3PHQBDOS -m tcp -p tcp -j DNAT --to-destination 203.0.113.4:8081"
    ) in large
    assert (
        "-A KUBE-SEP-DKGQUZGBKLTPAR56 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80" in large
    )
