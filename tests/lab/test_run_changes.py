"""A slice changed by another process while `svcwatch run` streams: slice, rules, filter, timings.

`svcwatch lab apply -f` and `svcwatch lab scenario` only write the lab's object store; the running
`svcwatch run` holds the controller lease, sees the write through its watcher and carries it
through in kube-proxy's order. The stream must show it in that order, with sync timings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.lab.stream_helpers import Lab, lab  # noqa: F401  (the fixture)

pytestmark = pytest.mark.lab

WRONG_PORT_SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: socat
  namespace: default
  labels:
    kubernetes.io/service-name: socat
addressType: IPv4
endpoints:
- addresses: [10.42.0.142]
  conditions: {ready: true}
ports:
- name: ""
  port: 12346
  protocol: TCP
"""
CHANGE_KINDS = ("endpointslice", "iptables", "capture-started")


def stream_with_changes(
    lab: Lab,  # noqa: F811
    tmp_path: Path,
    sync_delay: float,
) -> list[dict[str, Any]]:
    """Run; once a probe succeeds `lab apply` the wrong port, then `lab scenario happy`."""
    slice_file = tmp_path / "wrong-port.yaml"
    slice_file.write_text(WRONG_PORT_SLICE)
    changes = [
        lab.argv("lab", "apply", "-f", str(slice_file), "--name", lab.name),
        lab.argv("lab", "scenario", "happy", "--name", lab.name),
    ]
    argv = lab.argv(
        *lab.stream_args("-d", "7", "--interval", "0.3", "--sync-delay", str(sync_delay))
    )
    events: list[dict[str, Any]] = []
    with subprocess.Popen(argv, env=lab.env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append(json.loads(line))
            oks = sum(e["kind"] == "echo-ok" for e in events)
            refused = sum(e.get("error") == "connection refused" for e in events)
            if changes and (oks == 1 if len(changes) == 2 else refused == 1):
                done = subprocess.run(
                    changes.pop(0), env=lab.env, capture_output=True, text=True, timeout=30
                )
                assert done.returncode == 0, done.stderr
        assert proc.wait(timeout=30) == 0
    assert not changes, "the stream ended before both changes were made"
    return events


def test_lab_apply_from_another_process_flows_slice_rules_filter_in_order(
    lab: Lab,  # noqa: F811
    tmp_path: Path,
) -> None:
    events = stream_with_changes(lab, tmp_path, sync_delay=0.3)
    modified = [
        i
        for i, e in enumerate(events)
        if e["kind"] == "endpointslice" and e["change"] == "MODIFIED"
    ]
    assert len(modified) == 2
    first, second = modified

    to_wrong_port = [e for e in events[first:second] if e["kind"] in CHANGE_KINDS]
    assert tuple(e["kind"] for e in to_wrong_port) == CHANGE_KINDS
    slice_event, rules, capture = to_wrong_port
    assert any("12346" in line for line in slice_event["diff"])
    assert slice_event["scenario"] == "custom"  # the user's own slice, no longer "happy"
    assert "KUBE-SEP-XVRNL33HWWUQHJC7" in rules["added"]  # the blog post's wrong-port chain
    assert "((net 10.42.0.0/24) and port 12346)" in capture["bpf"]
    # --sync-delay holds the rules back after the slice is seen, as kube-proxy's minSyncPeriod does.
    assert rules["ts"] - slice_event["ts"] >= 0.3

    timings = [
        e
        for e in events[first:second]
        if e["kind"] == "sync" and e["resource_version"] == slice_event["resource_version"]
    ]
    assert timings[0]["rules_at"] is not None and timings[0]["effect_at"] is None
    closed = next(t for t in timings if t["effect_at"] is not None)
    assert closed["written_at"] <= closed["rules_at"] <= closed["effect_at"]
    assert any(e["flags"] == "ACK,RST" for e in events[first:second] if e["kind"] == "tcp-packet")

    back_to_happy = [e for e in events[second:] if e["kind"] in CHANGE_KINDS]
    assert tuple(e["kind"] for e in back_to_happy[:3]) == CHANGE_KINDS
    assert events[second]["scenario"] == "happy"
    assert any(e["kind"] == "echo-ok" for e in events[second:])
