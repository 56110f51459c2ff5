"""Rule data: what the renderer produces and what the iptables-save parser reads back.

A `Rule` keeps its spec exactly as written (the text after `-A CHAIN `) so rendering is byte-exact,
plus the few parsed facts the dashboard needs: the jump target, the comment, the `statistic`
probability, the DNAT destination and, when read back from the kernel, packet and byte counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rule:
    """One `-A CHAIN spec` line."""

    chain: str
    spec: str
    target: str | None = None  # the -j target: a chain name, DNAT, REJECT, MARK, RETURN...
    comment: str | None = None
    probability: float | None = None  # --probability of a statistic match
    dnat_to: str | None = None  # --to-destination of a DNAT target
    packets: int = 0
    bytes: int = 0

    def line(self) -> str:
        return f"-A {self.chain} {self.spec}"

    @property
    def recent(self) -> str | None:
        """ClientIP session affinity: "rcheck" for a KUBE-SVC- rule that sends a client seen
        lately back to its endpoint (`-m recent --rcheck`), "set" for the KUBE-SEP- DNAT that
        records the client (`-m recent --set`), None for any other rule."""
        words = self.spec.split()
        if "recent" not in words:
            return None
        return "rcheck" if "--rcheck" in words else "set" if "--set" in words else None

    @property
    def sticky_seconds(self) -> int | None:
        """How long an affinity check remembers a client (`--seconds N`)."""
        words = self.spec.split()
        if self.recent != "rcheck" or "--seconds" not in words:
            return None
        value = words[words.index("--seconds") + 1]
        return int(value) if value.isdigit() else None


@dataclass(slots=True)
class Table:
    """One table's part of an iptables-restore input (or of an iptables-save dump).

    `chains` are declared with `:NAME - [0:0]` (which, under --noflush, flushes just that chain);
    `deleted` are removed with `-X NAME` after the rules.
    """

    name: str
    chains: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    policies: dict[str, str] = field(default_factory=dict)  # built-in chains: name -> ACCEPT/DROP
    deleted_after: int | None = (
        None  # kube-proxy writes its -X lines after this many rules (None: last)
    )

    def rules_of(self, chain: str) -> list[Rule]:
        return [r for r in self.rules if r.chain == chain]


@dataclass(slots=True)
class RuleSet:
    """Tables in restore order (kube-proxy writes `*filter` before `*nat`)."""

    tables: list[Table] = field(default_factory=list)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        t = Table(name)
        self.tables.append(t)
        return t


@dataclass(slots=True)
class ChainTree:
    """One Service's rules as found in a dump: entry rules, then its chains in walk order.

    `entry` holds the KUBE-SERVICES / KUBE-NODEPORTS rules that jump into the Service's chains;
    `chains` maps each of its chains (KUBE-FW-, KUBE-EXT-, KUBE-SVC-, KUBE-SVL-, KUBE-SEP-... in
    the order a packet walks them) to its rules; `filter_rules` are its filter-table rules (REJECT
    or DROP without endpoints, the source-range firewall's DROP, the health-check ACCEPT).
    `proxy_backend` says which iptables wrote the dump (iptables-nft, iptables-legacy); `node`
    which cluster node it was read on ("" for the lab's one node).
    """

    service: str
    entry: list[Rule] = field(default_factory=list)
    chains: dict[str, list[Rule]] = field(default_factory=dict)
    filter_rules: list[Rule] = field(default_factory=list)
    proxy_backend: str = ""
    node: str = ""
    affinity_seconds: int | None = None  # nftables mode: its affinity sets' timeout (ClientIP)

    def all_rules(self) -> list[Rule]:
        return [
            *self.entry,
            *(r for rules in self.chains.values() for r in rules),
            *self.filter_rules,
        ]

    def chain_names(self) -> list[str]:
        return list(self.chains)
