"""The pieces of the node-side rules read that need no kernel: listings, detection, timeouts."""

from __future__ import annotations

import pytest

from svcwatch.cluster.rules_read import (
    filter_words,
    listing_to_save,
    own_chains,
    parse_detected,
    read_argv,
)
from svcwatch.kubeproxy.restore import parse_save
from svcwatch.model.errors import SetupError
from svcwatch.model.service import Service, ServicePort
from tests.helpers.local_transport import LocalTransport

WEB = Service(
    "shop", "web", (ServicePort(80, node_port=30080),), type="NodePort", cluster_ip="10.43.0.11"
)


def test_a_chain_listing_reads_as_iptables_save_with_counters() -> None:
    listing = "\n".join(
        [
            "*nat",
            "# Warning: iptables-legacy tables present, use iptables-legacy to see them",
            "-N KUBE-SVC-AAAA",
            '-A KUBE-SVC-AAAA -m comment --comment "x -c 1 2 -j y" -m statistic --mode random'
            " --probability 0.50000000000 -c 7 420 -j KUBE-SEP-BBBB",
            "-A KUBE-SVC-AAAA -c 3 180 -j KUBE-SEP-CCCC",
            "-A KUBE-SEP-BBBB -p tcp -m tcp -c 0 0 -j DNAT --to-destination 10.42.0.5:8080",
        ]
    )
    saved = listing_to_save(listing)
    rules = parse_save(saved).table("nat").rules
    assert parse_save(saved).table("nat").chains == ["KUBE-SVC-AAAA"]
    assert [(r.chain, r.target, r.packets, r.bytes) for r in rules] == [
        ("KUBE-SVC-AAAA", "KUBE-SEP-BBBB", 7, 420),
        ("KUBE-SVC-AAAA", "KUBE-SEP-CCCC", 3, 180),
        ("KUBE-SEP-BBBB", "DNAT", 0, 0),
    ]
    assert rules[0].comment == "x -c 1 2 -j y"  # the counters are the last -c before the target
    assert rules[2].dnat_to == "10.42.0.5:8080"


@pytest.mark.parametrize(
    ("line", "mode", "tool", "backend", "command"),
    [
        (
            "iptables iptables iptables v1.8.9 (nf_tables)",
            "iptables",
            "iptables",
            "iptables-nft",
            "iptables",
        ),
        (
            "iptables iptables-legacy iptables v1.8.9 (legacy)",
            "iptables",
            "iptables-legacy",
            "iptables-legacy",
            "iptables-legacy-save",
        ),
        (
            "iptables iptables iptables v1.6.1",
            "iptables",
            "iptables",
            "iptables-legacy",
            "iptables-save",
        ),
        ("nftables", "nftables", "nft", "nftables", "nft list table ip kube-proxy"),
        ("none", "none", "", "", ""),
    ],
)
def test_detection_picks_how_the_node_is_read(
    line: str, mode: str, tool: str, backend: str, command: str
) -> None:
    source = parse_detected(line + "\n")
    assert (source.mode, source.tool, source.backend, source.command) == (
        mode,
        tool,
        backend,
        command,
    )


def test_one_command_a_read_naming_only_this_services_chains() -> None:
    nft_backend = parse_detected("iptables iptables-nft iptables v1.8.9 (nf_tables)")
    argv = read_argv(nft_backend, WEB, entry=False)
    assert argv[:2] == ["sh", "-c"]
    assert argv[4:] == [
        "iptables-nft",
        "0",
        " ".join(own_chains(WEB)),
        " ".join(own_chains(WEB)),
        '"shop/web 10.43.0.11/32',
    ]
    assert [c.split("-")[1] for c in own_chains(WEB)] == ["FW", "EXT", "SVC", "SVL"]
    assert filter_words(WEB) == ['"shop/web', "10.43.0.11/32"]
    legacy = parse_detected("iptables iptables-legacy iptables v1.8.9 (legacy)")
    assert read_argv(legacy, WEB, entry=False)[4] == "iptables-legacy-save"
    assert read_argv(parse_detected("nftables"), WEB, entry=True) == [
        "nft",
        "list",
        "table",
        "ip",
        "kube-proxy",
    ]


def test_a_command_slower_than_its_timeout_is_an_error_not_partial_output() -> None:
    with pytest.raises(SetupError, match=r"sh on this host did not finish within 0.3s"):
        LocalTransport().run(["sh", "-c", "echo partial; sleep 5"], timeout=0.3)
