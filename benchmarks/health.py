"""What a session's drift check costs: one full data-plane check, against one chain read.

A running dashboard checks its lab every 2 s (svcwatch.session.lab_monitor) and reads the chain
with counters every second for the chain pane anyway; the reference here is that chain read,
measured in the same run. Run as root: `sudo .venv/bin/python benchmarks/health.py`. Printed, not
asserted. Target: a check costs at most ~5 chain reads, i.e. under ~2% of one core at 1 per 2 s.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.rules import median_ms  # noqa: E402 -- the sibling benchmark's timer

ROUNDS = 40
CHECK_PERIOD_S = 2.0


def main() -> None:
    from svcwatch.lab import LabNode, LabSpec
    from svcwatch.lab.sources import load_manifests

    state = Path(tempfile.mkdtemp(prefix="svcwatch-bench-"))
    manifests = load_manifests()
    spec = LabSpec.from_manifests(manifests, "h" + secrets.token_hex(3)[:5])
    try:
        node = LabNode.up(spec, manifests, state)
        assert node.faults() == [], "a fresh lab must check clean"
        chain_ms = median_ms(node.read_chain, ROUNDS)
        links_ms = median_ms(lambda: node.faults(rules=False), ROUNDS)
        full_ms = median_ms(node.faults, ROUNDS)
    finally:
        LabNode.down(spec.name, state)
        shutil.rmtree(state, ignore_errors=True)  # its state dir too: nothing left behind
    pods = spec.idle_pods + 1
    print(f"chain read (iptables-save -c, the reference): {chain_ms:6.1f} ms")
    print(f"check, links only ({pods} pods, a non-syncing session): {links_ms:6.1f} ms")
    print(f"check, links + rules (the syncing session):    {full_ms:6.1f} ms")
    print(
        f"  ratio to a chain read: {full_ms / chain_ms:.1f}x (target <= 5x); "
        f"one core at 1 check per {CHECK_PERIOD_S:g} s: {full_ms / CHECK_PERIOD_S / 10:.2f}%"
    )


if __name__ == "__main__":
    main()
