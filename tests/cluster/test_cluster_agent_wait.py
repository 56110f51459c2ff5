"""`svcwatch run --cluster` while the node agent pod stays Pending, as a user meets it.

No kubelet plays the agent pod's node here, so it never runs: --duration must still end the run
on time, a Ctrl-C must still remove what the run created (and put back the slice it changed), and
the wait must say what it waits for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcwatch.cluster.agent import pending_words
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import MockCluster, make_pod, wait_for

pytestmark = pytest.mark.cluster
cluster = kmock_cluster.cluster  # the per-test kmock server fixture

AGENT = "svcwatch-agent-node-1"


def env_for(cluster: MockCluster) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}  # never the user's cluster
    return {**env, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONUNBUFFERED": "1"}


def svcwatch_cluster(cluster: MockCluster, command: str) -> subprocess.CompletedProcess[str]:
    """`svcwatch cluster COMMAND` against the kmock server, to the end."""
    argv = [sys.executable, "-m", "svcwatch", "cluster", command]
    return subprocess.run(argv, capture_output=True, text=True, env=env_for(cluster), timeout=60)


def cluster_up(cluster: MockCluster) -> None:
    """`svcwatch cluster up` with its demo pod Ready on node-1 (the agent's node)."""
    make_pod(cluster.api(), "default", "socat-1", {"app": "socat"}, ip="10.42.0.5")
    up = svcwatch_cluster(cluster, "up")
    assert up.returncode == 0, up.stderr


@pytest.fixture
def runs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The runs a test starts; killed at its end if still there (a failed test leaves none)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for run in started:
        if run.poll() is None:
            run.kill()
            run.wait()


def run_cluster(
    cluster: MockCluster, tmp_path: Path, runs: list[subprocess.Popen[bytes]], *flags: str
) -> subprocess.Popen[bytes]:
    """`svcwatch run --cluster --probe 127.0.0.1:9 FLAGS`, its output to files (read after)."""
    argv = [sys.executable, "-m", "svcwatch", "run", "--cluster", "--probe", "127.0.0.1:9"]
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        run = subprocess.Popen([*argv, *flags], stdout=out, stderr=err, env=env_for(cluster))
    runs.append(run)
    return run


def test_run_duration_bounds_a_wait_for_a_pending_agent(
    cluster: MockCluster, tmp_path: Path, runs: list[subprocess.Popen[bytes]]
) -> None:
    cluster_up(cluster)

    started = time.monotonic()
    run = run_cluster(cluster, tmp_path, runs, "-d", "3")
    status = run.wait(timeout=30)
    took = time.monotonic() - started

    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert took < 12, f"-d 3 took {took:.1f}s\n{out}\n{err}"
    assert status == 2, (out, err)
    (line,) = err.splitlines()
    assert line.startswith("svcwatch: error: --duration 3s ended before the run was ready: ")
    assert f"agent pod {AGENT} on node node-1 never became ready (Pending: " in line
    assert f"waiting for agent pod {AGENT} on node node-1 (Pending: " in out
    assert f"deleted node agent(s) {AGENT}" in out
    assert cluster.stored("pods", "default", AGENT) is None


def test_sigint_while_waiting_for_the_agent_leaves_no_pod(
    cluster: MockCluster, tmp_path: Path, runs: list[subprocess.Popen[bytes]]
) -> None:
    cluster_up(cluster)

    run = run_cluster(cluster, tmp_path, runs, "-d", "60", "--scenario", "wrong-port")
    wait_for(
        lambda: (
            (cluster.stored("endpointslices", "default", "socat") or {})["ports"][0]["port"]
            == 12346
        ),
        "the scenario applied to the slice",
    )
    wait_for(lambda: cluster.stored("pods", "default", AGENT), "the agent pod created")
    wait_for(lambda: "waiting for agent pod" in (tmp_path / "out").read_text(), "the wait said")
    time.sleep(1)
    run.send_signal(signal.SIGINT)
    status = run.wait(timeout=20)

    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert status == 130, (out, err)
    assert "Traceback" not in err
    assert f"deleted node agent(s) {AGENT}" in out
    assert cluster.stored("pods", "default", AGENT) is None
    slice_ = cluster.stored("endpointslices", "default", "socat")
    assert slice_ is not None and slice_["ports"][0]["port"] == 12345  # restored
    assert "EndpointSlice default/socat restored to its original" in out
    status_now = svcwatch_cluster(cluster, "status")
    assert "agent pod" not in status_now.stdout, status_now.stdout


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ({}, "Pending: not taken up by the kubelet on node-1 yet"),
        (
            {
                "phase": "Pending",
                "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}],
            },
            "Pending: ContainerCreating",
        ),
        (
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available:\n 1 Insufficient cpu.",
                    }
                ],
            },
            "Pending: Unschedulable (0/1 nodes are available: 1 Insufficient cpu.)",
        ),
    ],
)
def test_the_wait_says_why_the_pod_is_pending(status: dict[str, object], said: str) -> None:
    pod = {"spec": {"nodeName": "node-1"}, "status": status}
    assert pending_words(pod) == said
