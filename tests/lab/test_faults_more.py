"""Faults 5-8 on a real lab: not-ready, empty, pod-down, rollout-race, and the preStop-style fix.

Like test_run_scenarios.py (the same stream_helpers fixture and helpers), each test runs the CLI
as a user would and asserts on the JSON Lines it printed and on `svcwatch lab status --json`. The
rollout race needs the change to land while the stream runs, so a second process switches the
scenario (`svcwatch lab scenario rollout-race`), as a presenter's other terminal would. The
preStop replay (the dashboard's `p` key) runs in-process on a LabSession.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from svcwatch import netns
from svcwatch.model.events import PacketEvent, ProbeEvent, RulesSynced, to_dict
from svcwatch.session.lab import LabSession
from svcwatch.session.settings import LabSettings, ProbeFlags
from tests.helpers.sinks import CollectingSink
from tests.lab import stream_helpers
from tests.lab.stream_helpers import (
    CLIENT,
    IDLE_PODS,
    NODE,
    POD,
    POD_PORT,
    Event,
    Lab,
    assert_refused_by_a_reset_from_the_pod,
    icmp,
    probes,
    tcp,
)

pytestmark = pytest.mark.lab

lab = stream_helpers.lab  # a unique lab name, torn down whatever happens
mode_lab = stream_helpers.mode_lab  # the same, once per kube-proxy mode (iptables, nftables)


@pytest.mark.parametrize("scenario", ["not-ready", "empty"])
def test_no_usable_endpoint_is_rejected_by_the_filter_rule(mode_lab: Lab, scenario: str) -> None:
    lab = mode_lab
    events = lab.run_json("-s", scenario, "-d", "2.5", "--keep")
    outcomes = {(p["kind"], p["phase"], p["error"]) for p in probes(events)}
    assert outcomes == {("io-error", "connect", "connection refused")}
    assert not [e for e in tcp(events) if e["iface"] != "eth0"], "no SYN may reach cni0 or a veth"
    # REJECT's answer is the node's ICMP port unreachable, which the client's kernel turns into
    # ECONNREFUSED: no pod is involved at all.
    rejected = icmp(events, "port unreachable")
    sent = {e["sport"] for e in tcp(events) if e["iface"] == "eth0" and e["flags"] == "SYN"}
    assert rejected and {(e["iface"], e["src"], e["dst"]) for e in rejected} == {
        ("eth0", NODE, CLIENT)
    }
    assert {e["sport"] for e in rejected} <= sent
    chain = [r["line"] for r in lab.status()["chain"]]
    if lab.proxy_mode == "nftables":  # a no-endpoint-services element whose verdict rejects
        assert any(
            line.startswith("no-endpoint-services: ") and "goto reject-chain" in line
            for line in chain
        ), chain
        assert not any("dnat" in line for line in chain)
    else:
        assert any("has no endpoints" in line and "-j REJECT" in line for line in chain), chain
        assert not any("DNAT" in line for line in chain)


def test_pod_down_is_a_reset_from_the_pod_itself(mode_lab: Lab) -> None:
    lab = mode_lab
    events = lab.run_json("-s", "pod-down", "-d", "2.5", "--keep")
    assert_refused_by_a_reset_from_the_pod(lab, events, POD_PORT)
    echo = next(pod for pod in lab.status()["pods"] if pod["echo"])
    assert (echo["ip"], echo["port"], echo["listening"]) == (POD, POD_PORT, False)


def test_rollout_race_loses_connections_until_the_rules_sync(mode_lab: Lab) -> None:
    lab = mode_lab
    argv = lab.argv(
        *lab.stream_args("--sync-delay", "1", "--interval", "0.2", "--timeout", "1", "-d", "6")
    )
    events: list[Event] = []
    with subprocess.Popen(argv, env=lab.env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["kind"] == "echo-ok":
                break
        switched = lab.run("lab", "scenario", "rollout-race", "--name", lab.name)
        assert switched.returncode == 0, switched.stderr
        events += [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=60) == 0
    change = next(
        e for e in events if e["kind"] == "endpointslice" and e["scenario"] == "rollout-race"
    )
    new_ip = change["manifest"]["endpoints"][0]["addresses"][0]
    assert new_ip != POD
    synced = next(e for e in events if e["type"] == "RulesSynced" and e["ts"] > change["ts"])
    assert synced["ts"] - change["ts"] >= 1.0  # the rules lag the slice by --sync-delay
    window = [e for e in events if change["ts"] <= e["ts"] < synced["ts"]]
    # In the window the rule still DNATs to the old IP, whose pod is gone. While the node's
    # neighbour entry for it is still warm, the bridge floods the SYNs to every veth; once it
    # is stale, the node asks who-has instead. Either way nobody answers.
    flooded = [e for e in tcp(window) if e["iface"] == "cni0" and e["dst"] == POD]
    asked = [e for e in window if e["kind"] == "arp-request" and e["dst"] == POD]
    assert flooded or asked
    assert all(e["flags"] == "SYN" for e in flooded)
    assert not [e for e in tcp(events) if e["src"] == POD and e["ts"] > change["ts"]]
    assert not [
        e for e in events if e["kind"] == "arp-reply" and e["src"] == POD and e["ts"] > change["ts"]
    ]
    lost = [p for p in probes(events) if p["kind"] == "io-error"]
    assert lost and {p["error"] for p in lost} == {"i/o timeout"}
    late = [(p["started"], p["ts"]) for p in lost if p["started"] >= synced["ts"]]
    assert not late, (synced, late)  # only connections before the sync
    after = [p for p in probes(events) if p["started"] is not None and p["started"] > synced["ts"]]
    assert after and all(p["kind"] == "echo-ok" for p in after)
    assert any(
        e["iface"] == "cni0" and e["dst"] == new_ip and e["flags"] == "SYN" for e in tcp(events)
    )


def _wait_for(sink: CollectingSink, predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(predicate(e) for e in sink.snapshot()):
            return
        time.sleep(0.05)
    raise AssertionError("the lab did not get there in time")


def test_prestop_replay_loses_no_connection(tmp_path: Path) -> None:
    name = f"t{secrets.token_hex(3)}"
    session = LabSession(
        LabSettings(
            lab_name=name,
            pods=IDLE_PODS,
            sync_delay=1.0,
            probes=ProbeFlags(interval=0.2, timeout=1.0),
            state_root=tmp_path,
        )
    )
    sink = CollectingSink()
    try:
        session.start(sink)
        _wait_for(sink, lambda e: isinstance(e, ProbeEvent) and e.ok, 20)
        old = session._lab().echo_pod
        session.replay_rollout_with_prestop()
        new = session._lab().echo_pod
        mark = time.time()
        _wait_for(sink, lambda e: isinstance(e, ProbeEvent) and e.ok and e.ts > mark + 1, 20)
        assert [p.name for p in session._lab().pods if p.ip == old.ip] == []
        assert not netns.exists(old.netns)
    finally:
        session.stop()
    events = [to_dict(e) for e in sink.snapshot()]
    assert new.ip != old.ip and new.listening
    found = [e for e in sink.snapshot() if isinstance(e, ProbeEvent)]
    assert len(found) >= 10 and all(p.ok for p in found), [p.text() for p in found if not p.ok]
    synced = [e for e in sink.snapshot() if isinstance(e, RulesSynced) and e.added]
    assert synced, "the rules moved to the new pod"
    to_new = [e for e in tcp(events) if e["iface"] == "cni0" and e["dst"] == new.ip]
    assert to_new and any(
        isinstance(e, PacketEvent) and e.src == new.ip and e.flags == "SYN,ACK"
        for e in sink.snapshot()
    )
    assert not [n for n in netns.list_names() if n.startswith(f"svcwatch-{name}-")]
