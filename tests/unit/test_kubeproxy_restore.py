"""Reading iptables-save back: a whole k3s node's dump, one Service's tree, counters and shares.

tests/data/iptables/k3s-node.save was produced by loading k3s-node.restore (a k3s 1.30 node's
ruleset: kube-proxy, flannel, kube-router, CNI hostport, canaries, with counters) into iptables
v1.8.9 (nf_tables) in a throw-away namespace and running `iptables-save -c`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.kubeproxy.mode import flavour_of_version
from svcwatch.kubeproxy.render import render
from svcwatch.kubeproxy.restore import (
    parse_save,
    saved_form,
    saved_probability,
    service_tree,
    share_of,
    to_restore_text,
)
from svcwatch.kubeproxy.syntax import saved_spec, tokenize
from svcwatch.model.endpointslice import Endpoint, EndpointPort, EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.service import Service, ServicePort

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "iptables"
SOCAT = Service(
    "default",
    "socat",
    (ServicePort(12345, node_port=31234),),
    type="NodePort",
    cluster_ip="10.43.161.224",
)


@pytest.fixture(scope="module")
def node_dump() -> str:
    return (DATA / "k3s-node.save").read_text()


def test_parse_save_reads_every_table_chain_policy_and_counter(node_dump: str) -> None:
    saved = parse_save(node_dump)
    assert [t.name for t in saved.tables] == ["mangle", "filter", "nat"]
    nat = saved.table("nat")
    assert nat.policies["PREROUTING"] == "ACCEPT"
    assert {
        "FLANNEL-POSTRTG",
        "CNI-HOSTPORT-DNAT",
        "KUBE-PROXY-CANARY",
        "KUBE-SVC-NPX46M4PTMTKRN6Y",
    } <= set(nat.chains)
    assert {"FLANNEL-FWD", "KUBE-FIREWALL", "KUBE-ROUTER-INPUT"} <= set(
        saved.table("filter").chains
    )
    masq = [r for r in nat.rules_of("FLANNEL-POSTRTG") if r.target == "MASQUERADE"]
    assert (masq[0].packets, masq[0].bytes) == (12, 744)
    nat_text = node_dump[node_dump.index("*nat") :]
    assert len(nat.rules) == nat_text.count("\n[")  # every counted -A line of the nat table
    cni = next(r for r in nat.rules if r.chain == "CNI-HOSTPORT-DNAT")
    assert cni.comment == 'dnat name: "cbr0" id: "5e0a1f7c9b"'  # escaped quotes read back


def test_service_tree_isolates_socat_with_its_counters(node_dump: str) -> None:
    tree = service_tree(parse_save(node_dump), SOCAT, proxy_backend="iptables-nft")
    assert tree.service == "default/socat" and tree.proxy_backend == "iptables-nft"
    assert tree.chain_names() == [
        "KUBE-EXT-6GHM6NOKDRAB634Q",
        "KUBE-SVC-6GHM6NOKDRAB634Q",
        "KUBE-SEP-STAYFALK6DPGANUO",
        "KUBE-SEP-L7Q23S57UQHHMQS4",
    ]
    assert [(r.chain, r.target, r.packets) for r in tree.entry] == [
        ("KUBE-SERVICES", "KUBE-SVC-6GHM6NOKDRAB634Q", 0),
        ("KUBE-NODEPORTS", "KUBE-EXT-6GHM6NOKDRAB634Q", 44),
    ]
    svc = tree.chains["KUBE-SVC-6GHM6NOKDRAB634Q"]
    assert [(r.target, r.probability, r.packets, r.bytes) for r in svc] == [
        ("KUBE-MARK-MASQ", None, 0, 0),
        ("KUBE-SEP-STAYFALK6DPGANUO", 0.5, 23, 1380),
        ("KUBE-SEP-L7Q23S57UQHHMQS4", None, 21, 1260),
    ]
    dnat = {c: rules[-1] for c, rules in tree.chains.items() if c.startswith("KUBE-SEP-")}
    assert {c: (r.dnat_to, r.packets) for c, r in dnat.items()} == {
        "KUBE-SEP-STAYFALK6DPGANUO": ("10.42.0.142:12345", 23),
        "KUBE-SEP-L7Q23S57UQHHMQS4": ("10.42.0.143:12345", 21),
    }
    assert tree.chains["KUBE-SEP-STAYFALK6DPGANUO"][0].comment == "default/socat"
    everything = " ".join(r.spec for r in tree.all_rules())
    assert (
        "other/socat" not in everything
        and "socat-canary" not in everything
        and tree.filter_rules == []
    )


def test_service_tree_of_a_service_with_no_endpoints_is_its_reject_rules(node_dump: str) -> None:
    canary = Service(
        "default",
        "socat-canary",
        (ServicePort(12345, node_port=31235),),
        type="NodePort",
        cluster_ip="10.43.161.225",
    )
    tree = service_tree(parse_save(node_dump), canary)
    assert tree.entry == [] and tree.chains == {}
    assert [(r.chain, r.target, r.packets) for r in tree.filter_rules] == [
        ("KUBE-SERVICES", "REJECT", 3),
        ("KUBE-EXTERNAL-SERVICES", "REJECT", 3),
    ]


def test_service_tree_handles_multi_port_udp_services(node_dump: str) -> None:
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
    tree = service_tree(parse_save(node_dump), dns)
    assert [c[:9] for c in tree.chain_names()] == ["KUBE-SVC-", "KUBE-SEP-"] * 3
    assert {r.dnat_to for r in tree.all_rules() if r.dnat_to} == {"10.42.0.2:53", "10.42.0.2:9153"}
    assert len(tree.entry) == 3


def test_service_tree_finds_chains_by_hash_when_comments_are_dropped(node_dump: str) -> None:
    bare = re.sub(r' -m comment --comment (".*?(?<!\\)"|\S+)', "", node_dump)
    assert "default/socat" not in bare
    with_comments = service_tree(parse_save(node_dump), SOCAT)
    without = service_tree(parse_save(bare), SOCAT)
    assert without.chain_names() == with_comments.chain_names()
    assert [r.packets for r in without.all_rules()] == [
        r.packets for r in with_comments.all_rules()
    ]


def three_endpoint_tree(service: Service = SOCAT) -> dict[str, float]:
    slice_ = EndpointSlice(
        "default",
        "socat",
        tuple(Endpoint((f"10.42.0.{n}",)) for n in (142, 143, 99)),
        (EndpointPort(12345),),
        labels={"kubernetes.io/service-name": "socat"},
    )
    return share_of(service_tree(saved_form(render(service, [slice_])), service))


def test_affinity_checks_are_not_catch_alls() -> None:
    """With ClientIP affinity the --rcheck rules come first; they catch only returning clients,
    so new ones still split 1/3 each (read as catch-alls, the first would take 100 %)."""
    sticky = three_endpoint_tree(replace(SOCAT, session_affinity="ClientIP"))
    assert list(sticky) == list(three_endpoint_tree())
    assert all(abs(s - 1 / 3) < 1e-9 for s in sticky.values())


def test_share_of_turns_the_probability_chain_into_equal_shares(node_dump: str) -> None:
    assert share_of(service_tree(parse_save(node_dump), SOCAT)) == {
        "KUBE-SEP-STAYFALK6DPGANUO": 0.5,
        "KUBE-SEP-L7Q23S57UQHHMQS4": 0.5,
    }
    shares = three_endpoint_tree()
    assert list(shares) == [
        "KUBE-SEP-STAYFALK6DPGANUO",
        "KUBE-SEP-L7Q23S57UQHHMQS4",
        "KUBE-SEP-5PJJDD57LTHUHDYX",
    ]
    assert (
        all(abs(s - 1 / 3) < 1e-9 for s in shares.values())
        and abs(sum(shares.values()) - 1) < 1e-12
    )


@pytest.mark.parametrize(
    ("n", "written", "saved"),
    [
        (2, "0.5000000000", "0.50000000000"),
        (3, "0.3333333333", "0.33333333349"),
        (4, "0.2500000000", "0.25000000000"),
        (5, "0.2000000000", "0.20000000019"),
        (6, "0.1666666667", "0.16666666651"),
        (7, "0.1428571429", "0.14285714272"),
        (8, "0.1250000000", "0.12500000000"),
        (9, "0.1111111111", "0.11111111101"),
        (10, "0.1000000000", "0.10000000009"),
    ],
)
def test_probability_table(n: int, written: str, saved: str) -> None:
    slice_ = EndpointSlice(
        "default",
        "socat",
        tuple(Endpoint((f"10.42.1.{i}",)) for i in range(n)),
        (EndpointPort(12345),),
        labels={"kubernetes.io/service-name": "socat"},
    )
    first = next(r for r in render(SOCAT, [slice_]).table("nat").rules if r.probability is not None)
    assert f"--probability {written} " in first.spec
    assert f"{saved_probability(float(written)):.11f}" == saved
    assert f"--probability {saved} " in saved_spec(first.spec)


def test_restore_text_round_trips_through_the_parser() -> None:
    slice_ = EndpointSlice(
        "default",
        "socat",
        (Endpoint(("10.42.0.142",)),),
        (EndpointPort(12345),),
        labels={"kubernetes.io/service-name": "socat"},
    )
    text = to_restore_text(render(SOCAT, [slice_]))
    assert to_restore_text(parse_save(text)) == text
    with_stale = to_restore_text(
        render(SOCAT, [slice_], stale_chains=["KUBE-SEP-XVRNL33HWWUQHJC7"])
    )
    assert parse_save(with_stale).table("nat").deleted == ["KUBE-SEP-XVRNL33HWWUQHJC7"]


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        ('-m comment --comment "a\\"b" -j ACCEPT', '-m comment --comment "a\\"b" -j ACCEPT'),
        (
            "-m comment --comment plain_word-1 -j ACCEPT",
            "-m comment --comment plain_word-1 -j ACCEPT",
        ),
        ('-m comment --comment "" -j ACCEPT', '-m comment --comment "" -j ACCEPT'),
        (
            "-p TCP -m tcp --dport 80 -i eth0 -s 10.0.0.5/8 -j REJECT",
            "-s 10.0.0.0/8 -i eth0 -p tcp -m tcp --dport 80 -j REJECT --reject-with "
            "icmp-port-unreachable",
        ),
        ("-j MARK --set-mark 0x1", "-j MARK --set-xmark 0x1/0xffffffff"),
        ("-m nfacct --nfacct-name ctr -j ACCEPT", "-m nfacct --nfacct-name  ctr -j ACCEPT"),
        (
            "-m mark ! --mark 0x00004000/0x00004000 -j RETURN",
            "-m mark ! --mark 0x4000/0x4000 -j RETURN",
        ),
    ],
)
def test_saved_spec_prints_like_iptables_save(written: str, printed: str) -> None:
    assert saved_spec(written) == printed


def test_tokenize_reads_backslash_escapes_inside_quotes() -> None:
    assert tokenize('--comment "x\\"y\\\'z\\\\w" -j A') == ["--comment", "x\"y'z\\w", "-j", "A"]


@pytest.mark.parametrize(
    ("version", "backend"),
    [
        ("iptables v1.8.9 (nf_tables)\n", "iptables-nft"),
        ("iptables v1.8.9 (legacy)", "iptables-legacy"),
        ("iptables v1.6.1", "iptables-legacy"),
    ],
)
def test_flavour_of_version(version: str, backend: str) -> None:
    assert flavour_of_version(version) == backend


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(InputError):
        flavour_of_version("nft v1.0.6")
    with pytest.raises(InputError, match="line 2"):
        parse_save("*nat\nthis is not iptables\n")
    with pytest.raises(InputError, match="before any"):
        parse_save("-A KUBE-SERVICES -j ACCEPT\n")
