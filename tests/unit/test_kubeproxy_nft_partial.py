"""kube-proxy's partial sync in nftables mode: between two renderings only what changed is written.

wrong-port moves the Service's endpoint from :12345 to :12346, so a partial sync adds the new
endpoint chain, rewrites the service chain's numgen, leaves the external- chain and every map
element alone, and only flushes the old endpoint chain (deleted a sync later, as kube-proxy does).
tests/lab/test_lab_nft.py runs these batches against the real kernel.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from svcwatch.kubeproxy.nft_partial import partial_batch, stale_chains
from svcwatch.kubeproxy.nft_render import NftConfig, render_nft
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.scenario import ScenarioContext, apply_scenario

ROOT = Path(__file__).resolve().parents[2]
OBJS = collect(parse_documents((ROOT / "manifests" / "socat.yaml").read_text(), "socat.yaml"))
SOCAT = replace(OBJS.services[0], cluster_ip="10.43.161.224")
OLD_EP = "endpoint-UX6HWFCB-default/socat/tcp/__10.42.0.142/12345"
SVC = "service-72SUMGQA-default/socat/tcp/"


def table(scenario: str, config: NftConfig = NftConfig()) -> str:  # noqa: B008
    slice_ = apply_scenario(scenario, ScenarioContext(OBJS.slices_for(SOCAT)[0]))
    return render_nft([(SOCAT, [slice_])], config).text()


def test_wrong_port_rewrites_only_the_service_chain_and_adds_the_new_endpoint() -> None:
    batch = partial_batch(table("happy"), table("wrong-port"))
    assert batch is not None
    lines = batch.splitlines()
    new_ep = next(ln.split()[-1] for ln in lines if ln.startswith("add chain") and "12346" in ln)
    assert new_ep.startswith("endpoint-") and new_ep.endswith("__10.42.0.142/12346")
    assert f"flush chain ip kube-proxy {SVC}" in lines
    assert f"flush chain ip kube-proxy {OLD_EP}" in lines  # stale: flushed, not yet deleted
    assert not [ln for ln in lines if ln.startswith("delete chain")]
    assert not [ln for ln in lines if "external-72SUMGQA" in ln and "flush" in ln]
    assert not [ln for ln in lines if "element" in ln]  # same maps: nothing to touch
    assert not [ln for ln in lines if "filter-" in ln or "add table" in ln]  # no base
    assert stale_chains(table("happy"), table("wrong-port")) == {OLD_EP}


def test_a_stale_chain_is_deleted_by_a_later_sync() -> None:
    batch = partial_batch(table("wrong-port"), table("wrong-port"), frozenset({OLD_EP}))
    assert batch == f"delete chain ip kube-proxy {OLD_EP}\n"
    assert partial_batch(table("happy"), table("happy")) == ""  # nothing changed: no batch


def test_no_endpoints_swaps_map_elements_for_no_endpoint_elements() -> None:
    batch = partial_batch(table("happy"), table("empty"))
    assert batch is not None
    lines = batch.splitlines()
    assert "delete element ip kube-proxy service-ips { 10.43.161.224 . tcp . 12345 }" in lines
    assert "delete element ip kube-proxy service-nodeports { tcp . 31234 }" in lines
    assert any(ln.startswith("add element ip kube-proxy no-endpoint-services {") for ln in lines)
    assert "delete element ip kube-proxy cluster-ips { 10.43.161.224 }" not in lines  # kept


def test_a_changed_base_takes_a_full_sync() -> None:
    other = NftConfig(service_cidr="10.96.0.0/12")  # cluster-ips-check's drop rule changed
    assert partial_batch(table("happy"), table("happy", other)) is None
    moved = NftConfig(node_ips=("192.168.97.4",))  # only an element of nodeport-ips: partial
    assert partial_batch(table("happy"), table("happy", moved)) == (
        "delete element ip kube-proxy nodeport-ips { 192.168.97.3 }\n"
        "add element ip kube-proxy nodeport-ips { 192.168.97.4 }\n"
    )
