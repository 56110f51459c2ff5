"""What a watcher hands downstream: kopf's event vocabulary, from either source.

Both sources (the lab's object store and a cluster through kopf) deliver `WatchEvent`s to one
`Handler`: the type (`ADDED`/`MODIFIED`/`DELETED`), the object's body, the previous body and a
field-level diff, as kopf's event handlers receive them. `ObjectTracker` is what makes the two
sources behave the same: it remembers the last body per object and turns raw observations into
events, so a replayed identical object (kmock and real API servers replay on reconnect, the lab
re-reads a file on every inotify batch) is no event, and a replayed changed one is a MODIFIED.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from svcwatch.watch.diff import DiffItem, describe, diff

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
SERVICE = "Service"
ENDPOINT_SLICE = "EndpointSlice"


@dataclass(frozen=True)
class WatchEvent:
    """One change of one object, as a kopf event handler would see it."""

    type: str  # ADDED | MODIFIED | DELETED
    kind: str  # Service | EndpointSlice
    body: Mapping[str, Any]  # the new body; the last known body for DELETED
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    diff: tuple[DiffItem, ...]
    seen_at: float  # time.time() when the watcher first saw this version

    @property
    def namespace(self) -> str:
        return str(self.body.get("metadata", {}).get("namespace") or "default")

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name") or "")

    @property
    def key(self) -> str:
        """`namespace/name`, as SliceChanged and kube-proxy's comments print it."""
        return f"{self.namespace}/{self.name}"

    @property
    def resource_version(self) -> str | None:
        version = self.body.get("metadata", {}).get("resourceVersion")
        return None if version is None else str(version)

    def describe(self) -> tuple[str, ...]:
        """The diff as human lines (`ports[0].port: 12345 -> 12346`)."""
        return describe(self.diff)


Handler = Callable[[WatchEvent], None]


class ObjectTracker:
    """The last known body of every watched object; turns observations into WatchEvents.

    Thread-safe, so a source may observe from its watch thread while another thread reads
    `current`. Bodies are deep-copied on the way in: events never share mutable state with the
    source's own structures.
    """

    def __init__(self) -> None:
        self._bodies: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def observe(self, kind: str, body: Mapping[str, Any], seen_at: float) -> WatchEvent | None:
        """The object exists with this body; an ADDED/MODIFIED event, or None if nothing changed."""
        new = copy.deepcopy(dict(body))
        key = (kind, _key_of(new))
        with self._lock:
            old = self._bodies.get(key)
            changes = diff(old, new)
            if old is not None and not changes:
                return None  # replayed or re-read without a change a user made
            self._bodies[key] = new
        event_type = ADDED if old is None else MODIFIED
        return WatchEvent(event_type, kind, new, old, new, changes, seen_at)

    def forget(self, kind: str, body: Mapping[str, Any], seen_at: float) -> WatchEvent | None:
        """The object is gone; a DELETED event with its last body, or None if it was unknown."""
        key = (kind, _key_of(body))
        with self._lock:
            old = self._bodies.pop(key, None)
        if old is None:
            return None
        return WatchEvent(DELETED, kind, old, old, None, diff(old, None), seen_at)

    def current(self, kind: str) -> list[dict[str, Any]]:
        """Copies of the last known bodies of this kind."""
        with self._lock:
            return [copy.deepcopy(b) for (k, _), b in self._bodies.items() if k == kind]


def _key_of(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"
