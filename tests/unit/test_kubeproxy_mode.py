"""kubeproxy.mode: the one place that says which kube-proxy mode wrote a dump and what it shows.

The same Service from the blog post read from a real k3s node's `iptables-save` and from a real
`nft list table ip kube-proxy` listing (tests/data) must come out with the same endpoints and
shares, each labelled with the mode and flavour that wrote it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.kubeproxy import mode
from svcwatch.kubeproxy.nft_listing import transaction_listing
from svcwatch.kubeproxy.nft_render import render_nft
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.scenario import ScenarioContext, apply_scenario

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SOCAT = replace(
    collect(
        parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml")
    ).services[0],
    cluster_ip="10.43.161.224",
)


def test_an_iptables_save_dump_is_iptables_mode_with_its_flavour_from_the_header() -> None:
    dump = mode.identify((DATA / "iptables" / "k3s-node.save").read_text())
    assert (dump.mode, dump.flavour) == ("iptables", "iptables-nft")
    tree = mode.service_view(dump, SOCAT)
    assert (
        not mode.is_nft(tree) and tree.proxy_backend == "iptables-nft" and mode.has_counters(tree)
    )
    assert all(c.startswith("KUBE-SVC-") for c in mode.balancer_chains(tree))


@pytest.mark.parametrize(
    ("command", "flavour"),
    [("iptables-legacy-save -c", "iptables-legacy"), ("iptables-save -c", "iptables")],
)
def test_a_dump_without_a_header_takes_its_flavour_from_the_command(
    command: str, flavour: str
) -> None:
    assert mode.identify("*nat\nCOMMIT\n", command).flavour == flavour


def test_an_nft_listing_is_nftables_mode_with_flat_numgen_shares() -> None:
    dump = mode.identify((DATA / "nft" / "kube-proxy.nft").read_text())
    assert (dump.mode, dump.flavour) == ("nftables", "nftables")
    tree = mode.service_view(dump, SOCAT)
    assert mode.is_nft(tree) and not mode.has_counters(tree)
    assert sorted(mode.shares(tree).values()) == [0.5, 0.5]
    assert mode.endpoint_chain_prefix(tree) == "endpoint-"


@pytest.mark.parametrize("scenario", ["empty", "not-ready"])
def test_no_endpoints_rejects_in_both_modes(scenario: str) -> None:
    from svcwatch.kubeproxy.render import render
    from svcwatch.kubeproxy.restore import saved_form, to_restore_text

    objs = collect(parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml"))
    slice_ = apply_scenario(scenario, ScenarioContext(objs.slices_for(SOCAT)[0]))
    iptables_text = to_restore_text(saved_form(render(SOCAT, [slice_])))
    nft_text = transaction_listing(render_nft([(SOCAT, [slice_])]).text())
    for text in (iptables_text, nft_text):
        tree = mode.service_view(mode.identify(text), SOCAT)
        assert mode.rejects(tree) and not tree.chains
    happy = apply_scenario("happy", ScenarioContext(objs.slices_for(SOCAT)[0]))
    nft_happy = transaction_listing(render_nft([(SOCAT, [happy])]).text())
    assert not mode.rejects(mode.service_view(mode.identify(nft_happy), SOCAT))


def test_an_nft_affinity_lookup_takes_no_share_of_new_connections() -> None:
    """ClientIP affinity in nftables mode: `ip saddr @affinity-… goto endpoint-…` comes before
    the numgen; it only catches returning clients, so the shares stay 1/N on the numgen branches."""
    sticky = replace(SOCAT, session_affinity="ClientIP", affinity_seconds=60)
    objs = collect(parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml"))
    slice_ = apply_scenario("mixed", ScenarioContext(objs.slices_for(SOCAT)[0]))
    listing = transaction_listing(render_nft([(sticky, [slice_])]).text())
    tree = mode.service_view(mode.identify(listing), sticky)
    svc = next(c for c in tree.chains if c.startswith("service-"))
    lookups = [r for r in tree.chains[svc] if "@affinity-" in r.spec]
    assert len(lookups) == 2 and {mode.share_key(r) for r in lookups} == {""}
    assert sorted(mode.shares(tree).values()) == [0.5, 0.5]


def test_affinity_seconds_in_both_modes() -> None:
    """The diagnosis' "ClientIP affinity pins this client" note needs the timeout: iptables
    writes it on the `--rcheck` rule, nftables on the affinity set."""
    from svcwatch.kubeproxy.render import render
    from svcwatch.kubeproxy.restore import saved_form, to_restore_text

    sticky = replace(SOCAT, session_affinity="ClientIP", affinity_seconds=60)
    objs = collect(parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml"))
    slice_ = apply_scenario("mixed", ScenarioContext(objs.slices_for(SOCAT)[0]))
    nft_text = transaction_listing(render_nft([(sticky, [slice_])]).text())
    iptables_text = to_restore_text(saved_form(render(sticky, [slice_])))
    for text in (nft_text, iptables_text):
        assert mode.affinity_seconds(mode.service_view(mode.identify(text), sticky)) == 60
    plain = transaction_listing(render_nft([(SOCAT, [slice_])]).text())
    assert mode.affinity_seconds(mode.service_view(mode.identify(plain), SOCAT)) is None
