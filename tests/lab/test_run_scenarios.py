"""`svcwatch run --json` on a real lab shows what the blog post shows, scenario by scenario.

Each test runs the CLI as a user would (a subprocess, as root, with its own lab name and state
directory) and asserts on the JSON Lines it printed. The lab is torn down by the run itself; the
fixture tears it down again whatever happened and checks nothing of it is left.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from svcwatch import netns
from tests.lab import stream_helpers
from tests.lab.stream_helpers import (
    BRIDGE,
    CLIENT,
    NODE,
    NODE_PORT,
    POD,
    POD_PORT,
    WRONG_IP,
    Lab,
    assert_refused_by_a_reset_from_the_pod,
    assert_rules_in_mode,
    connection,
    hop,
    icmp,
    probes,
    tcp,
)

pytestmark = pytest.mark.lab

lab = stream_helpers.lab  # a unique lab name, torn down whatever happens
mode_lab = stream_helpers.mode_lab  # the same, once per kube-proxy mode (iptables, nftables)


def test_happy_path_crosses_eth0_cni0_veth_and_back(mode_lab: Lab) -> None:
    lab = mode_lab
    events = lab.run_json("-s", "happy", "-d", "2.5")
    ok = next(p for p in probes(events) if p["kind"] == "echo-ok")
    assert ok["nbytes"] == 5 and (ok["src"], ok["dst"], ok["dport"]) == (CLIENT, NODE, NODE_PORT)
    p = ok["sport"]
    frames = connection(events, p)
    q = frames[1]["sport"]
    veth = lab.echo_veth
    assert [hop(e) for e in frames[:6]] == [
        ("eth0", CLIENT, p, NODE, NODE_PORT, "SYN"),
        ("cni0", BRIDGE, q, POD, POD_PORT, "SYN"),
        (veth, BRIDGE, q, POD, POD_PORT, "SYN"),
        (veth, POD, POD_PORT, BRIDGE, q, "SYN,ACK"),
        ("cni0", POD, POD_PORT, CLIENT, p, "SYN,ACK"),
        ("eth0", NODE, NODE_PORT, CLIENT, p, "SYN,ACK"),
    ]
    assert frames[0]["text"] == f"[eth0] {CLIENT}:{p} -> {NODE}:{NODE_PORT} SYN"
    assert all(p["kind"] == "echo-ok" for p in probes(events))
    assert_rules_in_mode(lab, events)


def test_wrong_port_is_a_reset_from_the_pod_and_connection_refused(mode_lab: Lab) -> None:
    lab = mode_lab
    events = lab.run_json("-s", "wrong-port", "-d", "2.5")
    assert_refused_by_a_reset_from_the_pod(lab, events, 12346)
    assert_rules_in_mode(lab, events)
    capture = next(e for e in events if e["kind"] == "capture-started")
    assert "((net 10.42.0.0/24) and port 12346)" in capture["bpf"]


def test_wrong_ip_asks_every_veth_who_has_and_nobody_answers(mode_lab: Lab) -> None:
    lab = mode_lab
    events = lab.run_json("-s", "wrong-ip", "-d", "5")
    who_has = [e for e in events if e["kind"] == "arp-request" and e["dst"] == WRONG_IP]
    assert {e["text"] for e in who_has} >= {
        f"[{i}] arp who-has {WRONG_IP} tell {BRIDGE}" for i in {"cni0"} | lab.pod_veths
    }
    assert not [e for e in events if e["kind"] == "arp-reply" and e["src"] == WRONG_IP]
    assert not [e for e in tcp(events) if e["iface"] != "eth0"], "no SYN may reach any pod"
    outcomes = {(p["kind"], p["error"]) for p in probes(events)}
    assert outcomes and outcomes <= {("io-error", "i/o timeout"), ("io-error", "no route to host")}
    # What the blog post does not show: once ARP gives up (~3 s), the node answers the client's SYNs
    # with ICMP host unreachable, quoting them; the capture filter lets these through.
    unreachable = icmp(events, "host unreachable")
    sent_from = {e["sport"] for e in tcp(events) if e["iface"] == "eth0" and e["src"] == CLIENT}
    assert unreachable and {(e["iface"], e["src"], e["dst"]) for e in unreachable} == {
        ("eth0", NODE, CLIENT)
    }
    assert {e["sport"] for e in unreachable} <= sent_from


def test_mixed_shows_both_patterns_within_twenty_probes(mode_lab: Lab) -> None:
    lab = mode_lab
    events = lab.run_json("-s", "mixed", "-d", "5", "--interval", "0.2", "--timeout", "1")
    first = probes(events)[:20]
    assert {p["kind"] for p in first} == {"echo-ok", "io-error"}
    assert any(e["kind"] == "arp-request" and e["dst"] == WRONG_IP for e in events)
    assert any(e["iface"] == lab.echo_veth and e["flags"] == "SYN" for e in tcp(events))
    capture = next(e for e in events if e["kind"] == "capture-started")
    assert f"(arp and (host {WRONG_IP} or host {POD}))" in capture["bpf"]
    assert_rules_in_mode(lab, events)


def test_plain_output_is_the_seeds_line_format(lab: Lab) -> None:
    done = lab.run("run", "--plain", "--name", lab.name, "--pods", "0", "-d", "1.5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("+")
        and '  [pktcap]           capture-started  default/socat bpf="(ip and ((host '
        "10.43.161.224 and port 12345) or ((net 10.42.0.0/24) and port 12345) or "
        "((host 192.168.97.3) and port 31234))) or (arp and (host 10.42.0.142))"
        in line
        for line in lines
    )
    assert any(
        f"[pktcap]           tcp-packet  [eth0] {CLIENT}:" in line
        and line.endswith(f" -> {NODE}:{NODE_PORT} SYN")
        for line in lines
    )
    assert any("[tcp-probe]        echo-ok  " in line and line.endswith("(5B)") for line in lines)
    # The dashboard's diagnosis line, as a stream line whenever it changes.
    assert any("  [diagnosis]        diagnosis  ok: Healthy: " in line for line in lines)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_the_stream_and_tears_the_lab_down(lab: Lab, sig: int) -> None:
    argv = lab.argv("run", "--json", "--name", lab.name, "--pods", "0")
    with subprocess.Popen(argv, env=lab.env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line)["kind"] == "echo-ok":
                proc.send_signal(sig)
                break
        rest = [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=30) == 0
    assert rest[-1]["message"] == f"lab {lab.name} torn down"
    assert not [n for n in netns.list_names() if lab.spec.netns_pattern().match(n)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nonsense"], "unknown scenario 'nonsense'"),
        (["--probe", "192.168.97.3"], "--probe: expected HOST:PORT"),
    ],
)
def test_bad_flags_are_one_line_errors_before_anything_is_built(
    lab: Lab, args: list[str], message: str
) -> None:
    done = lab.run("run", "--name", lab.name, *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("svcwatch: error: ") and message in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not lab.state.exists() or not any(lab.state.rglob("*.yaml"))
