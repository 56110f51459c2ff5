"""The node agent pod on a kmock API server: pinned, privileged, labelled, and deleted again."""

from __future__ import annotations

import pytest

from svcwatch.cluster.agent import agent_pod_name, delete_agents, start_agent
from svcwatch.model.errors import SetupError
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import MockCluster

pytestmark = pytest.mark.cluster
cluster = kmock_cluster.cluster  # the per-test kmock server fixture


def run_container(cluster: MockCluster, name: str) -> None:
    """Play the kubelet: the agent's container is running."""
    cluster.api().merge_patch(
        "Pod",
        "default",
        name,
        {
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "agent", "state": {"running": {}}}],
            }
        },
    )


def test_agent_pod_is_pinned_privileged_labelled_and_deleted(cluster: MockCluster) -> None:
    name = agent_pod_name("k3d-demo-agent-1")
    lines: list[str] = []

    def show(line: str) -> None:
        lines.append(line)
        if line.startswith("waiting for node agent"):
            run_container(cluster, name)

    started = start_agent(
        cluster.api(), "default", "k3d-demo-agent-1", "nicolaka/netshoot:v0.13", show
    )

    assert started == "svcwatch-agent-k3d-demo-agent-1"
    (create,) = cluster.requests("POST", "/api/v1/namespaces/default/pods")
    pod = create.data
    assert pod["spec"]["nodeName"] == "k3d-demo-agent-1"
    assert pod["spec"]["hostNetwork"] is True
    container = pod["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": True}
    assert container["image"] == "nicolaka/netshoot:v0.13"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "svcwatch"
    assert (
        lines[0] == "started node agent svcwatch-agent-k3d-demo-agent-1 on k3d-demo-agent-1 "
        "(nicolaka/netshoot:v0.13)"
    )

    assert delete_agents(cluster.api(), "default") == [name]
    (delete,) = cluster.requests("DELETE", "/pods/")
    assert delete.url.path.endswith(f"/pods/{name}")
    assert cluster.stored("pods", "default", name) is None


def test_an_image_that_cannot_be_pulled_is_one_line_naming_the_flag(cluster: MockCluster) -> None:
    name = agent_pod_name("node-1")

    def fail_pull(line: str) -> None:
        if line.startswith("started"):
            cluster.api().merge_patch(
                "Pod",
                "default",
                name,
                {
                    "status": {
                        "phase": "Pending",
                        "containerStatuses": [
                            {"name": "agent", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
                        ],
                    }
                },
            )

    with pytest.raises(
        SetupError, match=r"cannot run \(ImagePullBackOff, image no/such\): pass --agent-image"
    ):
        start_agent(cluster.api(), "default", "node-1", "no/such", fail_pull)


def test_delete_agents_leaves_other_pods_alone(cluster: MockCluster) -> None:
    kube = cluster.api()
    kube.create(
        "Pod",
        "default",
        {
            "metadata": {"name": "socat-1", "labels": {"app": "socat"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    assert delete_agents(kube, "default") == []
    assert cluster.stored("pods", "default", "socat-1") is not None
