"""A broken data plane is found, named and repaired by `lab status`, `lab up` and a session.

Each test breaks the lab the way a user (or a stray script) would — `ip link del cni0`, a veth
deleted, `iptables -t nat -F`, `ip netns del` — inside the lab's own namespaces, then reads what
svcwatch says and checks that the Service answers again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcwatch.lab import LabNode
from tests.lab.conftest import lab_namespaces, lab_processes
from tests.lab.test_lab_lifecycle import echo_roundtrip
from tests.lab.test_shared_lab import PODS, Stream, svcwatch

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def no_lab_left(lab_name: str, state_root: Path) -> Iterator[None]:
    yield
    svcwatch(state_root, "lab", "down", "--name", lab_name)
    assert lab_namespaces(lab_name) == []


def in_node(lab: LabNode, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", lab.spec.node_ns, *argv], check=True)


def status(state_root: Path, name: str) -> subprocess.CompletedProcess[str]:
    return svcwatch(state_root, "lab", "status", "--name", name)


def test_status_reports_deleted_bridge_and_up_repairs_it(lab: LabNode, state_root: Path) -> None:
    name = lab.spec.name
    assert status(state_root, name).returncode == 0
    in_node(lab, "ip", "link", "del", "cni0")
    broken = status(state_root, name)
    assert broken.returncode == 1
    assert "cni0 is missing in the node" in broken.stdout
    assert "is not on cni0" in broken.stdout  # the veths it held are loose now
    up = svcwatch(state_root, "lab", "up", "--name", name)
    assert up.returncode == 0, up.stderr
    assert "recreated cni0" in up.stdout and "healthy" not in up.stdout
    assert status(state_root, name).returncode == 0
    assert echo_roundtrip(lab.spec) == b"hello\n"


def test_status_reports_a_deleted_veth_and_up_repairs_it(lab: LabNode, state_root: Path) -> None:
    echo = lab.echo_pod
    in_node(lab, "ip", "link", "del", echo.veth)
    broken = svcwatch(state_root, "lab", "status", "--name", lab.spec.name, "--json")
    assert broken.returncode == 1
    problems = json.loads(broken.stdout)["problems"]
    assert f"{echo.veth} of pod {echo.name} is missing in the node" in problems
    up = svcwatch(state_root, "lab", "up", "--name", lab.spec.name)
    assert f"recreated {echo.veth} of pod {echo.name}" in up.stdout
    assert echo_roundtrip(lab.spec) == b"hello\n"


def test_status_reports_flushed_rules_and_up_reinstalls_them(
    lab: LabNode, state_root: Path
) -> None:
    in_node(lab, "iptables", "-t", "nat", "-F")
    broken = status(state_root, lab.spec.name)
    assert broken.returncode == 1
    assert "kube-proxy hook rule missing: -A PREROUTING" in broken.stdout
    up = svcwatch(state_root, "lab", "up", "--name", lab.spec.name)
    assert "reinstalled kube-proxy's rules" in up.stdout
    assert status(state_root, lab.spec.name).returncode == 0
    assert echo_roundtrip(lab.spec) == b"hello\n"


def test_status_with_the_node_namespace_deleted_is_one_line(lab: LabNode, state_root: Path) -> None:
    name = lab.spec.name
    subprocess.run(["ip", "netns", "del", lab.spec.node_ns], check=True)
    done = status(state_root, name)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"svcwatch: error: lab {name} is broken: node namespace {lab.spec.node_ns} is gone "
        f"(run `svcwatch lab down --name {name}`, or `svcwatch lab up --name {name}` to "
        "rebuild it)"
    ]
    up = svcwatch(state_root, "lab", "up", "--name", name)
    assert up.returncode == 0 and f"rebuilding lab {name}" in up.stdout
    assert echo_roundtrip(lab.spec) == b"hello\n"


def test_lab_list_and_down_all_find_a_lab_whose_state_dir_was_deleted(
    lab: LabNode, state_root: Path
) -> None:
    name = lab.spec.name
    subprocess.run(["rm", "-rf", str(state_root)], check=True)
    listed = svcwatch(state_root, "lab", "list", "--json")
    assert name in json.loads(listed.stdout)
    down = svcwatch(state_root, "lab", "down", "--all")
    assert down.returncode == 0 and name in down.stdout
    assert lab_namespaces(name) == []


def test_running_session_reinstalls_flushed_rules(lab_name: str, state_root: Path) -> None:
    session = Stream(state_root, lab_name)
    try:
        session.wait_for("echo-ok")
        node_ns = f"svcwatch-{lab_name}-node"
        subprocess.run(["ip", "netns", "exec", node_ns, "iptables", "-t", "nat", "-F"], check=True)
        at = session.wait_for("reinstalled kube-proxy's rules")
        assert f"lab {lab_name} was broken (kube-proxy hook rule missing" in session.text()
        session.wait_for("echo-ok", after=at)
    finally:
        assert session.interrupt() == 0


def test_running_session_recreates_a_deleted_bridge(lab_name: str, state_root: Path) -> None:
    session = Stream(state_root, lab_name)
    try:
        session.wait_for("echo-ok")
        node_ns = f"svcwatch-{lab_name}-node"
        subprocess.run(["ip", "netns", "exec", node_ns, "ip", "link", "del", "cni0"], check=True)
        at = session.wait_for("recreated cni0")
        session.wait_for("echo-ok", after=at)
        session.wait_for("tcp-packet  [cni0]", after=at)  # the capture saw the new bridge too
    finally:
        assert session.interrupt() == 0


@pytest.fixture
def tiny_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A real 12 KiB tmpfs: room for the lab's first record, not for the rest of its state."""
    where = tmp_path / "tiny"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.mark.parametrize("command", [["lab", "up"], ["run", "-d", "1"]])
def test_full_state_dir_leaves_nothing_half_built(
    tiny_state_dir: Path, lab_name: str, command: list[str]
) -> None:
    done = svcwatch(tiny_state_dir, *command, "--name", lab_name, *PODS)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"svcwatch: error: cannot write svcwatch's state under {tiny_state_dir}/labs/{lab_name}: "
        "No space left on device (free some space, or point SVCWATCH_STATE_DIR at a writable "
        "directory)"
    ]
    assert lab_namespaces(lab_name) == [] and lab_processes(lab_name) == []
    assert not (tiny_state_dir / "labs" / lab_name).exists()


def test_state_dir_that_is_a_file_is_one_line(tmp_path: Path, lab_name: str) -> None:
    not_a_dir = tmp_path / "state-file"
    not_a_dir.write_text("")
    done = svcwatch(not_a_dir, "lab", "up", "--name", lab_name, *PODS)
    assert done.returncode == 2
    assert done.stderr.startswith("svcwatch: error: cannot write svcwatch's state under ")
    assert "Not a directory" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert lab_namespaces(lab_name) == []


def test_status_reports_a_pod_without_its_address_and_up_gives_it_back(
    lab: LabNode, state_root: Path
) -> None:
    echo = lab.echo_pod
    subprocess.run(
        ["ip", "netns", "exec", echo.netns, "ip", "addr", "flush", "dev", "eth0"], check=True
    )
    broken = status(state_root, lab.spec.name)
    assert broken.returncode == 1
    assert f"eth0 in the pod {echo.name} has lost its address {echo.ip}/24" in broken.stdout
    up = svcwatch(state_root, "lab", "up", "--name", lab.spec.name)
    assert f"reconnected pod {echo.name}" in up.stdout
    assert status(state_root, lab.spec.name).returncode == 0
    assert echo_roundtrip(lab.spec) == b"hello\n"


def test_running_session_restarts_a_killed_echo_process(lab_name: str, state_root: Path) -> None:
    session = Stream(state_root, lab_name)
    try:
        session.wait_for("echo-ok")
        echo = lab_processes(lab_name)
        assert len(echo) == 1
        os.kill(echo[0], signal.SIGKILL)
        at = session.wait_for("restarted the echo process of pod socat-")
        assert "nothing listens on 10.42.0.142:12345" in session.text()
        session.wait_for("echo-ok", after=at)
    finally:
        assert session.interrupt() == 0


def test_read_only_state_dir_is_one_line(tmp_path: Path, lab_name: str) -> None:
    where = tmp_path / "ro"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(where)], check=True)
    try:
        done = svcwatch(where, "run", "--name", lab_name, *PODS, "-d", "1")
    finally:
        subprocess.run(["umount", str(where)], check=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"svcwatch: error: cannot write svcwatch's state under {where}: Read-only file system "
        "(point SVCWATCH_STATE_DIR at a writable directory)"
    ]
    assert lab_namespaces(lab_name) == []
