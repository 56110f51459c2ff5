"""The lab in kube-proxy's nftables mode, on the real kernel: `nft` inside the node namespace.

A lab built with proxy_mode="nftables" holds kube-proxy's `table ip kube-proxy` exactly as the
renderer writes it (read back with `nft list table`), no KUBE-* iptables chains, and the host's
ruleset is untouched. Switching modes on a running lab swaps the rules and the Service keeps
answering through the switch. The kernel takes every feature the renderer writes, and ClientIP
affinity's sets really pin a client.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from svcwatch import netns
from svcwatch.kubeproxy import mode
from svcwatch.kubeproxy.nft import parse_nft_table
from svcwatch.kubeproxy.nft_listing import transaction_listing
from svcwatch.kubeproxy.nft_render import render_nft
from svcwatch.lab import LabNode, LabSpec
from svcwatch.lab.instances import load_record
from svcwatch.lab.nftables import apply, listing, replace_batch
from svcwatch.lab.proxy import LabProxy
from svcwatch.lab.status import describe
from svcwatch.model.manifest import ManifestSet
from svcwatch.record.reader import load_recording
from tests.helpers.nft_upstream import UPSTREAM, upstream_overall_services
from tests.lab.conftest import host_network, lab_namespaces

pytestmark = pytest.mark.lab


@pytest.fixture
def nft_lab(spec: LabSpec, manifests: ManifestSet, state_root: Path) -> Iterator[LabNode]:
    small = LabSpec.from_manifests(manifests, spec.name, idle_pods=1)
    try:
        yield LabNode.up(small, manifests, state_root, proxy_mode="nftables")
    finally:
        LabNode.down(small.name, state_root)
        assert not lab_namespaces(small.name), "lab namespaces left behind"


def in_node(node: LabNode, *argv: str) -> str:
    with netns.entered(node.spec.node_ns):
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def echo_from_client(node: LabNode, timeout: float = 2) -> bool:
    """One TCP echo from the client namespace to the NodePort, as the probes do."""
    script = (
        f"exec 3<>/dev/tcp/{node.spec.node_ip}/31234 && echo hello >&3 && "
        'test "$(head -c 5 <&3)" = hello'
    )
    with netns.entered(node.spec.client_ns):
        done = subprocess.run(["timeout", str(timeout), "bash", "-c", script], capture_output=True)
    return done.returncode == 0


def test_node_holds_kube_proxys_table_and_no_kube_iptables_chains(
    spec: LabSpec, manifests: ManifestSet, state_root: Path
) -> None:
    before = host_network()
    node = LabNode.up(
        LabSpec.from_manifests(manifests, spec.name, idle_pods=1),
        manifests,
        state_root,
        proxy_mode="nftables",
    )
    try:
        kernel = parse_nft_table(listing(node.spec.node_ns))
        wanted_text, _ = node.proxy._table(node.service(), node.current_slice())
        wanted = parse_nft_table(transaction_listing(wanted_text))
        assert set(kernel.chains) == set(wanted.chains)
        svc = "service-72SUMGQA-default/socat/tcp/"
        assert kernel.chains[svc][-1].startswith("numgen random mod 1 vmap { 0 : goto endpoint-")
        assert kernel.maps["service-nodeports"] == [
            "tcp . 31234 : goto external-72SUMGQA-default/socat/tcp/"
        ]
        assert "KUBE-" not in in_node(node, "iptables-save")
        assert node.drift() == []
        assert load_record(state_root, node.spec.name).proxy_mode == "nftables"  # type: ignore[union-attr]
        status = describe(node)
        assert status["proxy_mode"] == "nftables" and status["backend"] == "nftables"
        assert echo_from_client(node)
        assert host_network() == before, "the host's ruleset must not change"
    finally:
        LabNode.down(node.spec.name, state_root)


def test_a_reattached_lab_remembers_its_mode(nft_lab: LabNode, state_root: Path) -> None:
    again = LabNode.attach(nft_lab.spec.name, state_root)
    assert again.proxy.mode == "nftables"
    synced = again.reconcile()
    assert synced.proxy_backend == "nftables" and synced.added == synced.removed == ()


def test_switching_modes_swaps_the_rules_and_the_service_keeps_answering(
    nft_lab: LabNode, state_root: Path
) -> None:
    answers: list[bool] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            answers.append(echo_from_client(nft_lab, timeout=1))
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        to_iptables = nft_lab.set_proxy_mode("iptables")
        assert to_iptables.proxy_backend.startswith("iptables")
        assert any(c.startswith("KUBE-SEP-") for c in to_iptables.added)
        assert any(c.startswith("endpoint-") for c in to_iptables.removed)
        assert "table ip kube-proxy" not in in_node(nft_lab, "nft", "list", "tables")
        assert "KUBE-SVC-" in in_node(nft_lab, "iptables-save")
        assert nft_lab.drift() == []
        back = nft_lab.set_proxy_mode("nftables")
        assert back.proxy_backend == "nftables" and any(c.startswith("KUBE-") for c in back.removed)
        assert "KUBE-" not in in_node(nft_lab, "iptables-save")
        assert nft_lab.drift() == []
    finally:
        stop.set()
        prober.join()
    assert answers and all(answers), f"{answers.count(False)} of {len(answers)} echoes failed"
    assert load_record(state_root, nft_lab.spec.name).proxy_mode == "nftables"  # type: ignore[union-attr]


def test_a_table_changed_behind_its_back_is_rewritten_by_the_next_sync(nft_lab: LabNode) -> None:
    in_node(nft_lab, "nft", "delete", "table", "ip", "kube-proxy")
    assert nft_lab.drift()  # the kernel lost the table: status says so
    nft_lab.proxy = LabProxy(nft_lab.spec, "nftables")  # a fresh process: no memory of a sync
    nft_lab.reconcile()
    assert nft_lab.drift() == []
    assert echo_from_client(nft_lab)


def test_the_kernel_takes_every_feature_the_renderer_writes(nft_lab: LabNode) -> None:
    """Upstream's six TestOverallNFTablesRules Services (Local policy, externalIPs, LB IPs,
    source ranges, ClientIP affinity, no endpoints), loaded by `nft -f` into the lab's node and
    listed back: the kernel holds every chain, set and map element the renderer wrote."""
    rendered = render_nft(upstream_overall_services(), UPSTREAM)
    apply(nft_lab.spec.node_ns, replace_batch(rendered.text()))
    kernel = parse_nft_table(listing(nft_lab.spec.node_ns))
    wanted = parse_nft_table(transaction_listing(rendered.text()))
    assert set(kernel.chains) == set(wanted.chains)
    assert {k: len(v) for k, v in kernel.maps.items()} == {
        k: len(v) for k, v in wanted.maps.items()
    }
    assert "affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80" in kernel.sets
    svc5 = upstream_overall_services()[4][0]  # ClientIP affinity, 10800 s: the kernel says "3h"
    kernel_view = mode.service_view(mode.identify(listing(nft_lab.spec.node_ns)), svc5)
    assert mode.affinity_seconds(kernel_view) == 10800
    nft_lab.proxy = LabProxy(nft_lab.spec, "nftables")  # the lab's own table back
    nft_lab.reconcile()
    assert nft_lab.drift() == [] and echo_from_client(nft_lab)


def test_a_recorded_nftables_run_replays_with_kube_proxys_table(tmp_path: Path) -> None:
    """`run --record` on a lab in nftables mode: the recording keeps the table read back from
    the kernel (proxy_backend nftables, endpoint- chains, no counters), so a replay of a talk
    rehearsed in nftables mode shows the same pane."""
    name, recording = f"t{secrets.token_hex(3)}", tmp_path / "nft.svcrec"
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(tmp_path / "state")}
    argv = [sys.executable, "-m", "svcwatch", "run", "--json", "--name", name, "--pods", "1"]
    argv += ["--proxy-mode", "nftables", "-s", "mixed", "-d", "2", "--record", str(recording)]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)
    finally:
        subprocess.run([*argv[:3], "lab", "down", "--name", name], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    chains = load_recording(recording).chains
    assert chains
    _, tree = chains[-1]
    assert mode.is_nft(tree) and not mode.has_counters(tree)
    assert sorted(mode.shares(tree).values()) == [0.5, 0.5]
    assert {r.dnat_to for r in tree.all_rules() if r.dnat_to} == {
        "10.42.0.142:12345",
        "10.42.0.143:12345",
    }
    assert not lab_namespaces(name)


def test_clientip_affinity_pins_a_client_in_nftables_mode(nft_lab: LabNode) -> None:
    """The affinity sets work in the kernel: with "mixed" (one live endpoint, one nobody
    answers on) and ClientIP affinity, twelve connections from one client all meet the same fate,
    and the client's address sits in exactly one endpoint's affinity set."""
    sticky = replace(nft_lab.service(), session_affinity="ClientIP", affinity_seconds=300)
    nft_lab.store.write_service(yaml.safe_dump(sticky.to_manifest(), sort_keys=False))
    nft_lab.set_scenario("mixed")
    nft_lab.reconcile()
    outcomes = []
    for _ in range(12):
        with netns.socket_in(nft_lab.spec.client_ns, socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.3)
            outcomes.append(sock.connect_ex((nft_lab.spec.node_ip, 31234)) == 0)
    assert len(set(outcomes)) == 1, outcomes  # all answered, or all lost: never a coin toss
    table = parse_nft_table(listing(nft_lab.spec.node_ns))
    holding = [name for name, elements in table.sets.items() if name.startswith("affinity-")
               and any(e.startswith(nft_lab.spec.client_ip + " ") for e in elements)]  # fmt: skip
    assert len(holding) == 1, table.sets
    assert (holding[0].endswith("__10.42.0.142/12345")) == outcomes[0]  # the live pod answered


def test_partial_syncs_keep_the_kernel_equal_to_a_full_rendering(nft_lab: LabNode) -> None:
    """Scenario after scenario, each sync writes only what changed (kube-proxy's partial sync);
    after every one the kernel's table reads back the same as the full rendering, and the
    endpoint chains a sync only flushed are deleted by a sync a second later."""
    from svcwatch.model.scenario import SCENARIOS

    wanted_chains: set[str] = set()
    for name in [*SCENARIOS, "wrong-port", "happy"]:
        nft_lab.set_scenario(name)
        nft_lab.reconcile()
        assert nft_lab.drift() == [], name
        wanted_text, wanted = nft_lab.proxy._table(nft_lab.service(), nft_lab.current_slice())
        kernel = parse_nft_table(listing(nft_lab.spec.node_ns))
        full = parse_nft_table(transaction_listing(wanted_text))
        assert kernel.maps == full.maps and kernel.sets == full.sets, name
        live = {c for c, rules in kernel.chains.items() if rules}
        assert live == {c for c, rules in full.chains.items() if rules}, name
        wanted_chains = set(wanted)
    time.sleep(1.1)  # kube-proxy deletes a stale chain once it has been stale for a second
    nft_lab.reconcile()
    kernel_chains = {c for c in parse_nft_table(listing(nft_lab.spec.node_ns)).chains if "/" in c}
    assert kernel_chains == wanted_chains
    assert echo_from_client(nft_lab)
