"""What the panes read from a ChainTree, whichever kube-proxy mode wrote it (iptables or nftables).

iptables mode balances in KUBE-SVC-/KUBE-SVL- chains with conditional `statistic` probabilities and
DNATs in KUBE-SEP- chains, each rule with a live counter. nftables mode balances with `numgen random
mod N` in service-/local- chains (every branch a flat 1/N) and DNATs in endpoint- chains (or, since
1.36, straight from the numgen map), and kube-proxy adds no counters there. The chain and slice
panes ask these functions instead of assuming KUBE-* names, so a cluster in nftables mode shows its
real rules and says "no counters" instead of a column of zeros.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from svcwatch.kubeproxy.mode import (
    balancer_chains,
    endpoint_chain_prefix,
    has_counters,
    is_nft,
    share_key,
    shares,
)
from svcwatch.kubeproxy.rules import ChainTree, Rule

# Which mode wrote a tree, and its shares, are kube-proxy facts (`kubeproxy.mode`); the panes read
# them through here together with the presentation below.
__all__ = [
    "balancer_chains",
    "has_counters",
    "is_nft",
    "landed_counts",
    "match_summary",
    "service_paths",
    "share_key",
    "shares",
]

_IPTABLES_MATCHES = re.compile(r"(?:^|\s)(!?\s?-[ds]\s+\S+|--dport\s+\d+)")
_NFT_MATCHES = re.compile(
    r"\b(ip6? [sd]addr (?:!= )?\S+|(?:tcp|udp|sctp|th) dport \S+|numgen random mod \d+)"
)


def landed_counts(tree: ChainTree | None) -> dict[str, int] | None:
    """New connections DNATed to each `ip:port`, from the endpoint chains' DNAT counters.

    Only a connection's first packet walks the nat table, so these counters count connections.
    None when the rules carry no counters (nftables mode as kube-proxy writes it).
    """
    if tree is None:
        return {}
    if not has_counters(tree):
        return None
    endpoint_prefix = endpoint_chain_prefix(tree)
    counts: dict[str, int] = {}
    for chain, rules in tree.chains.items():
        if not chain.startswith(endpoint_prefix):
            continue
        for rule in rules:
            if rule.dnat_to:
                counts[rule.dnat_to] = counts.get(rule.dnat_to, 0) + rule.packets
    return counts


@dataclass(frozen=True, slots=True)
class ServicePath:
    """One way a new connection goes: balancer branch -> endpoint chain -> DNAT address."""

    balancer: str  # KUBE-SVC-… (or KUBE-SVL-…, nft service-…)
    endpoint: str  # KUBE-SEP-… (nft endpoint-…); "" when the branch DNATs itself (nft map)
    dnat_to: str
    packets: int  # the branch's counter: connections that took it
    share: float | None  # its effective share of new connections


def service_paths(tree: ChainTree) -> list[ServicePath]:
    """The Service's KUBE-SVC -> KUBE-SEP -> DNAT paths with counters: the evidence the chain
    pane shows first when it cannot show every rule (80x24)."""
    out: list[ServicePath] = []
    share_by_key = shares(tree)
    for balancer in sorted(balancer_chains(tree)):
        for rule in tree.chains[balancer]:
            key = share_key(rule)
            if not key:
                continue
            dnat = rule.dnat_to or next(
                (r.dnat_to for r in tree.chains.get(rule.target or "", []) if r.dnat_to), None
            )
            if dnat is None:
                continue
            endpoint = "" if rule.dnat_to else str(rule.target)
            out.append(ServicePath(balancer, endpoint, dnat, rule.packets, share_by_key.get(key)))
    return out


def match_summary(tree: ChainTree, rule: Rule) -> str:
    """The rule's matches in a few words: addresses and ports (nft map elements: their key)."""
    if not is_nft(tree):
        return _iptables_summary(rule)
    if rule.chain in tree.chains:
        return " ".join(_NFT_MATCHES.findall(rule.spec))
    key, _, _ = rule.spec.rpartition(
        " : "
    )  # a verdict-map element: `10.43.0.1 . tcp . 80 : goto …`
    return key


def _iptables_summary(rule: Rule) -> str:
    """Addresses and ports, plus what affinity and the Local policy's node check do."""
    parts = [m.strip() for m in _IPTABLES_MATCHES.findall(rule.spec)]
    if "--src-type LOCAL" in rule.spec:
        parts.append("from this node")
    if rule.recent == "rcheck":
        parts.append(f"affinity: client seen in the last {rule.sticky_seconds}s")
    elif rule.recent == "set":
        parts.append("affinity: remember client")
    return " ".join(parts)
