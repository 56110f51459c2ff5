"""A lab's life: built or reused (and repaired) by `up`, shared by sessions, left or torn down.

A lab has an owner and users. `lab up` (or a session with --keep) makes it stay; a session that
built it without --keep makes it temporary, so it goes when the last svcwatch session using it
leaves — never while another one still uses it. Sessions register as users (pid + start time, in
`users.json`) under the lab's lock, so "build or reuse, then register" and "unregister, then tear
down if nobody is left" never interleave. `lab down` removes the lab whoever uses it; the users'
monitors see the record gone and say so. A lab that must be rebuilt (its node namespace gone, a
different spec) is not rebuilt under a live user.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from svcwatch.lab import build, health
from svcwatch.lab.instances import (
    LabRecord,
    ProcessRef,
    add_user,
    controller_of,
    index_lab,
    lab_users,
    load_record,
    locked,
    remove_state,
    remove_user,
    save_record,
)
from svcwatch.lab.node import LabNode
from svcwatch.lab.privileges import require_lab_privileges
from svcwatch.lab.proxy import require_proxy_tools
from svcwatch.lab.topology import LabSpec
from svcwatch.model.errors import SetupError
from svcwatch.model.manifest import ManifestSet


def up(
    spec: LabSpec,
    manifests: ManifestSet,
    state_root: Path,
    say: Callable[[str], None],
    proxy_mode: str | None,
    sharing: tuple[str | None, bool],
) -> LabNode:
    """LabNode.up: under the lab lock, reuse and repair, or rebuild when no live session uses it;
    then register the session in `sharing` (its command, and --keep)."""
    require_lab_privileges()
    require_proxy_tools(proxy_mode)  # a missing tool or a bad mode: one line, nothing built
    with locked(state_root, spec.name):
        old = load_record(state_root, spec.name)
        reason = _rebuild_reason(spec, old)
        node = LabNode(old, state_root) if old is not None and reason is None else None
        faults = (
            health.check(node, rules=controller_of(spec.name, state_root) is None) if node else []
        )
        if node is not None and not any(f.fix == health.REBUILD for f in faults):
            _reuse(node, faults, say)
        else:
            reason = faults[0].text if faults else reason
            users = lab_users(state_root, spec.name) if old is not None else []
            if users and reason:
                raise SetupError(
                    f"lab {spec.name} is in use by {users[0].describe()} and {reason}: quit "
                    f"it, or run `svcwatch lab down --name {spec.name}` first"
                )
            mode = proxy_mode or (old.proxy_mode if old else "iptables")
            node = _rebuild(spec, old, manifests, state_root, say, reason, sharing, mode)
        _adopt(node, *sharing)
    if proxy_mode is not None and proxy_mode != node.proxy.mode:
        was = node.proxy.mode
        synced = node.set_proxy_mode(proxy_mode)
        say(f"kube-proxy mode {was} -> {proxy_mode}: {synced.text()}")
    return node


def _rebuild_reason(spec: LabSpec, old: LabRecord | None) -> str | None:
    if old is None:
        return "namespaces left by an earlier build" if build.lab_namespaces(spec.name) else None
    return None if old.spec == spec else "it was built with other manifests or --pods"


def _reuse(node: LabNode, faults: list[health.Fault], say: Callable[[str], None]) -> None:
    """Repair what is broken in place (rules only if no session syncs them), say so."""
    from svcwatch.lab.repair import repair

    controlled = controller_of(node.spec.name, node.state_root) is not None
    if not faults:
        say(f"lab {node.spec.name} is up and healthy: reusing it")
    else:
        say(f"lab {node.spec.name} is broken: {'; '.join(f.text for f in faults)}")
        done = repair(node, faults, rules=not controlled)
        save_record(node.state_root, node.record)
        say(f"repaired: {'; '.join(done) or 'nothing to do'}")
    if not controlled:
        node.reconcile()


def _adopt(node: LabNode, user: str | None, keep: bool) -> None:
    """Record who keeps the lab and, for a session, that it uses it (caller holds the lock)."""
    kept_by = "lab up" if user is None else ("--keep" if keep else "")
    if kept_by and not node.record.kept_by:
        node.record.kept_by = kept_by
        save_record(node.state_root, node.record)
    if user is not None:
        node.user = add_user(node.state_root, node.spec.name, user)


def leave(node: LabNode, keep: bool = False) -> str:
    """This session stops using the lab; tear it down if it was its last user and nobody
    asked to keep it. Returns the line a user reads at exit."""
    name = node.spec.name
    how = f"`svcwatch lab down --name {name}` removes it"
    with locked(node.state_root, name):
        record = load_record(node.state_root, name)
        if record is None or record.builder != node.record.builder:
            return f"lab {name} was removed by `svcwatch lab down` while this svcwatch used it"
        left = remove_user(node.state_root, name, node.user) if node.user else []
        if keep and not record.kept_by:
            record.kept_by = "--keep"
            save_record(node.state_root, record)
        if record.kept_by == "--keep":
            return f"lab {name} kept (--keep): {how}"
        if record.kept_by:
            verb = "made" if record.made_by == "lab up" else "kept"
            return f"lab {name} kept: it was {verb} by `lab up` ({how})"
        if left:
            return (
                f"lab {name} kept: {left[0].describe()} still uses it "
                "(the last svcwatch using it tears it down)"
            )
        build.teardown(name, record)
        remove_state(node.state_root, name)
        return f"lab {name} torn down"


def _rebuild(
    spec: LabSpec,
    old: LabRecord | None,
    manifests: ManifestSet,
    state_root: Path,
    say: Callable[[str], None],
    reason: str | None,
    sharing: tuple[str | None, bool],
    proxy_mode: str,
) -> LabNode:
    """Tear down whatever is there (stale, broken or a different spec) and build afresh."""
    if reason is not None:
        say(f"rebuilding lab {spec.name}: {reason}")
        build.teardown(spec.name, old)
    keep_objects = old is not None and old.spec == spec
    user, keep = sharing
    record = LabRecord(
        spec,
        builder=ProcessRef.of(os.getpid()),
        proxy_mode=proxy_mode,
        made_by=user or "lab up",
    )
    record.kept_by = "lab up" if user is None else ("--keep" if keep else "")
    if old is not None and old.kept_by and not record.kept_by:
        record.kept_by = old.kept_by  # rebuilt for other --pods: `lab up`'s lab stays till `down`
    node = _build(record, state_root, say)
    try:
        node.write_objects(manifests, keep_slice=keep_objects)
        synced = node.reconcile()
    except BaseException:
        build.teardown(spec.name, node.record)
        remove_state(state_root, spec.name)
        raise
    say(f"rules synced: {synced.text()}")
    return node


def _build(record: LabRecord, state_root: Path, say: Callable[[str], None]) -> LabNode:
    spec = record.spec
    save_record(state_root, record)  # first, so `lab down` knows the lab even if we die now
    index_lab(spec.name, state_root)
    try:
        build.build(spec, record, say)
        record.status = "ready"
        save_record(state_root, record)
    except BaseException:
        build.teardown(spec.name, record)
        remove_state(state_root, spec.name)
        raise
    return LabNode(record, state_root)
