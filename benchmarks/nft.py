"""Scenario key -> new rules in the kernel, kube-proxy's nftables mode beside its iptables mode.

Run as root: `sudo .venv/bin/python benchmarks/nft.py`. Printed, not asserted. One lab, the same
scenario cycle in both modes in the same run: iptables mode (iptables-restore --noflush of the
KUBE-* chains) is the reference, nftables mode (one `nft -f` batch replacing table ip kube-proxy)
is measured against it. A sample is what a scenario key costs the lab: the slice written, the
rules rendered and written, back when the write returned (the rules are then in the kernel).
Also timed: the `m` key's mode switch, both ways.
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.lab import scenario_samples  # noqa: E402 - benchmarks/lab.py, beside this script

ROUNDS = 50


def line(label: str, samples: list[float], write: list[float]) -> str:
    median, p90 = statistics.median(samples), statistics.quantiles(samples, n=10)[-1]
    return (
        f"{label:<34} median {median:6.1f} ms  p90 {p90:6.1f} ms  "
        f"(write alone: median {statistics.median(write):.1f} ms)"
    )


def main() -> None:
    import pyroute2  # noqa: F401  -- imported up front, as in benchmarks/lab.py

    from svcwatch.lab import LabNode, LabSpec
    from svcwatch.lab.sources import load_manifests

    state = Path(tempfile.mkdtemp(prefix="svcwatch-bench-"))
    manifests = load_manifests()
    spec = LabSpec.from_manifests(manifests, "b" + secrets.token_hex(3)[:5], idle_pods=3)
    try:
        node = LabNode.up(spec, manifests, state, proxy_mode="iptables")
        scenario_samples(node, 4)  # warm-up: first syncs read the kernel
        ipt, ipt_write = scenario_samples(node, ROUNDS)
        start = time.perf_counter()
        node.set_proxy_mode("nftables")
        to_nft_ms = (time.perf_counter() - start) * 1000
        scenario_samples(node, 4)
        nft, nft_write = scenario_samples(node, ROUNDS)
        start = time.perf_counter()
        node.set_proxy_mode("iptables")
        to_ipt_ms = (time.perf_counter() - start) * 1000
    finally:
        LabNode.down(spec.name, state)
        shutil.rmtree(state, ignore_errors=True)  # its state dir too: nothing left behind
    print(f"scenario -> new rules in the kernel, {ROUNDS} changes per mode, same lab, same run:")
    print(line("  iptables mode (reference)", ipt, ipt_write))
    print(line("  nftables mode", nft, nft_write))
    ratio = statistics.median(nft) / statistics.median(ipt)
    print(f"  nftables / iptables (median): {ratio:.2f}x")
    print(f"mode switch (`m`): iptables -> nftables {to_nft_ms:.1f} ms, back {to_ipt_ms:.1f} ms")


if __name__ == "__main__":
    main()
