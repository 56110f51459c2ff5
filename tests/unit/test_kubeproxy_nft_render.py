"""The nftables renderer writes the table kube-proxy's nftables proxier writes.

tests/data/nft/upstream-overall.transaction is upstream's own expectation (TestOverallNFTablesRules,
see its header), compared the way upstream compares (its sortNFTablesTransaction). The
blog-*.transaction goldens are this renderer's output for the lab's scenarios, reviewed by hand;
rewrite them with SVCWATCH_UPDATE_GOLDEN=1 after a deliberate change. tests/lab/test_lab_nft.py
loads them into a real kernel.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.kubeproxy.nft import parse_nft_table, service_tree_nft
from svcwatch.kubeproxy.nft_listing import transaction_listing
from svcwatch.kubeproxy.nft_render import render_nft
from svcwatch.model.endpointslice import Endpoint, EndpointSlice
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.scenario import ScenarioContext, apply_scenario
from svcwatch.model.service import Service, ServicePort
from tests.helpers.nft_upstream import UPSTREAM, endpoint_slice, upstream_overall_services

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "nft"
_ORDER = {"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}


def sort_transaction(text: str) -> list[str]:
    """Upstream's sortNFTablesTransaction: drop blanks/comments; by type, then name; rules keep
    their order within a chain; anything else by its text."""
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    index = {id(ln): i for i, ln in enumerate(lines)}

    def key(line: str) -> tuple[int, str, int, str]:
        words = line.split(" ")
        kind, name = words[1], words[4] if len(words) > 4 else ""
        rank = -_ORDER.get(kind, 0)
        if kind == "rule":
            return (rank, name, index[id(line)], "")
        return (rank, name, 0, line)

    return sorted(lines, key=key)


def test_matches_upstream_overall_nftables_rules() -> None:
    rendered = render_nft(upstream_overall_services(), UPSTREAM)
    expected = (DATA / "upstream-overall.transaction").read_text()
    assert sort_transaction(rendered.text()) == sort_transaction(expected)
    assert "firewall-HVFWP5L3-ns5/svc5/tcp/p80" in rendered.service_chains
    assert "local-42NFTM6N-ns2/svc2/tcp/p80" not in rendered.service_chains


def test_two_endpoints_share_one_numgen_vmap_in_sorted_order() -> None:
    """svc4's shape in TestOverallNFTablesRules: branch 0 -> .4, branch 1 -> .5."""
    p80 = ServicePort(80, name="p80")
    svc4 = Service("ns4", "svc4", (p80,), cluster_ip="172.30.0.44")
    rules = render_nft(
        [(svc4, [endpoint_slice("ns4", "svc4", "10.180.0.5", "10.180.0.4")])], UPSTREAM
    )
    assert (
        "add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap "
        "{ 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , "
        "1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }"
    ) in rendered_lines(rules.text())


def rendered_lines(text: str) -> list[str]:
    return text.splitlines()


def test_local_policy_with_a_local_endpoint_goes_to_the_local_chain() -> None:
    """externalTrafficPolicy=Local with one endpoint on this node: external- falls through to
    local-, whose numgen picks only among this node's endpoints; no drop element."""
    port = ServicePort(80, name="p80", node_port=3001)
    svc = Service(
        "ns2", "svc2", (port,), type="NodePort", cluster_ip="172.30.0.42",
        external_traffic_policy="Local",
    )  # fmt: skip
    slice_ = replace(
        endpoint_slice("ns2", "svc2"),
        endpoints=(Endpoint(("10.180.0.2",)), Endpoint(("10.180.0.3",), node_name="test-node")),
    )
    rendered = render_nft([(svc, [slice_])], UPSTREAM)
    lines = rendered.text().splitlines()
    local = "local-42NFTM6N-ns2/svc2/tcp/p80"
    assert f"add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 goto {local}" in lines
    (numgen,) = [ln for ln in lines if ln.startswith(f"add rule ip kube-proxy {local} ")]
    assert "numgen random mod 1 vmap" in numgen and "__10.180.0.3/80 }" in numgen
    assert not [ln for ln in lines if "no-endpoint-" in ln and "add element" in ln]


def test_a_source_range_holding_the_node_admits_the_lb_ips_themselves() -> None:
    """TestLoadBalancer's Service: 192.168.0.0/24 holds the node (192.168.0.2), so requests
    the node loops back from its own LB VIPs are let through (proxier.go's allowFromNode)."""
    svc = Service(
        "ns1", "svc1", (ServicePort(80, name="p80", node_port=3001),), type="LoadBalancer",
        cluster_ip="172.30.0.41", load_balancer_ips=("1.2.3.4", "5.6.7.8"),
        source_ranges=("192.168.0.0/24", "203.0.113.0/25"),
    )  # fmt: skip
    text = render_nft([(svc, [endpoint_slice("ns1", "svc1", "10.180.0.1")])], UPSTREAM).text()
    assert (
        "add rule ip kube-proxy firewall-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr != "
        "{ 192.168.0.0/24 , 203.0.113.0/25 , 1.2.3.4 , 5.6.7.8 } drop"
    ) in text.splitlines()


# --- the lab's Service, per scenario --------------------------------------------------------


def seed_objects() -> tuple[Service, EndpointSlice]:
    objs = collect(parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml"))
    service = replace(objs.services[0], cluster_ip="10.43.161.224")
    return service, objs.slices_for(service)[0]


def seed_table(scenario: str) -> str:
    service, baseline = seed_objects()
    slice_ = apply_scenario(scenario, ScenarioContext(baseline))
    return render_nft([(service, [slice_])]).text()


@pytest.mark.parametrize("scenario", ["happy", "wrong-port", "mixed", "empty"])
def test_seed_scenarios_golden(scenario: str) -> None:
    text = seed_table(scenario)
    path = DATA / f"blog-{scenario}.transaction"
    header = (
        f"# svcwatch's nftables-mode table for the blog post's Service (scenario {scenario}),\n"
        "# rendered by svcwatch/kubeproxy/nft_render.py in the shape upstream's\n"
        "# TestOverallNFTablesRules expects (see upstream-overall.transaction); loaded by the lab\n"
        "# with `nft -f` after `add table` + `delete table` in the same batch.\n"
    )
    if os.environ.get("SVCWATCH_UPDATE_GOLDEN"):
        path.write_text(header + text)
    golden = "".join(ln + "\n" for ln in path.read_text().splitlines() if not ln.startswith("#"))
    assert text == golden


def test_rendered_table_reads_back_as_the_services_tree() -> None:
    """What the chain pane shows: services map -> service chain -> endpoint chains -> DNAT."""
    service, _ = seed_objects()
    table = parse_nft_table(_as_listing(seed_table("mixed")))
    assert "service-ips" in table.maps
    tree = service_tree_nft(_as_listing(seed_table("mixed")), service)
    dnats = sorted(r.dnat_to for r in tree.all_rules() if r.dnat_to)
    assert dnats == ["10.42.0.142:12345", "10.42.0.143:12345"]
    shares = [r.probability for r in tree.all_rules() if r.probability is not None]
    assert shares == [0.5, 0.5]


def test_no_endpoints_is_a_reject_element_and_no_chains() -> None:
    text = seed_table("empty")
    assert "service-72SUMGQA" not in text
    assert "add chain ip kube-proxy endpoint-" not in text
    key = '10.43.161.224 . tcp . 12345 comment "default/socat"'
    assert f"no-endpoint-services {{ {key} : goto reject-chain }}" in text
    assert (
        'no-endpoint-nodeports { tcp . 31234 comment "default/socat" : goto reject-chain }' in text
    )  # noqa: E501


def _as_listing(transaction: str) -> str:
    """A transaction folded into `nft list` block form (what the parser reads)."""
    return transaction_listing(transaction)
