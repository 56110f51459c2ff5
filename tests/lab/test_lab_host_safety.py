"""The host namespace is exactly as it was after `lab down`, even when the builder was SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from svcwatch import netns
from svcwatch.lab import LabNode, LabSpec
from svcwatch.model.manifest import ManifestSet
from tests.lab.conftest import SVCWATCH, host_network, lab_namespaces, lab_processes

pytestmark = pytest.mark.lab


def cli(*args: str, state_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(state_root)}
    return subprocess.run([SVCWATCH, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("proxy_mode", ["iptables", "nftables"])
def test_up_and_down_leave_the_host_untouched(
    spec: LabSpec, manifests: ManifestSet, state_root: Path, proxy_mode: str
) -> None:
    before = host_network()  # iptables-save, ip6tables-save and `nft list ruleset` among them
    try:
        node = LabNode.up(spec, manifests, state_root, proxy_mode=proxy_mode)
        assert host_network() == before  # built entirely inside lab namespaces
        node.set_proxy_mode("iptables" if proxy_mode == "nftables" else "nftables")
        assert host_network() == before  # a mode switch too
    finally:
        LabNode.down(spec.name, state_root)
    assert host_network() == before
    assert lab_namespaces(spec.name) == [] and lab_processes(spec.name) == []


@pytest.mark.parametrize("when", ["mid-build", "after-build"])
def test_down_after_sigkill_of_the_builder(when: str, lab_name: str, state_root: Path) -> None:
    before = host_network()
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(state_root)}
    builder = subprocess.Popen(
        [SVCWATCH, "lab", "up", "--name", lab_name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if when == "mid-build":
            deadline = time.monotonic() + 20
            while not netns.exists(f"svcwatch-{lab_name}-node") and time.monotonic() < deadline:
                time.sleep(0.002)
            assert builder.poll() is None, "the build finished before it could be interrupted"
        else:
            assert builder.wait(timeout=60) == 0
        builder.send_signal(signal.SIGKILL)
        builder.wait(timeout=10)
        assert lab_namespaces(lab_name)  # something was left behind for `down` to find
    finally:
        result = cli("lab", "down", "--name", lab_name, state_root=state_root)
    assert result.returncode == 0, result.stderr
    assert lab_namespaces(lab_name) == [] and lab_processes(lab_name) == []
    assert host_network() == before
