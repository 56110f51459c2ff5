"""A whole ClusterSession over the exec API: kmock behind the conformant pods/exec server, the node
agent's real commands (tcpdump, the rules read, ip) run by that server inside a throw-away "node"
namespace, ExecTransport and NodeAgent unmodified. Needs root for the namespace."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import kmock_cluster
import pytest
from kmock_cluster import MockCluster, kubelet_for_agents, wait_for
from session_helpers import echo_port, node_ns, seed_demo

from svcwatch.model.events import CaptureStarted, Notice, RulesSynced
from svcwatch.session.cluster import ClusterSession
from svcwatch.session.settings import ClusterSettings, ProbeFlags
from svcwatch.sinks import CollectingSink

pytestmark = [pytest.mark.cluster, pytest.mark.lab]
cluster = kmock_cluster.cluster  # the per-test kmock server fixture
__all__ = ["echo_port", "node_ns"]  # fixtures
SWITCHES = ("wrong-port", "wrong-ip", "mixed", "not-ready", "empty", "happy")
AGENT = "svcwatch-agent-k3s-node"


@pytest.fixture
def thread_crashes() -> Iterator[list[str]]:
    """Every exception that escapes a thread while the test runs."""
    crashes: list[str] = []
    previous = threading.excepthook

    def hook(args: Any) -> None:
        crashes.append(f"{args.thread.name if args.thread else '?'}: {args.exc_value!r}")

    threading.excepthook = hook
    yield crashes
    threading.excepthook = previous


def exec_session(cluster: MockCluster, node: str, echo_port: int) -> ClusterSession:
    """The session as `svcwatch --cluster` makes it (ExecTransport), the commands run in `node`."""
    assert cluster.exec_api is not None
    cluster.exec_api.runner = lambda _ns, _pod, argv: ["ip", "netns", "exec", node, *argv]
    return ClusterSession(
        ClusterSettings(
            kubeconfig=str(cluster.kubeconfig),
            probes=ProbeFlags(probe_target=f"127.0.0.1:{echo_port}", interval=0.2),
        )
    )


def troubles(sink: CollectingSink) -> list[str]:
    return [
        f"{e.kind}: {e.message}"
        for e in sink.snapshot()
        if isinstance(e, Notice) and e.kind in ("warning", "error")
    ]


@pytest.mark.slow
def test_thirty_switches_over_slow_exec_upgrades(
    cluster: MockCluster, node_ns: str, echo_port: int, thread_crashes: list[str]
) -> None:
    """30 scenario keys at random gaps while every exec upgrade takes 50-100 ms: no failed call,
    the slice restored, the agent pod gone, no thread died."""
    original = seed_demo(cluster)
    assert cluster.exec_api is not None
    cluster.exec_api.upgrade_delay = (0.05, 0.1)
    stop_kubelet = threading.Event()
    threading.Thread(target=kubelet_for_agents, args=(cluster, stop_kubelet), daemon=True).start()
    session = exec_session(cluster, node_ns, echo_port)
    sink = CollectingSink()
    shuffle = random.Random(12)
    try:
        session.start(sink)
        wait_for(lambda: any(isinstance(e, RulesSynced) for e in sink.snapshot()), "the rules")
        for _ in range(30):
            session.request_scenario(shuffle.choice(SWITCHES))
            time.sleep(shuffle.uniform(0.02, 0.6))
        session.request_scenario("happy")
    finally:
        session.stop()
        stop_kubelet.set()

    assert troubles(sink) == []
    assert thread_crashes == []
    assert cluster.stored("endpointslices", "default", "socat") == original
    assert cluster.stored("pods", "default", AGENT) is None
    started = [e for e in sink.snapshot() if isinstance(e, CaptureStarted)]
    assert len(started) >= 5  # the capture followed the slice
    assert all(r.status is not None or r.client_closed for r in cluster.exec_api.execs)
    assert len(cluster.exec_api.execs) >= 2 * len(started)  # ip -o link + tcpdump per capture


def test_a_dropped_capture_is_a_notice_and_comes_back(
    cluster: MockCluster, node_ns: str, echo_port: int, thread_crashes: list[str]
) -> None:
    seed_demo(cluster)
    stop_kubelet = threading.Event()
    threading.Thread(target=kubelet_for_agents, args=(cluster, stop_kubelet), daemon=True).start()
    session = exec_session(cluster, node_ns, echo_port)
    sink = CollectingSink()
    api = cluster.exec_api
    assert api is not None

    def captures() -> int:
        return sum(isinstance(e, CaptureStarted) for e in sink.snapshot())

    try:
        session.start(sink)
        wait_for(lambda: captures() == 1, "the capture")
        dropped = []
        cluster.on_loop(lambda _h: dropped.append(api.abort(lambda r: r.argv[0] == "tcpdump")))
        assert dropped == [1]
        wait_for(lambda: captures() == 2, "the capture restarted")
        session.request_scenario("wrong-port")  # a stop on a slice change: silent
        wait_for(lambda: captures() == 3, "the capture re-filtered")
    finally:
        session.stop()
        stop_kubelet.set()
    said = troubles(sink)
    assert len(said) == 1, said
    assert said[0].startswith("warning: capture on k3s-node dropped (exec stream on node k3s-node")
    assert said[0].endswith("restarting in 1s")
    assert any(
        isinstance(e, Notice) and e.message == "capture on k3s-node restarted"
        for e in sink.snapshot()
    )
    assert thread_crashes == []
