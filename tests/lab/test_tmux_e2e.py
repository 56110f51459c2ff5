"""The real program in a real terminal: tmux runs `svcwatch` on a real lab and we read the screen.

This is the one test that covers the whole path a speaker uses: click entry point, make_session,
LabSession (namespaces, iptables, capture, probes), the bridge and the panes, keys, and teardown.
It polls the terminal until the expected words appear (or a generous deadline passes) and never
asserts on how long anything took.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.tmux import DEADLINE, SESSION, Terminal, tmux_terminal

pytestmark = pytest.mark.lab

SVCWATCH = Path(sys.executable).with_name("svcwatch")


def lab_namespaces(lab: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"svcwatch-{lab}-")]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[Terminal, str, Path]]:
    yield from _dashboard(tmp_path)


@pytest.fixture
def nft_dashboard(tmp_path: Path) -> Iterator[tuple[Terminal, str, Path]]:
    """The dashboard on a lab whose kube-proxy runs in nftables mode."""
    yield from _dashboard(tmp_path, "--proxy-mode nftables --pods 1")


def _dashboard(tmp_path: Path, extra: str = "") -> Iterator[tuple[Terminal, str, Path]]:
    if not SVCWATCH.exists():
        pytest.skip(f"{SVCWATCH} is not installed")
    lab = "t" + secrets.token_hex(3)[:5]
    # COLUMNS/LINES inherited from a test runner would override the real tmux window size.
    env = (
        f"env -u COLUMNS -u LINES SVCWATCH_STATE_DIR={shlex.quote(str(tmp_path))} "
        "TERM=xterm-256color"
    )
    command = (
        f"{env} {SVCWATCH} --name {lab} --interval 0.5 {extra}; echo SVCWATCH-EXITED=$?; sleep 600"
    )
    try:
        with tmux_terminal(command) as terminal:
            yield terminal, lab, tmp_path
    finally:
        if lab_namespaces(lab):  # the test failed before `q`: tear down what it built
            subprocess.run(
                [str(SVCWATCH), "lab", "down", "--name", lab],
                capture_output=True,
                env={**os.environ, "SVCWATCH_STATE_DIR": str(tmp_path)},
                timeout=60,
            )
        assert lab_namespaces(lab) == []


def test_keys_2_and_3_show_refusal_and_timeout_and_q_tears_down(
    dashboard: tuple[Terminal, str, Path],
) -> None:
    terminal, lab, _state = dashboard
    terminal.wait_for("scenario: Happy path (1)", "Healthy:", "echo-ok")

    terminal.press("2")
    screen = terminal.wait_for(
        "scenario: Wrong port (2)", "answered with RST", "connection refused"
    )
    assert "ACK,RST" in screen
    assert "10.42.0.142:12346" in screen

    terminal.press("3")
    screen = terminal.wait_for("scenario: Wrong IP (3)", "i/o timeout", "arp who-has")
    assert "unanswered on cni0: no pod has that IP" in screen

    terminal.press("q")
    terminal.wait_for("SVCWATCH-EXITED=0")
    assert lab_namespaces(lab) == []


@pytest.mark.parametrize("sig", ["TERM", "HUP"])
def test_a_signal_ends_the_dashboard_like_q_and_tears_the_lab_down(
    dashboard: tuple[Terminal, str, Path], sig: str
) -> None:
    terminal, lab, _state = dashboard
    terminal.wait_for("scenario: Happy path (1)", "echo-ok")
    # The Python process itself, not the shell tmux started it from.
    pattern = f"^[^ ]*python[^ ]* {SVCWATCH} --name {lab}"
    pids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    assert pids, "the dashboard process was not found"
    subprocess.run(["kill", f"-{sig}", *pids], check=True)
    terminal.wait_for("SVCWATCH-EXITED=")
    assert lab_namespaces(lab) == []


def test_nftables_mode_shows_kube_proxys_table_and_m_swaps_to_iptables_and_back(
    nft_dashboard: tuple[Terminal, str, Path],
) -> None:
    """The chain pane reads `table ip kube-proxy` back: no counters, so connections seen in the
    capture; `m` swaps the rules to iptables (live counters) and back, the Service answering."""
    terminal, lab, _state = nft_dashboard
    screen = terminal.wait_for(
        "nftables (table ip kube-proxy)", "no counters", "service-ips", "Healthy:", "echo-ok"
    )
    assert "numgen" in screen or "100%" in screen
    terminal.wait_for("conns -> dnat 10.42.0.142:12345")
    terminal.press("2")  # the same break in nftables mode
    terminal.wait_for("scenario: Wrong port (2)", "connection refused", "10.42.0.142:12346")
    terminal.press("m")
    screen = terminal.wait_for(
        "iptables chain", "KUBE-SEP-", "kube-proxy mode nftables -> iptables"
    )
    assert "table ip kube-proxy" not in screen
    terminal.wait_for("connection refused", "pkts -> DNAT 10.42.0.142:12346")
    terminal.press("m")
    terminal.wait_for("nftables (table ip kube-proxy)", "kube-proxy mode iptables -> nftables")
    terminal.press("q")
    terminal.wait_for("SVCWATCH-EXITED=0")
    assert lab_namespaces(lab) == []


def test_nftables_good_and_bad_ip_counts_the_connections_sent_to_the_bad_ip(
    nft_dashboard: tuple[Terminal, str, Path],
) -> None:
    """Key 4 in nftables mode: SYNs DNATed to 10.42.0.143 wait on an ARP nobody answers and never
    reach cni0, yet the chain and slice panes count them for .143 instead of showing 0."""
    terminal, lab, _state = nft_dashboard
    terminal.wait_for("nftables (table ip kube-proxy)", "Healthy:", "echo-ok")
    terminal.press("4")
    terminal.wait_for("scenario: Good + bad IP (4)", "i/o timeout", "no pod has this IP")
    # Where QA saw "0 seen": 80x24, the chain pane showing each path first.
    terminal.tmux("resize-window", "-t", SESSION, "-x", "80", "-y", "24", check=True)
    chain = re.compile(r"(\d+) conns\s+\d+%.*DNAT 10\.42\.0\.143:12345")
    row = re.compile(r"10\.42\.0\.143 .*no pod has this IP.*?(\d+) \(\d+%\)")
    end = time.monotonic() + DEADLINE
    counts: list[int] = []
    while time.monotonic() < end:
        screen = terminal.screen()
        found = [chain.search(screen), row.search(screen)]
        counts = [int(m.group(1)) for m in found if m is not None]
        if len(counts) == 2 and min(counts) > 0:
            break
        time.sleep(0.2)
    assert len(counts) == 2 and min(counts) > 0, terminal.screen()  # chain pane, slice pane
    assert "seen" not in terminal.screen()
    terminal.press("q")
    terminal.wait_for("SVCWATCH-EXITED=0")
    assert lab_namespaces(lab) == []
