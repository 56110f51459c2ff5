"""What the `svcwatch run --json` lab tests share: a lab run through the CLI, and its stream read.

A `Lab` is a lab name and a private state directory that the tests drive only through the CLI, as
a user would (a subprocess, as root); the `lab` fixture tears it down again whatever happened and
checks nothing of it is left. The helpers pick a probe's frames out of the JSON Lines, hop by hop.
The test modules take the fixture with `from tests.lab.stream_helpers import lab`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from svcwatch import netns
from svcwatch.lab.sources import load_manifests
from svcwatch.lab.topology import LabSpec

CLIENT, NODE, BRIDGE, POD, WRONG_IP = (
    "192.168.97.2",
    "192.168.97.3",
    "10.42.0.1",
    "10.42.0.142",
    "10.42.0.143",
)
NODE_PORT, POD_PORT = 31234, 12345
IDLE_PODS = 3

Event = dict[str, Any]
Hop = tuple[str, str, int, str, int, str]


@dataclass
class Lab:
    name: str
    state: Path
    spec: LabSpec
    proxy_mode: str = "iptables"  # kube-proxy's mode the stream builds the lab in

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SVCWATCH_STATE_DIR": str(self.state)}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "svcwatch", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`svcwatch ARGS` with this lab's state directory, its output captured as text."""
        return subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stream_args(self, *args: str) -> list[str]:
        """`run --json` on this lab with IDLE_PODS idle pods, in its proxy mode, then `args`."""
        mode = ["--proxy-mode", self.proxy_mode] if self.proxy_mode != "iptables" else []
        return ["run", "--json", "--name", self.name, "--pods", str(IDLE_PODS), *mode, *args]

    def run_json(self, *args: str) -> list[Event]:
        done = self.run(*self.stream_args(*args), timeout=90)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    def status(self) -> dict[str, Any]:
        """`svcwatch lab status --json` for this lab."""
        done = self.run("lab", "status", "--json", "--name", self.name)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    @property
    def echo_veth(self) -> str:
        return self.spec.echo_pod().veth

    @property
    def pod_veths(self) -> set[str]:
        return {p.veth for p in self.spec.pod_plans()}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from _made_lab(tmp_path, "iptables")


@pytest.fixture(params=["iptables", "nftables"])
def mode_lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The same lab in each of kube-proxy's modes: a scenario must look the same in both."""
    yield from _made_lab(tmp_path, request.param)


def _made_lab(tmp_path: Path, proxy_mode: str) -> Iterator[Lab]:
    name = f"t{secrets.token_hex(3)}"
    spec = LabSpec.from_manifests(load_manifests(None), name, idle_pods=IDLE_PODS)
    created = Lab(name, tmp_path / "state", spec, proxy_mode)
    try:
        yield created
    finally:
        created.run("lab", "down", "--name", name)
        assert not [n for n in netns.list_names() if spec.netns_pattern().match(n)]


def tcp(events: list[Event]) -> list[Event]:
    return [e for e in events if e["kind"] == "tcp-packet"]


def probes(events: list[Event]) -> list[Event]:
    return [e for e in events if e["source"] == "tcp-probe"]


def icmp(events: list[Event], detail: str) -> list[Event]:
    """The ICMP errors in the stream whose words are `detail` ("port unreachable", ...)."""
    return [e for e in events if e["kind"] == "icmp" and e["detail"] == detail]


def hop(e: Event) -> Hop:
    return (e["iface"], e["src"], e["sport"], e["dst"], e["dport"], e["flags"])


def connection(events: list[Event], client_port: int) -> list[Event]:
    """One probe's frames: the client's port on eth0, the masqueraded port inside."""
    frames = tcp(events)
    first = next(
        i for i, e in enumerate(frames) if e["iface"] == "eth0" and e["sport"] == client_port
    )
    inner = next(e["sport"] for e in frames[first:] if e["iface"] == "cni0" and e["dst"] == POD)
    return [
        e
        for e in frames[first:]
        if client_port in (e["sport"], e["dport"]) or inner in (e["sport"], e["dport"])
    ]


def assert_rules_in_mode(lab: Lab, events: list[Event]) -> None:
    """The stream's rule syncs came from the lab's mode (nftables: kube-proxy's own table)."""
    synced = [e for e in events if e["type"] == "RulesSynced"]
    assert synced
    if lab.proxy_mode == "nftables":
        assert {(e["kind"], e["proxy_backend"]) for e in synced} == {("nftables", "nftables")}
    else:
        assert {e["kind"] for e in synced} == {"iptables"}
        assert all(e["proxy_backend"].startswith("iptables") for e in synced)


def assert_refused_by_a_reset_from_the_pod(lab: Lab, events: list[Event], pod_port: int) -> None:
    """The first probe was refused, and the pod's own kernel sent the RST: out of the echo pod's
    veth from `pod_port`, through cni0, and un-NATed on eth0 back to the client."""
    refused = probes(events)[0]
    assert (refused["kind"], refused["phase"], refused["error"]) == (
        "io-error",
        "connect",
        "connection refused",
    )
    p = refused["sport"]
    frames = connection(events, p)
    q = frames[1]["sport"]
    assert [hop(e) for e in frames if e["flags"] == "ACK,RST"] == [
        (lab.echo_veth, POD, pod_port, BRIDGE, q, "ACK,RST"),
        ("cni0", POD, pod_port, CLIENT, p, "ACK,RST"),
        ("eth0", NODE, NODE_PORT, CLIENT, p, "ACK,RST"),
    ]
