"""Cluster-mode panes (issue 7) and `w` (issue 6), on FakeSession variants with the pilot.

nftables mode is read from real `nft list table ip kube-proxy` listings (tests/data/nft); `w`'s
file is opened with tshark when it is installed, as Wireshark users would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Static

from svcwatch.explain import chain_view
from svcwatch.kubeproxy.nft import service_tree_nft
from svcwatch.model.events import Notice
from svcwatch.model.service import Service, ServicePort
from svcwatch.ui.controls import PCAP_DIR_ENV
from tests.helpers.tshark import tshark
from tests.ui.conftest import make_app, settle, widget_text
from tests.ui.fake_variants import NFT_DATA, NftablesSession, RawFramesSession, StaleWatchSession
from tests.ui.fakes import T0

SIZE = (140, 44)
SOCAT_EP1 = "endpoint-UX6HWFCB-default/socat/tcp/__10.42.0.142/12345"


def chain_text(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.main.chain_pane.query_one("#chain-body", Static).render())


async def test_nftables_rules_show_as_nftables_with_flat_shares_and_no_counters() -> None:
    app = make_app(NftablesSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        title = app.main.chain_pane.border_title
        assert title == "nftables (table ip kube-proxy) · default/socat · no counters"
        text = chain_text(app)
        assert "KUBE-" not in text
        assert "service-ips / service-nodeports" in text.splitlines()[0]
        assert text.count(" 50% ") == 2 and "p=0.5" not in text  # numgen: 1/N each, no chain
        assert f"-> {SOCAT_EP1}" in text and "-> dnat 10.42.0.142:12345" in text
        assert " pkts " not in text  # no counters: no column of zeros
        assert "10.43.161.224 . tcp . 12345 -> service-72SUMGQA" in text  # the map element's key
        # Instead, what the capture saw land on each endpoint, and the pane says so.
        seen = app.main.evidence.landed_from_capture()
        assert seen.get("10.42.0.142:12345", 0) > 0
        dnat = next(ln for ln in text.splitlines() if "-> dnat 10.42.0.142:12345" in ln)
        assert dnat.split()[:2] == [str(seen["10.42.0.142:12345"]), "conns"]
        assert "kube-proxy's table has no counters: 'conns' = new connections the capture" in text
        table = widget_text(app.main.slice_pane)
        assert " conns" in table.splitlines()[1] and "n/a" not in table


def test_nftables_1_36_dnat_map_shares_are_keyed_by_address() -> None:
    api = Service(
        "kproxy-lab",
        "backend-api",
        (ServicePort(80, name="http", target_port=9898),),
        cluster_ip="10.100.192.23",
    )
    tree = service_tree_nft((NFT_DATA / "kube-proxy-1.36.nft").read_text(), api)
    branches = [r for rules in tree.chains.values() for r in rules if r.target == "dnat"]
    shares = chain_view.shares(tree)
    assert [shares[chain_view.share_key(r)] for r in branches] == [0.5, 0.5]
    assert chain_view.landed_counts(tree) is None


def test_nftables_counters_count_when_someone_added_them() -> None:
    listing = (NFT_DATA / "kube-proxy.nft").read_text()
    counted = listing.replace(
        "meta l4proto tcp dnat to 10.42.0.142:12345",
        "meta l4proto tcp counter packets 7 bytes 420 dnat to 10.42.0.142:12345",
    )
    tree = service_tree_nft(counted, NftablesSession().service())
    assert chain_view.has_counters(tree)
    assert chain_view.landed_counts(tree) == {"10.42.0.142:12345": 7, "10.42.0.143:12345": 0}


async def test_a_broken_watch_says_how_long_it_has_been_stale() -> None:
    session = StaleWatchSession(stale_since=T0 - 4)
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.sub_title == "scenario: Happy path (1) · ⚠ watch stale for 4s"
        assert app.main.diagnosis.text.startswith("Watch stale for 4s (API server unreachable?)")
        assert app.main.diagnosis.level == "partial"
        session.stale_since = None  # the watch is back; the session says so in the stream
        session._emit([Notice(T0 + 9, "stale", "cluster watch live again")])
        await settle(app, pilot)
        assert app.sub_title == "scenario: Happy path (1)"
        assert app.main.diagnosis.text.startswith("Healthy")


async def test_a_watch_that_breaks_mid_run_shows_up_at_once() -> None:
    session = StaleWatchSession()
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "stale" not in app.sub_title
        session.stale_since = T0 - 12
        session._emit([Notice(T0, "stale", "cluster watch broken")])
        await settle(app, pilot)
        assert app.sub_title.endswith("⚠ watch stale for 12s")


async def test_packet_rows_carry_the_node_and_filter_by_it() -> None:
    app = make_app(RawFramesSession(node="k3d-demo-agent-1"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        lines = app.main.packet_pane.drawn_text
        assert any("[k3d-demo-agent-1/eth0] 192.168.97.2:40001 -> " in line for line in lines)
        app.main.packet_pane.filter_text = "agent-1 cni0"
        await pilot.pause()
        shown = app.main.packet_pane.drawn_text
        assert shown and all("[k3d-demo-agent-1/cni0]" in line for line in shown)


async def test_w_writes_the_buffered_packets_to_pcapng(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PCAP_DIR_ENV, str(tmp_path))
    app = make_app(RawFramesSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        held = len(app.main.packet_pane.packets)
        await pilot.press("w")
        await settle(app, pilot)
        (written,) = tmp_path.glob("svcwatch-*.pcapng")
        messages = [n.message for n in app._notifications]
        assert f"wrote {held} packets to {written}" in messages
    assert held == 13  # the happy probe: 7 packets; the refused one: 3 SYNs, 3 RSTs
    if shutil.which("tshark") is None:
        pytest.skip("tshark (Debian package tshark) not installed: file written, not opened")
    rows = tshark(written, "-T", "fields", "-e", "frame.interface_name", "-e", "tcp.flags.reset")
    assert len(rows) == held
    assert {name for name, _ in rows} == {"eth0", "cni0", "veth0829e839"}
    assert sum(1 for _, reset in rows if reset in ("1", "True")) == 3  # RST back on each hop


async def test_w_with_nothing_captured_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PCAP_DIR_ENV, str(tmp_path))
    app = make_app()  # the plain FakeSession's packets carry no raw bytes
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("w")
        await settle(app, pilot)
        assert not list(tmp_path.iterdir())
        assert any("nothing written" in n.message for n in app._notifications)


async def test_m_on_a_cluster_says_the_mode_switch_needs_the_lab() -> None:
    """`m` swaps kube-proxy's mode only on a lab (tests/lab/test_tmux_e2e.py presses it there);
    a cluster's kube-proxy is not svcwatch's to reconfigure."""
    app = make_app(NftablesSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = chain_text(app)
        await pilot.press("m")
        await settle(app, pilot)
        assert [n.message for n in app._notifications] == [
            "switching kube-proxy's mode needs the lab"
        ]
        assert chain_text(app) == before
        assert not any(c.title == "Proxy mode" for c in app.get_system_commands(app.screen))
