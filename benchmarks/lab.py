"""Lab speed: `lab up`, `lab down`, and a scenario change reaching the kernel (median of 50).

Run as root: `sudo .venv/bin/python benchmarks/lab.py`. Printed, not asserted. Targets on a
2-core machine: up <= 1.0 s, down <= 0.5 s, scenario -> kernel <= 50 ms median, i.e. at least 20x
faster than kube-proxy's 1 s minSyncPeriod floor, which is the reference the ratio is against.
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from svcwatch.lab import LabNode

KUBE_PROXY_FLOOR_S = 1.0  # minSyncPeriod: the soonest kube-proxy re-syncs after a previous sync
ROUNDS = 50
CYCLE = ("wrong-port", "wrong-ip", "mixed", "happy")


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def scenario_samples(node: LabNode, rounds: int) -> tuple[list[float], list[float]]:
    """(scenario -> rules in the kernel ms, the rule tool's write alone ms), `rounds` changes."""
    total, write = [], []
    for i in range(rounds):
        start = time.perf_counter()
        node.set_scenario(CYCLE[i % len(CYCLE)])
        synced = node.reconcile()
        total.append((time.perf_counter() - start) * 1000)
        write.append(synced.took_ms)
    return total, write


def main() -> None:
    import pyroute2  # noqa: F401  -- imported up front so `up` measures the build, not the import

    from svcwatch.lab import LabNode, LabSpec
    from svcwatch.lab.sources import load_manifests

    state = Path(tempfile.mkdtemp(prefix="svcwatch-bench-"))
    manifests = load_manifests()
    spec = LabSpec.from_manifests(manifests, "b" + secrets.token_hex(3)[:5])
    try:
        up_s = timed(lambda: LabNode.up(spec, manifests, state))
        node = LabNode.attach(spec.name, state)
        reuse_s = timed(lambda: LabNode.up(spec, manifests, state))
        samples, restore_ms = scenario_samples(node, ROUNDS)
        down_s = timed(lambda: LabNode.down(spec.name, state))
    finally:
        LabNode.down(spec.name, state)
    try:
        cli_up_s, cli_down_s = cli_times(state)
    finally:
        shutil.rmtree(state, ignore_errors=True)  # its state dir too: nothing left behind
    median = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1]
    print(
        f"lab up (in process, {spec.idle_pods + 1} pods): {up_s * 1000:7.1f} ms  target <= 1000 ms"
    )
    print(f"lab up again (healthy, reused):     {reuse_s * 1000:7.1f} ms")
    print(f"lab down:                           {down_s * 1000:7.1f} ms  target <= 500 ms")
    print(
        f"svcwatch lab up / down (CLI):       {cli_up_s * 1000:7.1f} / {cli_down_s * 1000:.1f} ms"
    )
    print(
        f"scenario -> kernel, median of {ROUNDS}:   {median:7.1f} ms  target <= 50 ms"
        f" (p90 {p90:.1f}; iptables-restore alone {statistics.median(restore_ms):.1f})"
    )
    ratio = KUBE_PROXY_FLOOR_S * 1000 / median
    print(f"  vs kube-proxy's 1 s minSyncPeriod floor: {ratio:.0f}x faster (target >= 20x)")


def cli_times(state: Path) -> tuple[float, float]:
    """The same up/down through the installed `svcwatch` command (Python start-up included)."""
    exe = str(Path(sys.executable).with_name("svcwatch"))
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(state)}
    name = "c" + secrets.token_hex(3)[:5]

    def run(*args: str) -> None:
        argv = [exe, "lab", *args, "--name", name]
        subprocess.run(argv, env=env, capture_output=True, check=True)

    try:
        return timed(lambda: run("up")), timed(lambda: run("down"))
    finally:
        subprocess.run([exe, "lab", "down", "--name", name], env=env, capture_output=True)


if __name__ == "__main__":
    main()
