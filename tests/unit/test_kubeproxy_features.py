"""Service features beyond TestOverallIPTablesRules' cases, rule for rule as syncProxyRules
writes them (pkg/proxy/iptables/proxier.go; upstream checks these with packet-flow tests, so the
expected lines here follow the code): internalTrafficPolicy, Local policy without a nodePort,
LB IPs without endpoints, the node-IP source range, masqueradeAll, large clusters, ExternalName."""

from __future__ import annotations

from dataclasses import replace

from svcwatch.kubeproxy.render import ProxyConfig, render, render_services
from svcwatch.kubeproxy.restore import to_restore_text
from svcwatch.model.endpointslice import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from svcwatch.model.service import Service, ServicePort

CONFIG = ProxyConfig(cluster_cidr="10.0.0.0/8", node_name="test-node", node_ip="192.168.0.2")
SVC = Service("ns1", "svc1", (ServicePort(80, name="p80"),), cluster_ip="172.30.1.1")


def slice_of(*eps: tuple[str, str | None], ready: bool = True) -> EndpointSlice:
    endpoints = tuple(
        Endpoint((ip,), EndpointConditions(ready=ready), node_name=node) for ip, node in eps
    )
    labels = {"kubernetes.io/service-name": "svc1"}
    return EndpointSlice("ns1", "svc1-1", endpoints, (EndpointPort(80, "p80"),), labels=labels)


def lines(service: Service, slice_: EndpointSlice, config: ProxyConfig = CONFIG) -> list[str]:
    return to_restore_text(render(service, [slice_], config)).splitlines()


def svc_rules(text: list[str], prefix: str) -> list[str]:
    return [line for line in text if line.startswith(f"-A {prefix}")]


def test_internal_traffic_policy_local_uses_only_this_nodes_endpoints() -> None:
    local = replace(SVC, internal_traffic_policy="Local")
    text = lines(local, slice_of(("10.0.1.1", "test-node"), ("10.0.1.2", "node1")))
    assert svc_rules(text, "KUBE-SERVICES")[0].endswith("--dport 80 -j KUBE-SVL-XPGD46QRK7WJZT7O")
    svl = svc_rules(text, "KUBE-SVL-")
    assert svl[0].endswith("! -s 10.0.0.0/8 -j KUBE-MARK-MASQ")  # the masquerade rule moves too
    assert [line.split('"')[1] for line in svl[1:]] == ["ns1/svc1:p80 -> 10.0.1.1:80"]
    assert not svc_rules(text, "KUBE-SVC-") and "10.0.1.2" not in "\n".join(text)


def test_internal_traffic_policy_local_without_local_endpoints_drops() -> None:
    local = replace(SVC, internal_traffic_policy="Local")
    text = lines(local, slice_of(("10.0.1.1", "node0"), ("10.0.1.2", "node1")))
    assert (
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" '
        "-m tcp -p tcp -d 172.30.1.1 --dport 80 -j DROP" in text
    )
    assert not svc_rules(text, "KUBE-SEP-")


def test_local_load_balancer_without_node_port_enters_through_its_ip_only() -> None:
    """allocateLoadBalancerNodePorts: false (k3s traefik's shape), externalTrafficPolicy=Local."""
    lb = replace(
        SVC,
        type="LoadBalancer",
        external_traffic_policy="Local",
        load_balancer_ips=("1.2.3.4",),
        allocate_lb_node_ports=False,
    )
    text = lines(lb, slice_of(("10.0.1.1", "test-node"), ("10.0.1.2", "node1")))
    assert not svc_rules(text, "KUBE-NODEPORTS")
    assert (
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" '
        "-m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O"
    ) in text
    ext = svc_rules(text, "KUBE-EXT-")
    assert ext[0].endswith("-s 10.0.0.0/8 -j KUBE-SVC-XPGD46QRK7WJZT7O")  # pods: short-circuit
    assert ext[-1] == "-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O"
    assert len(svc_rules(text, "KUBE-SVL-")) == 1 and len(svc_rules(text, "KUBE-SVC-")) == 3


def test_load_balancer_and_external_ips_without_endpoints_are_rejected() -> None:
    lb = replace(
        SVC,
        type="LoadBalancer",
        external_ips=("192.168.99.11",),
        load_balancer_ips=("1.2.3.4",),
        source_ranges=("203.0.113.0/25",),
        ports=(ServicePort(80, name="p80", node_port=3001),),
    )
    text = lines(lb, slice_of(("10.0.1.1", None), ready=False))
    rejects = [line for line in text if line.endswith("-j REJECT")]
    assert [r.split(" -m tcp ")[1] for r in rejects] == [
        "-p tcp -d 172.30.1.1 --dport 80 -j REJECT",
        "-p tcp -d 192.168.99.11 --dport 80 -j REJECT",
        "-p tcp -d 1.2.3.4 --dport 80 -j REJECT",
        "-p tcp --dport 3001 -j REJECT",
    ]
    assert "KUBE-FW-" not in "\n".join(text)  # no endpoints: no firewall chain either


def test_source_range_holding_the_node_ip_admits_the_lb_ips() -> None:
    lb = replace(
        SVC,
        type="LoadBalancer",
        load_balancer_ips=("1.2.3.4", "5.6.7.8"),
        source_ranges=("192.168.0.0/24", "203.0.113.0/25"),
        ports=(ServicePort(80, name="p80", node_port=3001),),
    )
    fw = svc_rules(lines(lb, slice_of(("10.0.1.1", None))), "KUBE-FW-")
    sources = [line.split(" -s ")[1].split()[0] for line in fw if " -s " in line]
    assert sources == ["192.168.0.0/24", "203.0.113.0/25", "1.2.3.4", "5.6.7.8"]
    elsewhere = svc_rules(
        lines(lb, slice_of(("10.0.1.1", None)), replace(CONFIG, node_ip="10.9.9.9")), "KUBE-FW-"
    )
    assert len(elsewhere) == 3


def test_masquerade_all_masquerades_every_cluster_ip_connection() -> None:
    text = lines(SVC, slice_of(("10.0.1.1", None)), replace(CONFIG, masquerade_all=True))
    assert svc_rules(text, "KUBE-SVC-")[0].endswith("--dport 80 -j KUBE-MARK-MASQ")
    assert "! -s" not in svc_rules(text, "KUBE-SVC-")[0]


def test_affinity_rules_come_before_the_probability_chain_in_svl_too() -> None:
    lb = replace(
        SVC,
        type="NodePort",
        external_traffic_policy="Local",
        session_affinity="ClientIP",
        affinity_seconds=42,
        ports=(ServicePort(80, name="p80", node_port=3001),),
    )
    text = lines(lb, slice_of(("10.0.1.1", "test-node"), ("10.0.1.2", "test-node")))
    svl = svc_rules(text, "KUBE-SVL-")
    assert ["--rcheck --seconds 42 --reap" in line for line in svl] == [True, True, False, False]
    assert "--probability 0.5000000000" in svl[2]


def test_large_clusters_drop_the_per_endpoint_comments() -> None:
    many = slice_of(*((f"10.0.{i // 250}.{i % 250 + 1}", None) for i in range(1001)))
    text = lines(SVC, many)
    sep = [line for line in text if line.startswith("-A KUBE-SEP-")]
    assert len(sep) == 2002 and not any("--comment" in line for line in sep)
    branches = svc_rules(text, "KUBE-SVC-")
    assert "--comment" in branches[0] and not any("--comment" in b for b in branches[1:])
    assert "--comment" in lines(SVC, slice_of(("10.0.1.1", None)))[-3]


def test_external_name_and_headless_services_get_no_rules() -> None:
    alias = Service("ns1", "alias", (), "ExternalName", external_name="db.example.com")
    headless = replace(SVC, cluster_ip=None)
    empty = to_restore_text(render_services([], [], CONFIG))
    assert (
        to_restore_text(render_services([alias, headless], [slice_of(("10.0.1.1", None))], CONFIG))
        == empty
    )


def test_udp_and_sctp_ports_write_their_protocol_matches() -> None:
    multi = replace(SVC, ports=(ServicePort(53, "UDP", "dns"), ServicePort(9, "SCTP", "sctp")))
    slice_ = replace(
        slice_of(("10.0.1.1", None)),
        ports=(EndpointPort(53, "dns", "UDP"), EndpointPort(9, "sctp", "SCTP")),
    )
    text = "\n".join(lines(multi, slice_))
    assert "-m udp -p udp -d 172.30.1.1 --dport 53" in text
    assert "-m sctp -p sctp -j DNAT --to-destination 10.0.1.1:9" in text


def zoned(*zones: tuple[str, ...], local: int | None = None) -> EndpointSlice:
    """Ready endpoints 10.0.1.1... with these zone hints; endpoint `local` (from 1) is local."""
    endpoints = tuple(
        Endpoint(
            (f"10.0.1.{i}",),
            node_name="test-node" if i == local else f"node{i}",
            zone_hints=hints,
        )
        for i, hints in enumerate(zones, 1)
    )
    labels = {"kubernetes.io/service-name": "svc1"}
    return EndpointSlice("ns1", "svc1-1", endpoints, (EndpointPort(80, "p80"),), labels=labels)


def sep_targets(text: list[str], chain: str) -> list[str]:
    return [line.split('"')[1].split(" -> ")[1] for line in svc_rules(text, chain)[1:]]


def test_zone_hints_keep_cluster_traffic_in_the_nodes_zone() -> None:
    """topologyModeFromHints (pkg/proxy/topology.go): PreferSameZone when every ready endpoint is
    hinted and one is hinted for this node's zone; otherwise the hints are ignored."""
    config = replace(CONFIG, node_zone="zone-a")
    hinted = zoned(("zone-a",), ("zone-a",), ("zone-b",))
    assert sep_targets(lines(SVC, hinted, config), "KUBE-SVC-") == ["10.0.1.1:80", "10.0.1.2:80"]
    everywhere = ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"]
    assert sep_targets(lines(SVC, hinted, CONFIG), "KUBE-SVC-") == everywhere  # zone unknown
    other = replace(CONFIG, node_zone="zone-c")
    assert sep_targets(lines(SVC, hinted, other), "KUBE-SVC-") == everywhere  # none for zone-c
    partly = zoned(("zone-a",), ("zone-a",), ())
    assert sep_targets(lines(SVC, partly, config), "KUBE-SVC-") == everywhere  # one unhinted


def test_zone_hints_with_local_policy_keep_the_local_endpoint_reachable() -> None:
    """External Local policy uses this node's endpoint even if its hint names another zone, so
    its KUBE-SEP- chain is written although Cluster policy skips it (kube-proxy merges both)."""
    nodeport = replace(
        SVC,
        type="NodePort",
        external_traffic_policy="Local",
        ports=(ServicePort(80, name="p80", node_port=3001),),
    )
    text = lines(
        nodeport, zoned(("zone-a",), ("zone-b",), local=2), replace(CONFIG, node_zone="zone-a")
    )
    assert sep_targets(text, "KUBE-SVC-") == ["10.0.1.1:80"]
    assert [line.split('"')[1] for line in svc_rules(text, "KUBE-SVL-")] == [
        "ns1/svc1:p80 -> 10.0.1.2:80"
    ]
    assert sum(line.startswith(":KUBE-SEP-") for line in text) == 2


def test_nodeport_addresses_jump_per_node_address() -> None:
    """--nodeport-addresses: one `-d IP` jump to KUBE-NODEPORTS per matching node address
    (syncProxyRules' else branch); without 127/8 among them localhost NodePorts are off."""
    head = '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
    node = replace(CONFIG, node_addresses=("127.0.0.1", "192.168.0.2", "192.168.1.2"))
    with_lo = replace(node, nodeport_addresses=("192.168.0.0/24", "127.0.0.1/32"))
    jumps = [
        line for line in lines(SVC, slice_of(("10.0.1.1", None)), with_lo) if line.startswith(head)
    ]
    assert [j.split('chain" ')[1] for j in jumps] == [
        "-d 127.0.0.1 -j KUBE-NODEPORTS",
        "-d 192.168.0.2 -j KUBE-NODEPORTS",
    ]
    without_lo = replace(node, nodeport_addresses=("192.168.0.0/16",))
    text = lines(SVC, slice_of(("10.0.1.1", None)), without_lo)
    jumps = [line for line in text if line.startswith(head)]
    assert [j.split('chain" ')[1] for j in jumps] == [
        "-d 192.168.0.2 -j KUBE-NODEPORTS",
        "-d 192.168.1.2 -j KUBE-NODEPORTS",
    ]
    assert ":KUBE-FIREWALL - [0:0]" not in text  # localhost NodePorts forced off: no guard
