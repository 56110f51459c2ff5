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

from svcwatch.kubeproxy import nft
from svcwatch.kubeproxy.chains import SEP_PREFIX, SVC_PREFIX, SVL_PREFIX
from svcwatch.kubeproxy.restore import share_of
from svcwatch.kubeproxy.rules import ChainTree, Rule

_IPTABLES_MATCHES = re.compile(r"(?:^|\s)(!?\s?-[ds]\s+\S+|--dport\s+\d+)")
_NFT_MATCHES = re.compile(
    r"\b(ip6? [sd]addr (?:!= )?\S+|(?:tcp|udp|sctp|th) dport \S+|numgen random mod \d+)"
)


def is_nft(tree: ChainTree | None) -> bool:
    """Whether kube-proxy's nftables mode wrote these rules (table ip kube-proxy)."""
    return tree is not None and tree.backend == nft.BACKEND


def balancer_chains(tree: ChainTree) -> set[str]:
    """The chains whose branches pick an endpoint (their rules get a share column)."""
    prefixes = (nft.SERVICE_PREFIX, nft.LOCAL_PREFIX) if is_nft(tree) else (SVC_PREFIX, SVL_PREFIX)
    return {chain for chain in tree.chains if chain.startswith(prefixes)}


def shares(tree: ChainTree) -> dict[str, float]:
    """Each endpoint's share of new connections, keyed as `share_key` keys a branch rule."""
    return nft.nft_share_of(tree) if is_nft(tree) else share_of(tree)


def share_key(rule: Rule) -> str:
    """The key of `shares` for one branch: its target chain, or `ip:port` for an nft dnat map."""
    if rule.target == "dnat" and rule.dnat_to:
        return rule.dnat_to
    return rule.target or ""


def has_counters(tree: ChainTree) -> bool:
    """iptables counts every rule; kube-proxy's nftables rules count only if someone added them."""
    return not is_nft(tree) or any(" counter" in f" {r.spec}" for r in tree.all_rules())


def landed_counts(tree: ChainTree | None) -> dict[str, int] | None:
    """New connections DNATed to each `ip:port`, from the endpoint chains' DNAT counters.

    Only a connection's first packet walks the nat table, so these counters count connections.
    None when the rules carry no counters (nftables mode as kube-proxy writes it).
    """
    if tree is None:
        return {}
    if not has_counters(tree):
        return None
    endpoint_prefix = nft.ENDPOINT_PREFIX if is_nft(tree) else SEP_PREFIX
    counts: dict[str, int] = {}
    for chain, rules in tree.chains.items():
        if not chain.startswith(endpoint_prefix):
            continue
        for rule in rules:
            if rule.dnat_to:
                counts[rule.dnat_to] = counts.get(rule.dnat_to, 0) + rule.packets
    return counts


def match_summary(tree: ChainTree, rule: Rule) -> str:
    """The rule's matches in a few words: addresses and ports (nft map elements: their key)."""
    if not is_nft(tree):
        return " ".join(m.strip() for m in _IPTABLES_MATCHES.findall(rule.spec))
    if rule.chain in tree.chains:
        return " ".join(_NFT_MATCHES.findall(rule.spec))
    key, _, _ = rule.spec.rpartition(
        " : "
    )  # a verdict-map element: `10.43.0.1 . tcp . 80 : goto …`
    return key
