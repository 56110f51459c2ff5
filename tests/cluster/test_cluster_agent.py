"""The node agent pod on a kmock API server: pinned, privileged, labelled, and deleted again."""

from __future__ import annotations

import pytest

from svcwatch.cluster.agent import agent_pod_name, delete_agents, start_agent
from svcwatch.model.errors import SetupError
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import (
    MockCluster,
    run_agent_container,
    set_pod_status,
    start_agent_pod,
)

pytestmark = pytest.mark.cluster
cluster = kmock_cluster.cluster  # the per-test kmock server fixture


def run_container(cluster: MockCluster, name: str) -> None:
    """Play the kubelet: the agent's container is running."""
    run_agent_container(cluster.api(), name)


def test_agent_pod_is_pinned_privileged_labelled_and_deleted(cluster: MockCluster) -> None:
    name = agent_pod_name("k3d-demo-agent-1")
    lines: list[str] = []

    def show(line: str) -> None:
        lines.append(line)
        if line.startswith("waiting for agent pod"):
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


IMAGE = "nicolaka/netshoot:v0.13"
ENDED_4H = {
    "phase": "Failed",
    "reason": "DeadlineExceeded",
    "containerStatuses": [{"name": "agent", "state": {"terminated": {"reason": "Error"}}}],
}


@pytest.mark.parametrize(
    ("leftover", "why"),
    [
        (
            ENDED_4H,
            "Failed: DeadlineExceeded",
        ),  # activeDeadlineSeconds: the agent's 4 hours are over
        ({"phase": "Succeeded", "containerStatuses": []}, "Succeeded"),
        (None, "image nicolaka/netshoot:v0.12"),
    ],
)
def test_a_leftover_agent_that_cannot_serve_is_replaced(
    cluster: MockCluster, leftover: dict[str, object] | None, why: str
) -> None:
    api = cluster.api()
    old_image = IMAGE if leftover is not None else "nicolaka/netshoot:v0.12"
    name = start_agent_pod(api, "node-1", old_image)
    if leftover is not None:
        set_pod_status(api, "default", name, **leftover)
    old_uid = api.read("Pod", "default", name)["metadata"].get("uid")
    lines: list[str] = []

    def show(line: str) -> None:
        lines.append(line)
        if line.startswith("started"):
            run_container(cluster, name)

    assert start_agent(api, "default", "node-1", IMAGE, show, timeout=10) == name
    assert lines[0] == f"replacing node agent {name} on node-1 ({why})"
    assert lines[1] == f"started node agent {name} on node-1 ({IMAGE})"
    pod = api.read("Pod", "default", name)
    assert pod["metadata"].get("uid") != old_uid or old_uid is None
    assert pod["spec"]["containers"][0]["image"] == IMAGE
    assert [r.method.value for r in cluster.requests(path_part=f"/pods/{name}")].count(
        "DELETE"
    ) == 1


def test_a_running_leftover_agent_is_reused(cluster: MockCluster) -> None:
    api = cluster.api()
    name = start_agent_pod(api, "node-1", IMAGE)
    lines: list[str] = []
    assert start_agent(api, "default", "node-1", IMAGE, lines.append, timeout=5) == name
    assert lines == [f"reusing node agent {name} on node-1"]
    assert cluster.requests("DELETE") == []


def test_pod_security_refusal_names_the_level_and_the_fix(cluster: MockCluster) -> None:
    assert cluster.exec_api is not None
    cluster.exec_api.pod_security = {"default": "baseline"}
    with pytest.raises(SetupError) as refused:
        start_agent(cluster.api(), "default", "node-1", IMAGE, lambda _: None, timeout=5)
    message = str(refused.value)
    assert message.startswith(
        "Pod Security admission refused svcwatch's node agent in namespace default: it enforces "
        'the "baseline" level and the agent needs privileged (privileged (container "agent" must '
        "not set securityContext.privileged=true), host namespaces (hostNetwork=true)): pass "
        "--agent-namespace with a namespace that allows privileged pods, or label this one: "
        "kubectl label namespace default pod-security.kubernetes.io/enforce=privileged"
    )
    assert "RBAC" not in message and "\n" not in message
