"""`cluster up` / `cluster down` on a kmock API server: what is created, filled, removed."""

from __future__ import annotations

import pytest

from svcwatch.cluster.demo import APP_MANAGED_BY, demo_documents, down, up
from svcwatch.model.errors import SetupError
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import MockCluster, make_pod, make_ready

pytestmark = pytest.mark.cluster
cluster = kmock_cluster.cluster  # the per-test kmock server fixture


def test_up_creates_the_demo_and_fills_the_slice_once_the_pod_is_ready(
    cluster: MockCluster,
) -> None:
    kube = cluster.api()
    make_pod(kube, "default", "socat-7d9f", {"app": "socat"})  # scheduled, not Ready yet
    progress: list[str] = []

    def show(line: str) -> None:
        progress.append(line)
        if line.startswith("waiting for a Ready pod"):
            make_ready(kube, "default", "socat-7d9f", "10.42.0.17")  # the kubelet catches up

    result = up(cluster.api(), demo_documents(None, None), progress=show, timeout=30)

    created = [(r.url.path, r.data["metadata"]["name"]) for r in cluster.requests("POST")]
    assert ("/apis/apps/v1/namespaces/default/deployments", "socat") in created
    assert ("/api/v1/namespaces/default/services", "socat") in created
    assert ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "socat") in created
    assert any("socat-7d9f: Pending" in line for line in progress)
    slice_ = cluster.stored("endpointslices", "default", "socat")
    assert slice_ is not None
    assert [e["addresses"] for e in slice_["endpoints"]] == [["10.42.0.17"]]
    assert slice_["endpoints"][0]["nodeName"] == "node-1"
    assert slice_["endpoints"][0]["targetRef"]["name"] == "socat-7d9f"
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "svcwatch"
    assert (result.pod, result.pod_ip, result.node) == ("socat-7d9f", "10.42.0.17", "node-1")
    assert progress[-1].startswith("filled EndpointSlice default/socat with 10.42.0.17")


def test_up_gives_up_with_one_line_naming_the_pod_state(cluster: MockCluster) -> None:
    make_pod(cluster.api(), "default", "socat-1", {"app": "socat"})
    with pytest.raises(
        SetupError, match=r"no Ready pod with app=socat in default after 1s \(socat-1: Pending\)"
    ):
        up(cluster.api(), demo_documents(None, None), progress=lambda _: None, timeout=1)


def test_up_reuses_existing_demo_objects(cluster: MockCluster) -> None:
    make_pod(cluster.api(), "default", "socat-1", {"app": "socat"}, ip="10.42.0.5")
    up(cluster.api(), demo_documents(None, None), progress=lambda _: None)
    lines: list[str] = []
    second = up(cluster.api(), demo_documents(None, None), progress=lines.append)
    assert second.created == ()
    assert "Service default/socat already exists: reusing it" in lines


def test_up_refuses_a_foreign_slice_of_the_same_name(cluster: MockCluster) -> None:
    kube = cluster.api()
    foreign = "endpointslice-controller.k8s.io"
    kmock_cluster.make_slice(kube, "socat", foreign, [{"addresses": ["10.42.0.99"]}])
    with pytest.raises(
        SetupError, match="managed by 'endpointslice-controller.k8s.io', not svcwatch"
    ):
        up(kube, demo_documents(None, None), progress=lambda _: None)
    assert cluster.requests("PATCH", "/endpointslices/") == []


def test_kube_system_is_refused_before_any_request(cluster: MockCluster) -> None:
    with pytest.raises(SetupError, match="never touches namespace kube-system"):
        demo_documents(None, "kube-system")
    assert cluster.requests("POST") == []


def test_down_removes_what_svcwatch_created_and_keeps_the_rest(cluster: MockCluster) -> None:
    kube = cluster.api()
    make_pod(kube, "default", "socat-1", {"app": "socat"}, ip="10.42.0.5")
    docs = demo_documents(None, None)
    up(kube, docs, progress=lambda _: None)
    kube.merge_patch(
        "Deployment", "default", "socat", {"metadata": {"labels": {APP_MANAGED_BY: "helm"}}}
    )
    kube.create(
        "Pod",
        "default",
        {
            "metadata": {
                "name": "svcwatch-agent-node-1",
                "labels": {
                    "app.kubernetes.io/managed-by": "svcwatch",
                    "app.kubernetes.io/component": "node-agent",
                },
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "agent", "image": "x"}]},
        },
    )
    lines: list[str] = []

    removed = down(kube, docs, "kmock", progress=lines.append)

    assert sorted(removed) == ["EndpointSlice/socat", "Pod/svcwatch-agent-node-1", "Service/socat"]
    assert cluster.stored("deployments", "default", "socat") is not None
    assert "kept Deployment default/socat: svcwatch did not create it" in lines
    assert cluster.stored("services", "default", "socat") is None
    assert (
        cluster.stored("pods", "default", "socat-1") is not None
    )  # the Deployment's pod is not ours
