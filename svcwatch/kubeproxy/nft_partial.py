"""kube-proxy's partial sync in nftables mode: from the table it last wrote, only what changed.

On a full sync kube-proxy rewrites its whole table; afterwards (`tryPartialSync` in proxier.go)
one transaction touches only the Services that changed: their chains are added and flushed and
their rules written again, map and set elements are added, replaced (delete + add when the verdict
changed) or deleted (`nftElementStorage`), affinity sets that went away are deleted. A chain that
went away is only flushed: with kernels before 6.2 a chain a map element pointed at until a moment
ago cannot be deleted yet, so kube-proxy deletes it on a later sync, once it has been stale for a
second (`staleChains`). `partial_batch` computes that transaction from two renderings of the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from svcwatch.kubeproxy.nft import TABLE_FAMILY, TABLE_NAME

_T = f"{TABLE_FAMILY} {TABLE_NAME}"
_ADD = re.compile(rf"^add (table|chain|rule|set|map|element) {_T}(?: (\S+))?(.*)$")
_COMMENT = re.compile(r'\s*comment "(?:[^"\\]|\\.)*"')
STALE_SECONDS = 1.0  # kube-proxy deletes a stale chain once it has been stale this long


@dataclass(slots=True)
class _Table:
    """A rendered table split into what a partial sync compares."""

    base: list[str] = field(default_factory=list)  # table, maps, base sets and chains: untouched
    chains: dict[str, str] = field(default_factory=dict)  # per-Service chain -> its `add chain`
    rules: dict[str, list[str]] = field(default_factory=dict)  # chain -> its `add rule` lines
    elements: dict[tuple[str, str], str] = field(default_factory=dict)  # (container, key) -> line
    affinity: dict[str, str] = field(default_factory=dict)  # affinity set -> its `add set`


def _element_key(rest: str) -> str:
    """`{ 10.43.0.1 . tcp . 80 comment "x" : goto c }` -> `10.43.0.1 . tcp . 80`."""
    inner = rest.strip().removeprefix("{").removesuffix("}").strip()
    key = inner.rpartition(" : ")[0] if " : " in inner else inner
    return _COMMENT.sub("", key).strip()


def _split(text: str) -> _Table:
    table = _Table()
    for line in text.splitlines():
        found = _ADD.match(line)
        if found is None:
            continue
        kind, name, rest = found[1], found[2] or "", found[3]
        if kind == "chain" and "/" in name:
            table.chains[name] = line
        elif kind == "set" and name.startswith("affinity-"):
            table.affinity[name] = line
        elif kind == "rule":
            table.rules.setdefault(name, []).append(line)
        elif kind == "element":
            table.elements[(name, _element_key(rest))] = line
        else:
            table.base.append(line)
    return table


def stale_chains(old: str, new: str) -> set[str]:
    """The per-Service chains `old` had and `new` has not."""
    return set(_split(old).chains) - set(_split(new).chains)


def partial_batch(old: str, new: str, delete: frozenset[str] = frozenset()) -> str | None:
    """The transaction that turns the table `old` into `new`; None when the base (table, maps,
    base chains and their rules) differs, which takes a full sync. `delete` are stale chains,
    flushed by an earlier sync, that are now old enough to delete."""
    before, after = _split(old), _split(new)
    fixed = [c for c in after.rules if c not in after.chains]
    if before.base != after.base or any(before.rules.get(c) != after.rules[c] for c in fixed):
        return None
    out = [f"delete chain {_T} {name}" for name in sorted(delete)]
    out += [line for name, line in after.affinity.items() if name not in before.affinity]
    for name, line in after.chains.items():  # changed or new chains: add, flush, rules again
        if before.rules.get(name) != after.rules.get(name) or name not in before.chains:
            out += [line, f"flush chain {_T} {name}", *after.rules.get(name, [])]
    out += [f"flush chain {_T} {name}" for name in before.chains if name not in after.chains]
    for (container, key), line in before.elements.items():
        if after.elements.get((container, key)) != line:  # gone, or its verdict changed
            out.append(f"delete element {_T} {container} {{ {key} }}")
    out += [ln for k, ln in after.elements.items() if before.elements.get(k) != ln]
    out += [f"delete set {_T} {name}" for name in before.affinity if name not in after.affinity]
    return "\n".join(out) + "\n" if out else ""
