"""The demo objects on a real cluster: create them, guard the slice, save and restore its content.

svcwatch breaks a Service by patching one EndpointSlice, so this module is where it promises to be
safe: it edits only a slice labelled `endpointslice.kubernetes.io/managed-by: svcwatch` (another
one only with --take-over), never anything in kube-system, and it writes the slice's original
`endpoints` and `ports` to a state file *before* its first change, so the slice can be put back on
quit, or by `svcwatch cluster restore` after a crash. Only `endpoints` and `ports` are ever patched,
so restoring those two fields restores exactly what was there.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svcwatch.cluster.api import ClusterApi
from svcwatch.locations import state_dir
from svcwatch.model.endpointslice import MANAGED_BY_LABEL
from svcwatch.model.errors import SetupError

OWNER = "svcwatch"
PROTECTED_NAMESPACES = ("kube-system",)
PATCHED_FIELDS = ("endpoints", "ports")  # the only fields svcwatch ever changes on a slice


def refuse_protected(namespace: str) -> None:
    if namespace in PROTECTED_NAMESPACES:
        raise SetupError(
            f"svcwatch never touches namespace {namespace}: use a demo namespace (-n NAMESPACE)"
        )


def slice_manager(body: Mapping[str, Any]) -> str | None:
    return ((body.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL)


def check_editable(body: Mapping[str, Any], *, take_over: bool) -> bool:
    """SetupError unless svcwatch may patch this slice; True when adopted (not owned)."""
    meta = body.get("metadata") or {}
    refuse_protected(str(meta.get("namespace")))
    manager = slice_manager(body)
    if manager == OWNER:
        return False
    if not take_over:
        raise SetupError(
            f"EndpointSlice {meta.get('namespace')}/{meta.get('name')} is managed by "
            f"{manager or 'nobody'!r}, not svcwatch: pass --take-over to adopt it (it is "
            "restored on exit)"
        )
    return True


# --- saved originals ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavedSlice:
    """A slice's content before svcwatch's first change, as written to the state file."""

    path: Path
    context: str
    namespace: str
    name: str
    original: dict[str, Any]  # the PATCHED_FIELDS, as the server returned them (None = absent)
    saved_at: float
    adopted: bool = False


def state_root() -> Path:
    return state_dir() / "cluster"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part) or "_"


def saved_path(context: str, namespace: str, name: str) -> Path:
    return state_root() / _safe(context) / f"{_safe(namespace)}__{_safe(name)}.json"


def save_original(context: str, body: Mapping[str, Any], *, adopted: bool) -> SavedSlice:
    """Record the slice's content unless a record exists (after a crash, the older one wins)."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    path = saved_path(context, namespace, name)
    if path.exists():
        return load_saved(path)
    record = {
        "context": context,
        "namespace": namespace,
        "name": name,
        "adopted": adopted,
        "saved_at": time.time(),
        "original": {f: body.get(f) for f in PATCHED_FIELDS},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return load_saved(path)


def load_saved(path: Path) -> SavedSlice:
    try:
        data = json.loads(path.read_text())
        return SavedSlice(
            path=path,
            context=data["context"],
            namespace=data["namespace"],
            name=data["name"],
            original=data["original"],
            saved_at=float(data["saved_at"]),
            adopted=bool(data.get("adopted")),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SetupError(
            f"cannot read saved slice {path}: {exc}; delete it if the slice is fine"
        ) from None


def list_saved(context: str | None = None) -> list[SavedSlice]:
    """Every saved original (of one context, or all), oldest first."""
    root = state_root() if context is None else state_root() / _safe(context)
    found = [load_saved(p) for p in sorted(root.rglob("*.json"))] if root.is_dir() else []
    return sorted(found, key=lambda s: s.saved_at)


def restore(api: ClusterApi, saved: SavedSlice) -> bool:
    """Patch the slice back to its saved `endpoints` and `ports`, then forget the record.

    Returns False when the slice no longer exists (the record is dropped: nothing to restore).
    """
    refuse_protected(saved.namespace)
    if api.read_or_none("EndpointSlice", saved.namespace, saved.name) is None:
        saved.path.unlink(missing_ok=True)
        return False
    # In a merge patch, null deletes a field: an originally absent list comes back absent.
    api.merge_patch("EndpointSlice", saved.namespace, saved.name, dict(saved.original))
    saved.path.unlink(missing_ok=True)
    return True
