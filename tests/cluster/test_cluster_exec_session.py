"""A whole ClusterSession over the exec API: kmock behind the conformant pods/exec server, the node
agent's real commands (tcpdump, the rules read, ip) run by that server inside a throw-away "node"
namespace, ExecTransport and NodeAgent unmodified. Needs root for the namespace."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from svcwatch.model.errors import SetupError
from svcwatch.model.events import CaptureStarted, Notice, RulesSynced, SliceChanged
from svcwatch.session.cluster import ClusterSession
from svcwatch.session.settings import ClusterSettings, ProbeFlags
from tests.cluster import kmock_cluster
from tests.cluster.exec_server import make_tls
from tests.cluster.kmock_cluster import (
    AgentKubelet,
    MockCluster,
    running_cluster,
    set_pod_status,
    wait_for,
)
from tests.cluster.session_helpers import echo_port, node_ns, seed_demo
from tests.helpers.sinks import CollectingSink

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


def exec_session(
    cluster: MockCluster, node: str, echo_port: int, agent_namespace: str | None = None
) -> ClusterSession:
    """The session as `svcwatch --cluster` makes it (ExecTransport), the commands run in `node`."""
    assert cluster.exec_api is not None
    cluster.exec_api.runner = lambda _ns, _pod, argv: ["ip", "netns", "exec", node, *argv]
    return ClusterSession(
        ClusterSettings(
            kubeconfig=str(cluster.kubeconfig),
            probes=ProbeFlags(probe_target=f"127.0.0.1:{echo_port}", interval=0.2),
            agent_namespace=agent_namespace,
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
    kubelet = AgentKubelet(cluster)
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
        kubelet.stop()

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
    kubelet = AgentKubelet(cluster)
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
        kubelet.stop()
    said = troubles(sink)
    assert len(said) == 1, said
    assert said[0].startswith("warning: capture on k3s-node dropped (exec stream on node k3s-node")
    assert said[0].endswith("restarting in 1s")
    assert any(
        isinstance(e, Notice) and e.message == "capture on k3s-node restarted"
        for e in sink.snapshot()
    )
    assert thread_crashes == []


def test_an_agent_that_expires_is_made_anew(
    cluster: MockCluster, node_ns: str, echo_port: int, thread_crashes: list[str]
) -> None:
    """After its 4 hours the agent pod fails (DeadlineExceeded) and its exec streams end: the
    session replaces the pod and its capture comes back."""
    seed_demo(cluster)
    kubelet = AgentKubelet(cluster)
    session = exec_session(cluster, node_ns, echo_port)
    sink = CollectingSink()
    exec_api, kube = cluster.exec_api, cluster.api()
    assert exec_api is not None

    def said(text: str) -> bool:
        return any(isinstance(e, Notice) and text in e.message for e in sink.snapshot())

    try:
        session.start(sink)
        wait_for(lambda: said("started node agent"), "the agent")
        set_pod_status(kube, "default", AGENT, phase="Failed", reason="DeadlineExceeded")
        cluster.on_loop(lambda _h: exec_api.abort())
        wait_for(lambda: said("capture on k3s-node restarted"), "the capture back", seconds=30)
    finally:
        session.stop()
        kubelet.stop()
    assert said(f"replacing node agent {AGENT} on k3s-node (Failed: DeadlineExceeded)")
    assert kube.read_or_none("Pod", "default", AGENT) is None  # deleted on stop
    created = cluster.requests("POST", "/namespaces/default/pods")
    assert [r.data["metadata"]["name"] for r in created].count(AGENT) == 2  # made anew
    assert thread_crashes == []


def test_in_cluster_uses_the_pods_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node_ns: str, echo_port: int
) -> None:
    """--in-cluster: the token and CA of the ServiceAccount, the API server from the environment
    (HTTPS, no kubeconfig at all), for REST, exec and the watch alike."""
    tls = dataclasses.replace(make_tls(tmp_path / "pki"), client_cert_required=False)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("a-service-account-token")
    (account / "ca.crt").write_bytes(tls.ca.read_bytes())
    (account / "namespace").write_text("default")
    with running_cluster(tmp_path, monkeypatch, tls=tls) as mock:
        seed_demo(mock)
        port = mock.url.rsplit(":", 1)[1]
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        assert mock.exec_api is not None
        mock.exec_api.runner = lambda _ns, _pod, argv: ["ip", "netns", "exec", node_ns, *argv]
        session = ClusterSession(
            ClusterSettings(
                in_cluster=str(account),
                probes=ProbeFlags(probe_target=f"127.0.0.1:{echo_port}", interval=0.2),
            )
        )
        kubelet = AgentKubelet(mock)
        sink = CollectingSink()
        try:
            session.start(sink)
            wait_for(lambda: any(isinstance(e, RulesSynced) for e in sink.snapshot()), "rules")
            session.request_scenario("wrong-port")
            wait_for(
                lambda: any(
                    isinstance(e, SliceChanged) and e.change == "MODIFIED" for e in sink.snapshot()
                ),
                "the change back through the watch",
            )
        finally:
            session.stop()
            kubelet.stop()
        assert session.title.startswith("cluster in-cluster ")
        assert troubles(sink) == []
        tokens = {str(r.headers.get("Authorization", "")).lower() for r in mock.requests()}
        assert "bearer a-service-account-token" in tokens  # what the ServiceAccount says


def test_pod_security_refusal_and_agents_in_another_namespace(
    cluster: MockCluster, node_ns: str, echo_port: int
) -> None:
    """The demo's namespace enforces "baseline": the session says why the agent cannot run and
    what to do; with --agent-namespace the agents run there and are deleted there."""
    original = seed_demo(cluster)
    assert cluster.exec_api is not None
    cluster.exec_api.pod_security = {"default": "baseline"}
    refused = exec_session(cluster, node_ns, echo_port)
    try:
        with pytest.raises(SetupError, match=r'enforces the "baseline" level .* --agent-namespace'):
            refused.start(CollectingSink())
    finally:
        refused.stop()
    kubelet = AgentKubelet(cluster, namespace="svcwatch-agents")
    session = exec_session(cluster, node_ns, echo_port, agent_namespace="svcwatch-agents")
    sink = CollectingSink()
    try:
        session.start(sink)
        wait_for(lambda: any(isinstance(e, RulesSynced) for e in sink.snapshot()), "the rules")
        assert cluster.stored("pods", "svcwatch-agents", AGENT) is not None
    finally:
        session.stop()
        kubelet.stop()
    assert troubles(sink) == []
    assert cluster.stored("pods", "svcwatch-agents", AGENT) is None
    assert cluster.stored("endpointslices", "default", "socat") == original
    assert {r.namespace for r in cluster.exec_api.execs} == {"svcwatch-agents"}
