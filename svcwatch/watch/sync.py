"""Sync lag: how long a slice change took to reach the kernel and to show up on the wire.

For every slice change there are three moments: when it was written (the store's written-at
annotation, or when the watcher first saw its resourceVersion), when the rules changed in the
kernel (the lab's reconciler reports it; a cluster's kube-proxy does not, so there it stays
unknown) and when the first packet or probe after that showed the effect. The tracker is pure:
callers feed it times and events, it returns `SyncTiming`s for the UI and the `run --json` stream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from svcwatch.model.events import Event, PacketEvent, ProbeEvent, SyncTiming


@dataclass(slots=True)
class _Pending:
    resource_version: str | None
    written_at: float
    rules_at: float | None = None


class SyncTracker:
    """Times one slice's changes; only the newest change is tracked (a newer write supersedes)."""

    def __init__(self, slice_key: str = "", *, expects_rules: bool = True) -> None:
        """
        Args:
            slice_key: `namespace/name` of the slice, printed in the timings.
            expects_rules: False where nobody reports rule changes (a cluster): then the first
                packet or probe after the write closes the record.
        """
        self.slice_key = slice_key
        self.expects_rules = expects_rules
        self.last: SyncTiming | None = None
        self._pending: _Pending | None = None

    def written(
        self, resource_version: str | None, at: float, *, slice_key: str | None = None
    ) -> None:
        """A slice change was written (or first seen) at `at`."""
        if slice_key:
            self.slice_key = slice_key
        self._pending = _Pending(resource_version, at)

    def rules_applied(self, resource_version: str | None, at: float) -> SyncTiming | None:
        """The kernel's rules now reflect this version; returns the timing so far (effect pending).

        A report for an older version than the pending one is ignored: its rules were replaced.
        """
        pending = self._pending
        if pending is None or not _same_version(pending.resource_version, resource_version):
            return None
        pending.rules_at = at
        self.last = self._timing(pending, ts=at)
        return self.last

    def observed(self, event: Event) -> SyncTiming | None:
        """The first packet or probe after the rules changed closes the record; returns it."""
        pending = self._pending
        if pending is None or not isinstance(event, PacketEvent | ProbeEvent):
            return None
        since = pending.rules_at if self.expects_rules else pending.written_at
        if since is None:
            return None
        # A probe that started before the rules changed went through the old rules.
        began = event.started if isinstance(event, ProbeEvent) and event.started else event.ts
        if began < since:
            return None
        self._pending = None
        self.last = replace(self._timing(pending, ts=event.ts), effect_at=event.ts)
        return self.last

    def _timing(self, pending: _Pending, ts: float) -> SyncTiming:
        return SyncTiming(
            ts=ts,
            slice=self.slice_key,
            resource_version=pending.resource_version,
            written_at=pending.written_at,
            rules_at=pending.rules_at,
        )


def _same_version(pending: str | None, reported: str | None) -> bool:
    # None on either side means "whatever is current" (e.g. a reconciler that does not know it).
    return pending is None or reported is None or pending == reported
