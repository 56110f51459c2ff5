"""Field-level diffs of two object bodies, kopf-style, and the lines a person reads.

A diff is a tuple of `(op, path, old, new)` items, as kopf's `kopf.Diff` is: `op` is `add`,
`change` or `remove`, `path` the tuple of keys and list indices that leads to the value. Unlike
kopf, lists are compared element by element, because the interesting change in an EndpointSlice is
"endpoint 1 went away", not "the endpoints list changed". Fields the API server rewrites on its own
(resourceVersion, managedFields, uid...) are left out: they say nothing about what a change did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DiffItem = tuple[str, tuple[str | int, ...], Any, Any]

# Written by the API server (or the lab's store) on every write; never what a user changed.
VOLATILE_METADATA = frozenset(
    {"resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink"}
)
# The lab store stamps this annotation on every write; it times the write, it is not content.
HIDDEN_ANNOTATIONS = frozenset({"svcwatch.dev/written-at"})


def content(body: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body without the API server's own bookkeeping fields (see VOLATILE_METADATA)."""
    if body is None:
        return {}
    out = dict(body)
    meta = out.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = {k: v for k, v in meta.items() if k not in VOLATILE_METADATA}
    return out


def diff(old: Any, new: Any) -> tuple[DiffItem, ...]:
    """The field-level differences between two bodies (or any JSON-like values).

    Args:
        old: the previous body, or None when the object is new.
        new: the current body, or None when the object is gone.

    Returns:
        `(op, path, old, new)` items in document order; empty when nothing a user wrote changed.
    """
    if isinstance(old, Mapping) or isinstance(new, Mapping):
        old = content(old) if isinstance(old, Mapping) else old
        new = content(new) if isinstance(new, Mapping) else new
    return tuple(_diff(old, new, ()))


def _diff(old: Any, new: Any, path: tuple[str | int, ...]) -> list[DiffItem]:
    if old == new:
        return []
    if old is None:
        return [("add", path, None, new)]
    if new is None:
        return [("remove", path, old, None)]
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        items: list[DiffItem] = []
        for key in [*old.keys(), *(k for k in new.keys() if k not in old)]:
            items.extend(_diff(old.get(key), new.get(key), (*path, key)))
        return items
    if _is_list(old) and _is_list(new):
        items = []
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else None
            after = new[index] if index < len(new) else None
            items.extend(_diff(before, after, (*path, index)))
        return items
    return [("change", path, old, new)]


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def describe(items: Sequence[DiffItem]) -> tuple[str, ...]:
    """One human line per diff item, e.g. `ports[0].port: 12345 -> 12346`.

    Added or removed endpoints read as `+ endpoints[1] 10.42.0.142 ready`; the store's write
    timestamp annotation is left out (it changes on every write).
    """
    lines: list[str] = []
    for op, path, old, new in items:
        if _is_hidden(path, old if op == "remove" else new):
            continue
        where = format_path(path)
        if op == "change":
            lines.append(f"{where}: {_short(old)} -> {_short(new)}")
        elif op == "add":
            lines.append(f"+ {where} {_summary(path, new)}".replace("+ . ", "+ "))
        else:
            lines.append(f"- {where} {_summary(path, old)}".replace("- . ", "- "))
    return tuple(lines)


def format_path(path: Sequence[str | int]) -> str:
    """`('ports', 0, 'port')` -> `ports[0].port`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "."


def _is_hidden(path: tuple[str | int, ...], value: Any) -> bool:
    if path[:2] != ("metadata", "annotations"):
        return False
    if len(path) == 3:
        return path[2] in HIDDEN_ANNOTATIONS
    # The whole annotations mapping came or went: hidden if it holds only hidden keys.
    return isinstance(value, Mapping) and set(value) <= HIDDEN_ANNOTATIONS


def _summary(path: tuple[str | int, ...], value: Any) -> str:
    """A compact rendering of an added/removed value; endpoints read as `address conditions`."""
    if len(path) == 2 and path[0] == "endpoints" and isinstance(value, Mapping):
        return _endpoint_summary(value)
    if not path and isinstance(value, Mapping):  # a whole object came or went
        meta = value.get("metadata") or {}
        return (
            f"{value.get('kind', 'object')} {meta.get('namespace') or 'default'}/{meta.get('name')}"
        )
    return _short(value)


def _endpoint_summary(endpoint: Mapping[str, Any]) -> str:
    addresses = endpoint.get("addresses") or []
    address = ",".join(str(a) for a in addresses) if _is_list(addresses) else str(addresses)
    conditions = endpoint.get("conditions") or {}
    words = []
    if isinstance(conditions, Mapping):
        # Kubernetes' defaults: ready/serving absent = true, terminating absent = false.
        words.append("ready" if conditions.get("ready") is not False else "not-ready")
        if conditions.get("serving") is False:
            words.append("not-serving")
        if conditions.get("terminating") is True:
            words.append("terminating")
    return " ".join([address, *words])


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, str):
        text = value if value else '""'
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {_short(v, limit)}" for k, v in value.items()) + "}"
    elif _is_list(value):
        text = "[" + ", ".join(_short(v, limit) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
