"""`lab up` builds the blog post's node, reuses or repairs it, and `lab down` removes it all."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from svcwatch import netns
from svcwatch.lab import LabNode, LabSpec
from svcwatch.lab.pods import remove_netns
from svcwatch.lab.status import interfaces
from svcwatch.model.manifest import ManifestSet
from tests.lab.conftest import lab_namespaces, lab_processes

pytestmark = pytest.mark.lab


def echo_roundtrip(spec: LabSpec, payload: bytes = b"hello\n") -> bytes:
    sock = netns.socket_in(spec.client_ns, socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(3)
        sock.connect((spec.node_ip, 31234))
        sock.sendall(payload)
        return sock.recv(len(payload) + 10)


def test_up_builds_the_seed_topology(lab: LabNode) -> None:
    spec = lab.spec
    node = {i["name"]: i for i in interfaces(spec.node_ns)}
    assert node["eth0"]["addresses"] == ["192.168.97.3/24"]
    assert node["cni0"]["addresses"] == ["10.42.0.1/24"]
    veths = [n for n, i in node.items() if i["master"] == "cni0"]
    assert len(veths) == 8 and all(re.fullmatch(r"veth[0-9a-f]{8}", v) for v in veths)
    client = {i["name"]: i for i in interfaces(spec.client_ns)}
    assert client["eth0"]["addresses"] == ["192.168.97.2/24"]
    echo = lab.echo_pod
    assert echo.ip == "10.42.0.142" and echo.listening and echo.veth in veths
    assert re.fullmatch(r"socat-[a-z0-9]{10}-[a-z0-9]{5}", echo.name)
    assert {i["name"]: i["addresses"] for i in interfaces(echo.netns)}["eth0"] == ["10.42.0.142/24"]
    assert lab.drift() == []


def test_up_is_idempotent_and_repairs(
    lab: LabNode, manifests: ManifestSet, state_root: Path
) -> None:
    again = LabNode.up(lab.spec, manifests, state_root)
    assert again.record.pods[0].echo == lab.record.pods[0].echo  # same process: reused, not rebuilt
    remove_netns(lab.spec.pod_ns(3))
    assert LabNode.attach(lab.spec.name, state_root).drift()
    repaired = LabNode.up(lab.spec, manifests, state_root)
    assert repaired.drift() == []
    assert netns.exists(lab.spec.pod_ns(3))
    assert echo_roundtrip(lab.spec) == b"hello\n"


def test_down_removes_namespaces_processes_and_state(lab: LabNode, state_root: Path) -> None:
    name = lab.spec.name
    assert lab_processes(name)
    assert LabNode.down(name, state_root) is True
    assert lab_namespaces(name) == [] and lab_processes(name) == []
    assert LabNode.list_names(state_root) == []
    assert LabNode.down(name, state_root) is False


def test_two_labs_coexist(lab: LabNode, manifests: ManifestSet, state_root: Path) -> None:
    other = LabSpec.from_manifests(manifests, lab.spec.name + "b", idle_pods=1)
    try:
        LabNode.up(other, manifests, state_root)
        assert echo_roundtrip(lab.spec) == b"hello\n"
        assert echo_roundtrip(other, b"other\n") == b"other\n"
        assert sorted(LabNode.list_names(state_root)) == sorted([lab.spec.name, other.name])
    finally:
        LabNode.down(other.name, state_root)
    assert lab_namespaces(other.name) == [] and echo_roundtrip(lab.spec) == b"hello\n"


def test_reuse_restarts_a_crashed_echo_process(
    lab: LabNode, manifests: ManifestSet, state_root: Path
) -> None:
    old = lab.record.pods[0].echo
    assert old is not None
    os.kill(old.pid, signal.SIGKILL)
    # The kill lands when the kernel next schedules the process: the crash is over once it is gone.
    deadline = time.monotonic() + 5
    while old.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    again = LabNode.up(lab.spec, manifests, state_root)
    assert again.echo_pod.listening and again.record.pods[0].echo != old
    assert echo_roundtrip(lab.spec) == b"hello\n"


def test_echo_serves_many_connections_at_once(lab: LabNode) -> None:
    socks = [
        netns.socket_in(lab.spec.client_ns, socket.AF_INET, socket.SOCK_STREAM) for _ in range(20)
    ]
    try:
        for sock in socks:
            sock.settimeout(3)
            sock.connect((lab.spec.node_ip, 31234))
        for i, sock in enumerate(socks):  # all open at once, answered in any order
            sock.sendall(f"conn {i}\n".encode())
        assert [s.recv(64) for s in socks] == [f"conn {i}\n".encode() for i in range(20)]
    finally:
        for sock in socks:
            sock.close()
