"""Round trip on the real kernel: render -> iptables-restore -> iptables-save -> parse -> same tree.

This is what proves the renderer's output is valid restore input and that `saved_form` predicts,
byte for byte, how iptables-save prints it back. Root only; runs in its own throw-away netns.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from svcwatch.kubeproxy.render import ProxyConfig, hook_rules, render, render_services
from svcwatch.kubeproxy.restore import (
    parse_save,
    saved_form,
    service_tree,
    share_of,
    to_restore_text,
)
from svcwatch.kubeproxy.rules import RuleSet
from svcwatch.model.endpointslice import Endpoint, EndpointPort, EndpointSlice
from svcwatch.model.scenario import ScenarioContext, apply_scenario
from svcwatch.model.service import Service, ServicePort
from tests.helpers.namespaces import run_in
from tests.unit.test_kubeproxy_render import (  # same objects as the golden files
    seed_objects,
    web_service,
)


@pytest.fixture
def node_ns() -> Iterator[str]:
    from pyroute2 import netns  # heavy import, only for this root-only test

    name = f"svcwatch-t{secrets.token_hex(3)[:5]}-kp"
    netns.create(name)
    try:
        yield name
    finally:
        netns.remove(name)


def restore(ns: str, rules: RuleSet) -> None:
    run_in(
        ns,
        ["iptables-restore", "--noflush"],
        input=to_restore_text(rules),
        text=True,
        check=True,
        capture_output=True,
    )


def kernel(ns: str) -> RuleSet:
    saved = RuleSet()
    for table in ("filter", "nat"):
        out = run_in(
            ns, ["iptables-save", "-c", "-t", table], text=True, check=True, stdout=subprocess.PIPE
        )
        saved.tables.extend(parse_save(out.stdout).tables)
    return saved


def assert_kernel_matches(ns: str, service: Service, rendered: RuleSet) -> None:
    have, want = kernel(ns), saved_form(rendered)
    assert service_tree(have, service) == service_tree(want, service)
    for table in want.tables:  # every chain the sync wrote, printed exactly as predicted
        for chain in table.chains:
            assert [r.line() for r in have.table(table.name).rules_of(chain)] == [
                r.line() for r in table.rules_of(chain)
            ], chain


@pytest.mark.lab
def test_rendered_rules_read_back_identically_from_the_kernel(node_ns: str) -> None:
    socat, baseline = seed_objects()
    restore(node_ns, hook_rules())

    mixed = render(socat, [apply_scenario("mixed", ScenarioContext(baseline))])
    restore(node_ns, mixed)
    assert_kernel_matches(node_ns, socat, mixed)
    tree = service_tree(kernel(node_ns), socat)
    assert [r.probability for r in tree.chains["KUBE-SVC-6GHM6NOKDRAB634Q"]] == [None, 0.5, None]

    # A named multi-port Service with 3 endpoints replaces it; socat's chains are deleted as stale.
    web, web_slice = web_service()  # 3 ready endpoints and a not-ready one
    existing = kernel(node_ns).table("nat").chains
    three = render(web, [web_slice], stale_chains=existing)
    restore(node_ns, three)
    assert_kernel_matches(node_ns, web, three)
    assert [
        r.probability for r in service_tree(kernel(node_ns), web).all_rules() if r.probability
    ] == [0.33333333349, 0.5, 0.33333333349, 0.5]
    assert not [c for c in kernel(node_ns).table("nat").chains if c.endswith("6GHM6NOKDRAB634Q")]

    # No endpoints: only the filter REJECT rules remain.
    empty = render(
        socat,
        [apply_scenario("empty", ScenarioContext(baseline))],
        stale_chains=kernel(node_ns).table("nat").chains,
    )
    restore(node_ns, empty)
    assert_kernel_matches(node_ns, socat, empty)
    rejected = service_tree(kernel(node_ns), socat)
    assert rejected.chains == {} and [r.target for r in rejected.filter_rules] == [
        "REJECT",
        "REJECT",
    ]
    assert [r.line() for r in rejected.filter_rules][0].endswith(
        "-j REJECT --reject-with icmp-port-unreachable"
    )


def every_feature() -> tuple[Service, Service, list[EndpointSlice], ProxyConfig]:
    """A LoadBalancer using every field kube-proxy reads: externalIPs, LB IPs with source ranges
    (one holding the node IP), Local external policy with a health-check nodePort, ClientIP
    affinity, and TCP/UDP/SCTP ports; and a LoadBalancer without nodePorts (k3s traefik's shape)."""
    ports = (
        ServicePort(80, "TCP", "http", node_port=30080),
        ServicePort(53, "UDP", "dns", node_port=30053),
        ServicePort(9, "SCTP", "sctp", node_port=30009),
    )
    front = Service(
        "shop",
        "front",
        ports,
        "LoadBalancer",
        "10.43.9.9",
        external_traffic_policy="Local",
        external_ips=("192.168.97.50",),
        load_balancer_ips=("192.168.97.240", "192.168.97.241"),
        source_ranges=("192.168.97.0/24", "203.0.113.0/25"),
        health_check_node_port=32000,
        session_affinity="ClientIP",
        affinity_seconds=600,
    )
    traefik = Service(
        "kube-system",
        "traefik",
        (ServicePort(443, name="websecure"),),
        "LoadBalancer",
        "10.43.9.10",
        external_traffic_policy="Local",
        load_balancer_ips=("192.168.97.3",),
        allocate_lb_node_ports=False,
    )
    here = "node-a"
    front_eps = (Endpoint(("10.42.0.7",), node_name=here), Endpoint(("10.42.1.8",), node_name="b"))
    slices = [
        EndpointSlice(
            "shop",
            "front-1",
            front_eps,
            (
                EndpointPort(8080, "http"),
                EndpointPort(53, "dns", "UDP"),
                EndpointPort(9, "sctp", "SCTP"),
            ),
            labels={"kubernetes.io/service-name": "front"},
        ),
        EndpointSlice(
            "kube-system",
            "traefik-1",
            (Endpoint(("10.42.0.9",), node_name=here),),
            (EndpointPort(8443, "websecure"),),
            labels={"kubernetes.io/service-name": "traefik"},
        ),
    ]
    return front, traefik, slices, ProxyConfig(node_name=here, node_ip="192.168.97.3")


@pytest.mark.lab
def test_every_service_feature_loads_into_the_kernel_as_predicted(node_ns: str) -> None:
    front, traefik, slices, config = every_feature()
    restore(node_ns, hook_rules())
    rendered = render_services([front, traefik], slices, config)
    restore(node_ns, rendered)  # the kernel takes the recent, addrtype, sctp, udp and FW rules
    assert_kernel_matches(node_ns, front, rendered)
    assert_kernel_matches(node_ns, traefik, rendered)
    tree = service_tree(kernel(node_ns), front)
    checks = [r for r in tree.all_rules() if r.recent == "rcheck"]
    assert len(checks) == 9 and {r.sticky_seconds for r in checks} == {600}  # SVC 2+2+2, SVL 1+1+1
    shares = share_of(tree)  # per port, KUBE-SVC- over both endpoints: 50 % each, not 100/0
    assert sorted(round(s, 6) for s in shares.values()) == [0.5] * 6, shares
    fw = [c for c in tree.chains if c.startswith("KUBE-FW-")]
    assert len(fw) == 3 and all(
        any("-s 192.168.97.240/32" in r.spec for r in tree.chains[c]) for c in fw
    ), "the node IP is in a source range, so the LB IPs themselves are admitted"
    accepts = [r.comment for r in tree.filter_rules if r.target == "ACCEPT"]
    assert accepts == [f"shop/front:{p} health check node port" for p in ("http", "dns", "sctp")]
    edge = service_tree(kernel(node_ns), traefik)
    assert [r.chain for r in edge.entry] == ["KUBE-SERVICES", "KUBE-SERVICES"]  # no nodePort
    assert (edge.entry[1].target or "").startswith("KUBE-EXT-")


@pytest.mark.lab
def test_v1_31_nfacct_rules_load_once_the_counters_exist(node_ns: str) -> None:
    """kube-proxy >= 1.31 counts dropped INVALID packets and localhost NodePort connections."""
    from svcwatch.kubeproxy.proxyconfig import INVALID_NFACCT, LOCALHOST_NFACCT
    from tests.helpers.nfacct import add_counter

    socat, baseline = seed_objects()
    rendered = render(socat, [baseline], ProxyConfig(version="1.31"))
    with pytest.raises(subprocess.CalledProcessError):
        restore(node_ns, rendered)  # no counters yet: the kernel refuses the nfacct match
    add_counter(node_ns, INVALID_NFACCT)
    add_counter(node_ns, LOCALHOST_NFACCT)
    restore(node_ns, hook_rules())
    restore(node_ns, rendered)
    assert_kernel_matches(node_ns, socat, rendered)
    saved = to_restore_text(kernel(node_ns))
    assert f"--nfacct-name  {LOCALHOST_NFACCT} -j KUBE-EXT-" in saved  # iptables-save's 2 spaces
    assert f"--ctstate INVALID -m nfacct --nfacct-name  {INVALID_NFACCT} -j DROP" in saved
