"""Upstream kube-proxy's own comparison of restore texts, and its golden files in tests/data.

kube-proxy walks its Services in Go map order, so its tests compare rule texts only after
`sortIPTablesRules` (pkg/proxy/iptables/proxier_test.go): tables by name; chains KUBE-NODEPORTS,
KUBE-SERVICES, then other KUBE-* chains, then the rest, each group alphabetically; every chain's
rules grouped under it in their written order, except KUBE-NODEPORTS and KUBE-SERVICES, whose
rules are stably sorted by the service name in their comment (the nat KUBE-SERVICES "must be the
last rule" rule staying last). `upstream_sorted` is that function, so a rendering compares to
upstream's expected text with exactly upstream's masking and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from svcwatch.kubeproxy.syntax import tokenize

UPSTREAM = Path(__file__).resolve().parents[1] / "data" / "iptables" / "upstream"
_LAST_RULE = "must be the last rule"


@dataclass
class _Table:
    name: str
    chains: list[str] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


def golden(name: str) -> str:
    """A golden file without its `#` header lines."""
    lines = (UPSTREAM / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#"))


def golden_blocks(name: str) -> dict[str, str]:
    """`## title` blocks of a golden file: title -> the lines under it."""
    blocks: dict[str, str] = {}
    title = None
    for line in (UPSTREAM / name).read_text().splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            blocks[title] = ""
        elif title is not None and not line.startswith("#"):
            blocks[title] += line
    return blocks


def _parse(text: str) -> list[_Table]:
    tables: list[_Table] = []
    for line in text.splitlines():
        if line.startswith("*"):
            tables.append(_Table(line[1:]))
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            tables[-1].chains.append(chain)
            tables[-1].rules.setdefault(chain, [])
        elif line.startswith("-A "):
            tables[-1].rules[line.split()[1]].append(line)
        elif line.startswith("-X "):
            tables[-1].deleted.append(line.split()[1])
    return tables


def _chain_key(chain: str) -> tuple[int, str]:
    order = {"KUBE-NODEPORTS": 0, "KUBE-SERVICES": 1}
    return (order.get(chain, 2 if chain.startswith("KUBE-") else 3), chain)


def _service_name(rule: str) -> str:
    """orderByCommentServiceName: the comment up to its first space or colon."""
    tokens = tokenize(rule)
    text = tokens[tokens.index("--comment") + 1]
    cut = min((i for i in (text.find(" "), text.find(":")) if i >= 0), default=len(text))
    return text[:cut]


def _rule_key(table: str, chain: str, rule: str) -> tuple[bool, str]:
    last = table == "nat" and chain == "KUBE-SERVICES" and _LAST_RULE in rule
    return (last, "" if last else _service_name(rule))


def upstream_sorted(text: str) -> str:
    """sortIPTablesRules(text), then IPTablesDump.String()."""
    out: list[str] = []
    for table in sorted(_parse(text), key=lambda t: t.name):
        chains = sorted(table.chains, key=_chain_key)
        out.append(f"*{table.name}")
        out.extend(f":{c} - [0:0]" for c in chains)
        for chain in chains:
            rules = table.rules[chain]
            if chain in ("KUBE-NODEPORTS", "KUBE-SERVICES"):
                rules = sorted(rules, key=lambda r, c=chain: _rule_key(table.name, c, r))
            out.extend(rules)
        out.extend(f"-X {c}" for c in chains if c in table.deleted)
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def chain_lines(text: str, table: str, chain: str) -> str:
    """One chain's rules in a restore text (assertIPTablesChainEqual's view)."""
    for parsed in _parse(text):
        if parsed.name == table:
            return "".join(line + "\n" for line in parsed.rules.get(chain, []))
    return ""
