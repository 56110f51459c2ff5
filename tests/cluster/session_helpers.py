"""What the ClusterSession tests share: a throw-away "node" namespace with a real k3s node's rules,
an echo server standing in for the mapped NodePort, the kubelet's part for agent pods, and the demo
objects on the mock API server."""

from __future__ import annotations

import secrets
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import MockCluster, make_pod
from tests.helpers.namespaces import run_in

RESTORE = Path(__file__).resolve().parents[1] / "data" / "iptables" / "k3s-node.restore"


@pytest.fixture
def node_ns() -> Iterator[str]:
    """A namespace standing in for the node: loopback up and a real k3s node's rules loaded."""
    name = f"svcwatch-t{secrets.token_hex(3)}-node"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        run_in(
            name, ["iptables-restore", "--counters", str(RESTORE)], check=True, capture_output=True
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on 127.0.0.1 standing in for the NodePort a user maps (k3d -p)."""

    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(self.request.recv(100))

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield server.server_address[1]
        server.shutdown()


def seed_demo(cluster: MockCluster) -> dict[str, Any]:
    api = cluster.api()
    api.create(
        "Service",
        "default",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "socat", "namespace": "default"},
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.43.161.224",
                "ports": [{"port": 12345, "nodePort": 31234, "protocol": "TCP"}],
            },
        },
    )
    make_pod(api, "default", "socat-1", {"app": "socat"}, node="k3s-node", ip="10.42.0.142")
    endpoint = {"addresses": ["10.42.0.142"], "conditions": {"ready": True}, "nodeName": "k3s-node"}
    return kmock_cluster.make_slice(api, "socat", "svcwatch", [endpoint])
