"""RuleSet <-> iptables text, and one Service's chain tree out of a whole node's dump.

`to_restore_text` writes what kube-proxy feeds `iptables-restore --noflush --counters`;
`parse_save` reads `iptables-save [-c]` output (any tables, any other software's chains);
`service_tree` isolates one Service by its chain hashes, never by comment text (kube-proxy drops
comments in large clusters), and keeps each rule's packet/byte counters so the dashboard can show
which KUBE-SEP rule new connections actually took.
"""

from __future__ import annotations

import re

from svcwatch.kubeproxy import chains as names
from svcwatch.kubeproxy.rules import ChainTree, Rule, RuleSet, Table
from svcwatch.kubeproxy.syntax import make_rule, saved_probability, saved_rule, tokenize
from svcwatch.model.errors import InputError
from svcwatch.model.service import Service

__all__ = [
    "parse_save",
    "saved_form",
    "saved_probability",
    "service_tree",
    "share_of",
    "to_restore_text",
]

_COUNTED_RULE = re.compile(r"^\[(\d+):(\d+)\] (-A \S+ .*)$")
_FILTER_CHAINS = (
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
)
_ENTRY_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS")


def to_restore_text(rules: RuleSet) -> str:
    """iptables-restore input: per table `*name`, `:CHAIN - [0:0]`, `-A` and `-X` lines, COMMIT."""
    lines: list[str] = []
    for table in rules.tables:
        lines.append(f"*{table.name}")
        lines.extend(f":{c} {table.policies.get(c, '-')} [0:0]" for c in table.chains)
        cut = len(table.rules) if table.deleted_after is None else table.deleted_after
        lines.extend(r.line() for r in table.rules[:cut])
        lines.extend(f"-X {c}" for c in table.deleted)
        lines.extend(r.line() for r in table.rules[cut:])
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def parse_save(text: str) -> RuleSet:
    """Parse `iptables-save` output (with or without -c) or restore input into a RuleSet."""
    ruleset = RuleSet()
    table: Table | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = ruleset.table(line[1:])
            continue
        if table is None:
            raise InputError(
                f"line {number}: {line[:40]!r} before any *table line", field="iptables-save"
            )
        _parse_line(table, line, number)
    return ruleset


def _parse_line(table: Table, line: str, number: int) -> None:
    packets = bytes_ = 0
    counted = _COUNTED_RULE.match(line)
    if counted:
        packets, bytes_, line = int(counted[1]), int(counted[2]), counted[3]
    if line.startswith(":"):
        name, policy, *_ = line[1:].split() + ["-"]
        table.chains.append(name)
        if policy != "-":
            table.policies[name] = policy
    elif line.startswith("-A "):
        _, chain, *rest = line.split(" ", 2)
        table.rules.append(make_rule(chain, rest[0] if rest else "", packets, bytes_))
    elif line.startswith("-X "):
        table.deleted.append(line[3:].strip())
    else:
        raise InputError(f"line {number}: cannot read {line[:60]!r}", field="iptables-save")


def saved_form(rules: RuleSet) -> RuleSet:
    """`rules` as iptables-save would print them once loaded (see `syntax`); deletions dropped."""
    return RuleSet(
        [
            Table(
                t.name, list(t.chains), [saved_rule(r) for r in t.rules], policies=dict(t.policies)
            )
            for t in rules.tables
        ]
    )


def _port_chains(service: Service) -> list[tuple[str, list[str]]]:
    """Per Service port: its service-port name and its FW, EXT, SVC, SVL chains (walk order)."""
    out = []
    for port in service.ports:
        spn, proto = names.service_port_name(service, port), names.proto_of(port)
        out.append(
            (
                spn,
                [
                    names.fw_chain(spn, proto),
                    names.ext_chain(spn, proto),
                    names.svc_chain(spn, proto),
                    names.svl_chain(spn, proto),
                ],
            )
        )
    return out


def _exists(table: Table, chain: str) -> bool:
    return chain in table.chains or any(r.chain == chain for r in table.rules)


def _walk(nat: Table, roots: list[str]) -> dict[str, list[Rule]]:
    """The Service's own chains that exist, then the KUBE-SEP chains they jump to, in order."""
    found: dict[str, list[Rule]] = {}
    for chain in roots:
        if _exists(nat, chain):
            found[chain] = nat.rules_of(chain)
    for rules in list(found.values()):
        for rule in rules:
            target = rule.target or ""
            if target.startswith(names.SEP_PREFIX) and target not in found and _exists(nat, target):
                found[target] = nat.rules_of(target)
    return found


def _filter_rule_matches(rule: Rule, spns: list[str], service: Service) -> bool:
    if rule.chain not in _FILTER_CHAINS or rule.target not in ("REJECT", "DROP", "ACCEPT"):
        return False
    if rule.comment is not None:
        return any(rule.comment.startswith(spn + " ") for spn in spns)
    tokens = tokenize(rule.spec)
    ip = f"{service.cluster_ip}/32"
    return ip in tokens and any(str(p.port) in tokens for p in service.ports)


def service_tree(saved: RuleSet, service: Service, proxy_backend: str = "") -> ChainTree:
    """One Service's entry rules, chains (walk order) and filter-table rules from a dump.

    The filter rules are its REJECT/DROP rules (no endpoints, no local endpoints, the
    loadBalancerSourceRanges firewall) and the health-check nodePort's ACCEPT.

    Args:
        saved: a parsed dump (`parse_save`), or `saved_form(render(...))` for what should be there.
        service: the Service to isolate; found by hash, so comment-less dumps work too.
        proxy_backend: which iptables wrote the dump (`mode.flavour_of_version`), kept in the tree.
    """
    tree = ChainTree(service=service.key, proxy_backend=proxy_backend)
    nat = next((t for t in saved.tables if t.name == "nat"), Table("nat"))
    per_port = _port_chains(service)
    own = {chain for _, chains in per_port for chain in chains}
    # KUBE-SERVICES before KUBE-NODEPORTS (the order packets meet them), whatever the dump's order.
    tree.entry = [r for chain in _ENTRY_CHAINS for r in nat.rules_of(chain) if r.target in own]
    for _, chains in per_port:
        tree.chains.update(_walk(nat, chains))
    filt = next((t for t in saved.tables if t.name == "filter"), Table("filter"))
    spns = [spn for spn, _ in per_port]
    tree.filter_rules = [
        r
        for chain in _FILTER_CHAINS
        for r in filt.rules_of(chain)
        if _filter_rule_matches(r, spns, service)
    ]
    return tree


def share_of(tree: ChainTree) -> dict[str, float]:
    """Each KUBE-SEP chain's share of new connections, from the statistic rules as stored.

    A rule with probability p takes p of what reached it; the last rule takes the rest. Local
    (KUBE-SVL-) chains count only for ports that have no KUBE-SVC- chain. ClientIP-affinity
    checks (`-m recent --rcheck`) come first but match only clients seen before, so they take
    no share of new clients: they are skipped, not counted as catch-alls.
    """
    shares: dict[str, float] = {}
    svc_hashes = {c[len(names.SVC_PREFIX) :] for c in tree.chains if c.startswith(names.SVC_PREFIX)}
    for chain, rules in tree.chains.items():
        local_only = (
            chain.startswith(names.SVL_PREFIX) and chain[len(names.SVL_PREFIX) :] not in svc_hashes
        )
        if not (chain.startswith(names.SVC_PREFIX) or local_only):
            continue
        remaining = 1.0
        for rule in rules:
            if not (rule.target or "").startswith(names.SEP_PREFIX) or rule.recent == "rcheck":
                continue
            taken = remaining if rule.probability is None else remaining * rule.probability
            shares[rule.target or ""] = shares.get(rule.target or "", 0.0) + taken
            remaining -= taken
    return shares
