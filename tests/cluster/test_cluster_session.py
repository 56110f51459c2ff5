"""ClusterSession end to end on this machine: kmock as the API server, kopf watching it, and the
node agent's real commands (tcpdump, iptables-save, ip) run in a throw-away "node" namespace
through LocalTransport instead of the exec API. Needs root for the namespace."""

from __future__ import annotations

import pytest

from svcwatch.model.events import CaptureStarted, ProbeEvent, RulesSynced, SliceChanged
from svcwatch.session.cluster import ClusterSession
from svcwatch.session.settings import ClusterSettings, ProbeFlags
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import AgentKubelet, MockCluster, wait_for
from tests.cluster.session_helpers import echo_port, node_ns, seed_demo
from tests.helpers.local_transport import LocalTransport
from tests.helpers.sinks import CollectingSink

pytestmark = [pytest.mark.cluster, pytest.mark.lab]
cluster = kmock_cluster.cluster  # the per-test kmock server fixture
__all__ = ["echo_port", "node_ns"]  # fixtures


def test_session_watches_breaks_and_restores(
    cluster: MockCluster, node_ns: str, echo_port: int
) -> None:
    original = seed_demo(cluster)
    kubelet = AgentKubelet(cluster)
    session = ClusterSession(
        ClusterSettings(
            kubeconfig=str(cluster.kubeconfig),
            probes=ProbeFlags(probe_target=f"127.0.0.1:{echo_port}", interval=0.2),
            transport_factory=lambda *_: LocalTransport(node_ns),
        )
    )
    sink = CollectingSink()
    try:
        session.start(sink)
        wait_for(
            lambda: any(isinstance(e, SliceChanged) for e in sink.snapshot()),
            "the slice's first state",
        )
        wait_for(lambda: any(isinstance(e, RulesSynced) for e in sink.snapshot()), "the rules read")
        wait_for(
            lambda: any(isinstance(e, ProbeEvent) and e.ok for e in sink.snapshot()), "an echo"
        )
        session.request_scenario("wrong-port")
        wait_for(
            lambda: any(
                isinstance(e, SliceChanged) and e.change == "MODIFIED" for e in sink.snapshot()
            ),
            "the slice change come back through the watch",
        )
        assert session.current_slice().ports[0].port == 12346
        assert session.current_scenario() == "wrong-port"
    finally:
        session.stop()
        kubelet.stop()

    events = sink.snapshot()
    synced = next(e for e in events if isinstance(e, RulesSynced))
    assert "KUBE-SVC-6GHM6NOKDRAB634Q" in synced.added and synced.proxy_backend.startswith(
        "iptables"
    )
    assert "KUBE-SVC-NPX46M4PTMTKRN6Y" not in synced.added  # kubernetes.default's chain is not ours
    started = [e for e in events if isinstance(e, CaptureStarted)]
    assert "port 12346" in started[-1].bpf  # re-filtered for the broken slice
    patches = cluster.requests("PATCH", "/endpointslices/")
    assert {r.url.path.rsplit("/", 1)[-1] for r in patches} == {"socat"}
    assert cluster.stored("endpointslices", "default", "socat") == original  # restored on stop
    assert cluster.stored("pods", "default", "svcwatch-agent-k3s-node") is None  # agent deleted
    assert [e for e in events if getattr(e, "kind", "") == "error"] == []
