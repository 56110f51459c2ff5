"""The lab CLI as a user runs it: a full session, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.conftest import SVCWATCH, lab_namespaces

pytestmark = pytest.mark.lab

SLICE = """apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: socat
  namespace: default
  labels: {{kubernetes.io/service-name: socat}}
addressType: IPv4
endpoints:
- addresses: [{ip}]
ports:
- name: ""
  port: {port}
  protocol: TCP
"""


def run(state_root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(state_root)}
    return subprocess.run(
        [SVCWATCH, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60
    )


@pytest.fixture
def cli_lab(lab_name: str, state_root: Path) -> Iterator[str]:
    up = run(state_root, "lab", "up", "--name", lab_name, "--pods", "2")
    assert up.returncode == 0, up.stderr
    yield lab_name
    run(state_root, "lab", "down", "--name", lab_name)
    assert lab_namespaces(lab_name) == []


def test_cli_session(cli_lab: str, state_root: Path, tmp_path: Path) -> None:
    again = run(state_root, "lab", "up", "--name", cli_lab, "--pods", "2")
    assert "reusing" in again.stdout
    changed = run(state_root, "lab", "scenario", "wrong-port", "--name", cli_lab)
    assert changed.returncode == 0 and "synced" in changed.stdout
    status = json.loads(run(state_root, "lab", "status", "--json", "--name", cli_lab).stdout)
    assert status["scenario"] == "wrong-port" and status["drift"] == []
    assert any("10.42.0.142:12346" in r["line"] for r in status["chain"])
    assert len(status["namespaces"]) == 5  # node, client, socat pod and 2 idle pods
    slice_file = tmp_path / "slice.yaml"
    slice_file.write_text(SLICE.format(ip="10.42.0.142", port=12345))
    assert run(state_root, "lab", "apply", "-f", str(slice_file), "--name", cli_lab).returncode == 0
    saved = run(
        state_root, "lab", "exec", "node", "--name", cli_lab, "--", "iptables-save", "-t", "nat"
    )
    assert "--to-destination 10.42.0.142:12345" in saved.stdout
    applied = json.loads(run(state_root, "lab", "status", "--json", "--name", cli_lab).stdout)
    assert applied["scenario"] == "custom"  # the user's slice, not the wrong-port it replaced
    # A client inside the client namespace, as `telnet 127.0.0.1 31234` was in the blog post.
    client = (
        "import socket; s = socket.create_connection(('192.168.97.3', 31234), 3); "
        "s.sendall(b'hello\\n'); print(s.recv(64).decode(), end='')"
    )
    echoed = run(
        state_root, "lab", "exec", "client", "--name", cli_lab, "--", sys.executable, "-c", client
    )
    assert echoed.returncode == 0 and echoed.stdout == "hello\n"
    failed = run(state_root, "lab", "exec", "client", "--name", cli_lab, "--", "sh", "-c", "exit 7")
    assert failed.returncode == 7


def test_a_lab_up_lab_rebuilt_by_run_for_other_pods_stays_up(
    lab_name: str, state_root: Path
) -> None:
    """`lab up --pods 1`, then `svcwatch run` with the default --pods rebuilds it: the lab is
    still the one `lab up` made, so it stays until `lab down` instead of going with the run."""
    try:
        assert run(state_root, "lab", "up", "--name", lab_name, "--pods", "1").returncode == 0
        ran = run(state_root, "run", "--name", lab_name, "-d", "1")
        assert ran.returncode == 0, ran.stderr
        assert "rebuilding lab" in ran.stdout
        assert ran.stdout.splitlines()[-1].endswith(
            f"lab {lab_name} kept: it was kept by `lab up` "
            f"(`svcwatch lab down --name {lab_name}` removes it)"
        )
        assert f"svcwatch-{lab_name}-node" in lab_namespaces(lab_name)
    finally:
        run(state_root, "lab", "down", "--name", lab_name)
    assert lab_namespaces(lab_name) == []


@pytest.mark.parametrize(
    ("case", "ip", "port", "needle"),
    [
        ("bad-ip", "10.42.0.300", 12345, "not an IPv4 address"),
        ("port-0", "10.42.0.142", 0, "port must be 1-65535"),
        ("port-70000", "10.42.0.142", 70000, "port must be 1-65535"),
        ("malformed", None, None, "malformed YAML"),
    ],
)
def test_bad_slice_is_one_line(
    case: str,
    ip: str | None,
    port: int | None,
    needle: str,
    cli_lab: str,
    state_root: Path,
    tmp_path: Path,
) -> None:
    slice_file = tmp_path / f"{case}.yaml"
    slice_file.write_text(
        SLICE.format(ip=ip, port=port) if ip else "kind: EndpointSlice\n  bad: [\n"
    )
    result = run(state_root, "lab", "apply", "-f", str(slice_file), "--name", cli_lab)
    assert_one_line_error(result, needle)
    status = json.loads(run(state_root, "lab", "status", "--json", "--name", cli_lab).stdout)
    assert status["scenario"] == "happy"  # nothing was applied


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["lab", "scenario", "no-such-scenario"], "unknown scenario"),
        (["lab", "status", "--name", "nosuchlab"], "no lab named nosuchlab"),
        (["lab", "scenario", "happy", "--name", "nosuchlab"], "no lab named nosuchlab"),
        (["lab", "exec", "node", "--name", "nosuchlab", "--", "true"], "no lab named nosuchlab"),
        (["lab", "up", "--name", "Bad_Name"], "bad lab name"),
        (["lab", "up", "--pods", "70000"], "70000"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], needle: str, state_root: Path) -> None:
    assert_one_line_error(run(state_root, *args), needle)


def test_malformed_manifest_for_up_is_one_line(
    tmp_path: Path, lab_name: str, state_root: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x\n")
    assert_one_line_error(
        run(state_root, "lab", "up", "-f", str(bad), "--name", lab_name), "malformed YAML"
    )
    assert lab_namespaces(lab_name) == []


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_controller_lease_leaves_syncing_to_its_holder(cli_lab: str, state_root: Path) -> None:
    from svcwatch.lab import claim_controller, release_controller

    holder = subprocess.Popen(["sleep", "60"])
    try:
        assert claim_controller(cli_lab, state_root, pid=holder.pid)
        assert not claim_controller(cli_lab, state_root)  # a second controller is refused
        changed = run(state_root, "lab", "scenario", "wrong-port", "--name", cli_lab)
        assert changed.returncode == 0 and f"pid {holder.pid}" in changed.stdout
        saved = run(state_root, "lab", "exec", "node", "--name", cli_lab, "--", "iptables-save")
        assert "10.42.0.142:12345" in saved.stdout  # the store changed, the kernel not yet
    finally:
        holder.kill()
        holder.wait()
    assert claim_controller(cli_lab, state_root)  # a dead holder's lease is free
    release_controller(cli_lab, state_root)
    changed = run(state_root, "lab", "scenario", "wrong-port", "--name", cli_lab)
    assert "synced" in changed.stdout
