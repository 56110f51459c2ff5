"""kube-proxy's nftables mode: chain hashes, mode detection, one Service's tree from `nft list`.

tests/data/nft/kube-proxy.nft and local-policy.nft are real `nft list table ip kube-proxy` output
(nftables 1.0.6) of the .transaction files beside them, written in the shape of upstream's
proxier_test.go expected dumps; the lab test below reloads them into a throw-away network
namespace to prove that. kube-proxy-1.36.nft is a v1.36 node's listing (service chains DNAT
through a numgen map, no endpoint chains).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.kubeproxy.nft import (
    endpoint_chain,
    external_chain,
    hash_and_truncate,
    is_nft_mode,
    local_chain,
    nft_chain_hash,
    nft_share_of,
    parse_nft_table,
    service_chain,
    service_tree_nft,
)
from svcwatch.model.errors import InputError
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.service import Service, ServicePort

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "nft"
# The blog post's Service from manifests/socat.yaml, with the cluster IP the fixture's node gave it.
SOCAT = replace(
    collect(
        parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml")
    ).services[0],
    cluster_ip="10.43.161.224",
)
CANARY = replace(
    SOCAT,
    name="socat-canary",
    ports=(ServicePort(12345, node_port=31235),),
    cluster_ip="10.43.161.225",
)
SOCAT_SVC = "service-72SUMGQA-default/socat/tcp/"
SOCAT_EXT = "external-72SUMGQA-default/socat/tcp/"
SOCAT_EP1 = "endpoint-UX6HWFCB-default/socat/tcp/__10.42.0.142/12345"
SOCAT_EP2 = "endpoint-HRA27OOO-default/socat/tcp/__10.42.0.143/12345"


@pytest.fixture(scope="module")
def listing() -> str:
    return (DATA / "kube-proxy.nft").read_text()


def _svc(ns: str, name: str, *ports: ServicePort) -> Service:
    return Service(ns, name, ports)


# --- names -----------------------------------------------------------------------------------


def test_chain_names_match_upstream_examples() -> None:
    svc1, p80 = _svc("ns1", "svc1", ServicePort(80, name="p80")), ServicePort(80, name="p80")
    assert service_chain(svc1, p80) == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert (
        endpoint_chain(svc1, p80, "10.180.0.1", 80)
        == "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    )
    # More from upstream TestOverallNFTablesRules and a real v1.36 node's listing.
    svc2 = _svc("ns2", "svc2", p80)
    assert external_chain(svc2, p80) == "external-42NFTM6N-ns2/svc2/tcp/p80"
    assert local_chain(svc2, p80) == "local-42NFTM6N-ns2/svc2/tcp/p80"
    assert endpoint_chain(svc2, p80, "10.180.0.2", 80).startswith("endpoint-SGOXE6O3-")
    assert endpoint_chain(_svc("ns4", "svc4", p80), p80, "10.180.0.5", 80).startswith(
        "endpoint-5RFCDDV7-"
    )
    https = ServicePort(443, name="https")
    assert service_chain(_svc("default", "kubernetes", https), https).startswith(
        "service-2QRHZV4L-"
    )
    dns_udp = ServicePort(53, "UDP", "dns")
    assert service_chain(_svc("kube-system", "kube-dns", dns_udp), dns_udp) == (
        "service-FY5PMXPG-kube-system/kube-dns/udp/dns"
    )


def test_hash_is_of_the_name_without_prefix_and_unnamed_port_keeps_trailing_slash() -> None:
    assert nft_chain_hash("ns1/svc1/tcp/p80") == "ULMVA6XW"
    port = ServicePort(12345)
    assert service_chain(SOCAT, port) == SOCAT_SVC  # `/` then nothing: the unnamed port
    assert endpoint_chain(SOCAT, port, "10.42.0.142", 12345) == SOCAT_EP1


def test_ipv6_endpoint_colons_become_dots_and_long_names_are_cut() -> None:
    p80 = ServicePort(80, name="p80")
    name = endpoint_chain(_svc("ns1", "svc1", p80), p80, "fd00:10::1", 80)
    assert name.endswith("-ns1/svc1/tcp/p80__fd00.10..1/80")
    assert nft_chain_hash("ns1/svc1/tcp/p80__fd00.10..1/80") in name
    long = "n" * 63 + "/" + "s" * 63 + "/sctp/" + "p" * 63 + "__" + "f" * 39 + "/65535"
    cut = hash_and_truncate(long)
    assert len(cut) == 240 and cut.endswith("...") and cut.startswith(nft_chain_hash(long) + "-")


# --- mode detection --------------------------------------------------------------------------


def test_is_nft_mode_sees_the_kube_proxy_table_among_others(listing: str) -> None:
    ruleset = "table inet filter {\n\tchain input {\n\t}\n}\n" + listing
    assert is_nft_mode(ruleset)
    assert is_nft_mode(
        "table ip filter\ntable ip kube-proxy\ntable ip6 kube-proxy\n"
    )  # list tables


def test_iptables_nft_rules_are_not_nftables_mode() -> None:
    # What `nft list ruleset` shows for kube-proxy in iptables mode on the nf_tables backend.
    iptables_nft = (
        "table ip nat {\n\tchain KUBE-SERVICES {\n"
        "\t\tmeta l4proto tcp ip daddr 10.43.161.224 tcp dport 12345 counter packets 0 bytes 0 "
        "jump KUBE-SVC-6GHM6NOKDRAB634Q\n\t}\n}\n"
    )
    assert not is_nft_mode(iptables_nft)
    assert not is_nft_mode("table ip kube-proxy-test {\n}\n")
    assert not is_nft_mode("")


# --- one Service -----------------------------------------------------------------------------


def test_socat_tree_entries_chains_and_endpoints(listing: str) -> None:
    tree = service_tree_nft(listing, SOCAT)
    assert (tree.service, tree.proxy_backend) == ("default/socat", "nftables")
    assert [(r.chain, r.spec, r.target) for r in tree.entry] == [
        ("service-ips", f"10.43.161.224 . tcp . 12345 : goto {SOCAT_SVC}", SOCAT_SVC),
        ("service-nodeports", f"tcp . 31234 : goto {SOCAT_EXT}", SOCAT_EXT),
    ]
    assert tree.chain_names() == [SOCAT_EXT, SOCAT_SVC, SOCAT_EP1, SOCAT_EP2]
    assert [(r.spec, r.target) for r in tree.chains[SOCAT_EXT]] == [
        ("jump mark-for-masquerade", "mark-for-masquerade"),
        (f"goto {SOCAT_SVC}", SOCAT_SVC),
    ]
    dnats = [r.dnat_to for c in (SOCAT_EP1, SOCAT_EP2) for r in tree.chains[c] if r.dnat_to]
    assert dnats == ["10.42.0.142:12345", "10.42.0.143:12345"]
    ep1 = tree.chains[SOCAT_EP1]
    assert [r.spec for r in ep1] == [
        "ip saddr 10.42.0.142 jump mark-for-masquerade",
        "meta l4proto tcp dnat to 10.42.0.142:12345",
    ]
    assert tree.filter_rules == []


def test_socat_numgen_rule_gives_one_branch_per_endpoint_with_equal_shares(listing: str) -> None:
    tree = service_tree_nft(listing, SOCAT)
    masq, *branches = tree.chains[SOCAT_SVC]
    assert masq.spec == "ip daddr 10.43.161.224 ip saddr != 10.42.0.0/16 jump mark-for-masquerade"
    assert masq.probability is None
    assert [(b.target, b.probability) for b in branches] == [(SOCAT_EP1, 0.5), (SOCAT_EP2, 0.5)]
    assert {b.spec for b in branches} == {
        f"numgen random mod 2 vmap {{ 0 : goto {SOCAT_EP1}, 1 : goto {SOCAT_EP2} }}"
    }
    assert nft_share_of(tree) == {SOCAT_EP1: 0.5, SOCAT_EP2: 0.5}


def test_other_services_are_left_out(listing: str) -> None:
    tree = service_tree_nft(listing, SOCAT)
    assert all("-default/socat/tcp/" in c for c in tree.chain_names())
    assert all("-default/socat/tcp/" in (r.target or "") for r in tree.entry)
    assert len(tree.all_rules()) == 2 + 2 + 3 + 2 + 2  # of the listing's 40-odd service rules
    other = service_tree_nft(listing, _svc("other", "socat", ServicePort(12345)))
    assert other.chain_names() == [
        "service-E5QQFKGF-other/socat/tcp/",
        "endpoint-SMSVMKSE-other/socat/tcp/__10.42.0.150/12345",
    ]
    assert [r.spec.split(" : ")[0] for r in other.entry] == ["10.43.20.20 . tcp . 12345"]


def test_multi_port_service_walks_each_port(listing: str) -> None:
    dns = Service(
        "kube-system",
        "kube-dns",
        (
            ServicePort(53, "UDP", "dns"),
            ServicePort(53, "TCP", "dns-tcp"),
            ServicePort(9153, "TCP", "metrics"),
        ),
        cluster_ip="10.43.0.10",
    )
    tree = service_tree_nft(listing, dns)
    assert sorted(r.spec.split(" : ")[0] for r in tree.entry) == [
        "10.43.0.10 . tcp . 53",
        "10.43.0.10 . tcp . 9153",
        "10.43.0.10 . udp . 53",
    ]
    assert tree.chain_names() == [
        "service-FY5PMXPG-kube-system/kube-dns/udp/dns",
        "endpoint-VG5J5P4X-kube-system/kube-dns/udp/dns__10.42.0.2/53",
        "service-NWBZK7IH-kube-system/kube-dns/tcp/dns-tcp",
        "endpoint-ERSSIDKW-kube-system/kube-dns/tcp/dns-tcp__10.42.0.2/53",
        "service-AS2KJYAD-kube-system/kube-dns/tcp/metrics",
        "endpoint-6S3V4XMA-kube-system/kube-dns/tcp/metrics__10.42.0.2/9153",
    ]


def test_service_without_endpoints_shows_its_no_endpoint_elements(listing: str) -> None:
    tree = service_tree_nft(listing, CANARY)
    assert tree.entry == [] and tree.chains == {}
    assert [(r.chain, r.target, r.comment) for r in tree.filter_rules] == [
        ("no-endpoint-services", "reject-chain", "default/socat-canary"),
        ("no-endpoint-nodeports", "reject-chain", "default/socat-canary"),
    ]
    assert tree.filter_rules[0].spec == (
        '10.43.161.225 . tcp . 12345 comment "default/socat-canary" : goto reject-chain'
    )
    # Without element comments the keys (clusterIP . proto . port, proto . nodePort) still match.
    bare = listing.replace(' comment "default/socat-canary"', "")
    assert [r.spec for r in service_tree_nft(bare, CANARY).filter_rules] == [
        "10.43.161.225 . tcp . 12345 : goto reject-chain",
        "tcp . 31235 : goto reject-chain",
    ]
    assert service_tree_nft(listing, SOCAT).filter_rules == []


def test_v1_36_dnat_map_gives_one_branch_per_endpoint() -> None:
    text = (DATA / "kube-proxy-1.36.nft").read_text()
    api = Service(
        "kproxy-lab",
        "backend-api",
        (ServicePort(80, name="http", target_port=9898),),
        cluster_ip="10.100.192.23",
    )
    tree = service_tree_nft(text, api)
    chain = "service-YVSKLJHA-kproxy-lab/backend-api/tcp/http"
    assert [r.target for r in tree.entry] == [chain]
    assert tree.chain_names() == [chain]  # no endpoint- chains in 1.36
    assert [(r.target, r.dnat_to, r.probability) for r in tree.chains[chain]] == [
        ("dnat", "10.244.0.10:9898", 0.5),
        ("dnat", "10.244.0.8:9898", 0.5),
    ]
    assert nft_share_of(tree) == {"10.244.0.10:9898": 0.5, "10.244.0.8:9898": 0.5}
    parsed = parse_nft_table(text)
    assert parsed.sets["cluster-ips"] == ["10.96.0.1", "10.96.0.10", "10.100.192.23"]
    assert len(parsed.sets["hairpin-connections"]) == 2


def test_firewall_local_policy_comments_counters_and_handles() -> None:
    text = (DATA / "local-policy.nft").read_text()
    svc2 = Service(
        "ns2",
        "svc2",
        (ServicePort(80, name="p80", node_port=3001),),
        type="LoadBalancer",
        cluster_ip="172.30.0.42",
        external_traffic_policy="Local",
    )
    base, ep = "42NFTM6N-ns2/svc2/tcp/p80", "endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80"
    tree = service_tree_nft(
        text.replace("dnat to 10.180.0.2:80\n", "dnat to 10.180.0.2:80 # handle 31\n"), svc2
    )
    assert [(r.chain, r.target) for r in tree.entry] == [
        ("firewall-ips", f"firewall-{base}"),
        ("service-ips", f"external-{base}"),
        ("service-ips", f"service-{base}"),
        ("service-nodeports", f"external-{base}"),
    ]
    assert tree.entry[0].comment == "ns2/svc2:p80"
    assert tree.chain_names() == [
        f"{p}-{base}" for p in ("firewall", "external", "service", "local")
    ] + [ep]
    assert tree.chains[f"firewall-{base}"][0].target == "drop"
    assert [r.comment for r in tree.chains[f"external-{base}"]] == [
        "short-circuit pod traffic",
        "masquerade local traffic",
        "short-circuit local traffic",
        None,
    ]
    dnat = tree.chains[ep][1]
    assert (dnat.packets, dnat.bytes, dnat.dnat_to) == (7, 420, "10.180.0.2:80")
    assert dnat.spec == "meta l4proto tcp counter dnat to 10.180.0.2:80"  # no values, no handle
    branch = tree.chains[f"service-{base}"][1]
    assert (branch.packets, branch.bytes, branch.probability) == (3, 180, 1.0)
    assert nft_share_of(tree) == {ep: 1.0}  # the service- chain's; local- counts only without it


def test_listing_without_the_table_or_cut_short_is_refused(listing: str) -> None:
    with pytest.raises(InputError, match="nftables mode"):
        service_tree_nft("table ip nat {\n}\n", SOCAT)
    with pytest.raises(InputError, match="ends inside"):
        service_tree_nft(listing[: listing.index("chain services")], SOCAT)


# --- the kernel ------------------------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.skipif(shutil.which("nft") is None, reason="needs the nft command")
@pytest.mark.parametrize("name", ["kube-proxy", "local-policy"])
def test_fixture_is_what_nft_lists_for_the_transaction(name: str) -> None:
    """Load a transaction into a throw-away network namespace; the listing must be the fixture."""
    listed = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            'nft -f "$0" && nft list table ip kube-proxy',
            str(DATA / f"{name}.transaction"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    fixture = (DATA / f"{name}.nft").read_text().splitlines(keepends=True)
    assert listed == "".join(line for line in fixture if not line.startswith("#"))
