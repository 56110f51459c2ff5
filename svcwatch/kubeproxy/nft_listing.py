"""A rendered nftables transaction folded into `nft list table` block form.

The renderer writes kube-proxy's table as `add …` lines (what `nft -f` takes); the kernel lists it
as nested blocks (what `nft list table ip kube-proxy` prints and `nft.parse_nft_table` reads).
Folding the one into the other lets the lab compare what it wants with what the kernel has through
one reader.
"""

from __future__ import annotations

import re

from svcwatch.kubeproxy.nft import TABLE_FAMILY, TABLE_NAME

_ADD = re.compile(
    rf"^add (table|chain|rule|set|map|element) {TABLE_FAMILY} {TABLE_NAME}(?: (\S+))?(.*)$"
)


def transaction_listing(transaction: str) -> str:
    """An `add …` transaction folded into `nft list table` block form, for `parse_nft_table`.

    So the renderer's output and the kernel's listing go through one reader: the lab compares
    what it wants (this) with what the kernel has (`nft list table ip kube-proxy`).
    """
    blocks: dict[str, list[str]] = {}
    specs: dict[str, list[str]] = {}  # a set's/map's `type …`, `flags …`, `timeout …` lines
    for line in transaction.splitlines():
        found = _ADD.match(line)
        if found is None or found[1] == "table":
            continue
        kind, name, rest = found[1], found[2], found[3].strip()
        if kind in ("chain", "set", "map"):
            blocks.setdefault(f"{kind} {name}", [])
            if kind != "chain":
                specs[f"{kind} {name}"] = [p.strip() for p in rest.strip("{} ").split(" ; ")]
        elif kind == "rule":
            blocks.setdefault(f"chain {name}", []).append(rest)
        else:
            container = next(k for k in (f"set {name}", f"map {name}") if k in blocks)
            blocks[container].append(rest.strip("{} "))
    out = [f"table {TABLE_FAMILY} {TABLE_NAME} {{"]
    for block, body in blocks.items():
        out.append(f"\t{block} {{")
        out.extend(f"\t\t{spec.rstrip(' ;')}" for spec in specs.get(block, []) if spec)
        if block.startswith("chain "):
            out.extend(f"\t\t{rule}" for rule in body)
        elif body:
            out.append(f"\t\telements = {{ {', '.join(body)} }}")
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"
