"""The preStop rollout (`p`): the rollout race done right, so that no connection is lost.

Scenario 5 (rollout) shows the race kube-proxy loses when a pod is killed the moment it leaves the
slice. This is what a preStop sleep buys instead: the new pod starts and enters the slice first;
the old pod keeps serving while kube-proxy is still DNATing to it (the --sync-delay), and is
retired only once the kernel's rules point at the new pod, plus a grace period for connections
already DNATed to it to finish. It reads the kernel's chain, not the store, because only the rules
say when the old pod stopped getting traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from svcwatch.model.errors import InputError

if TYPE_CHECKING:
    from svcwatch.lab.node import LabNode

Say = Callable[[str, str], None]  # (notice kind, message)


def rollout_with_prestop(node: LabNode, say: Say, grace: float, timeout: float) -> None:
    """Start a new pod, move the slice to it, and retire the old one after the rules moved."""
    old = node.echo_pod
    say(
        "scenario",
        f"rollout with a preStop delay: a new pod first, {old.name} ({old.ip}) keeps "
        "serving until the rules move",
    )
    new = node.rollout(retire_old=False)
    node.store.write_slice(node.baseline_slice(), scenario="happy")
    wait_for_rules(node, new.ip, old.ip, timeout)
    time.sleep(grace)
    node.retire_pod(old.name)
    say("info", f"pod {old.name} retired after the rules moved to {new.ip}")


def wait_for_rules(node: LabNode, new_ip: str, old_ip: str, timeout: float) -> None:
    """Block until the kernel's chain DNATs to `new_ip` and no longer to `old_ip`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = {(r.dnat_to or "").rpartition(":")[0] for r in node.read_chain().all_rules()}
        if new_ip in targets and old_ip not in targets:
            return
        time.sleep(0.05)
    raise InputError(
        f"the rules did not move to {new_ip} within {timeout:g}s; "
        "the old pod is kept (is another svcwatch reconciling this lab?)"
    )
