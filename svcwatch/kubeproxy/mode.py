"""kube-proxy's mode, in one place: which mode and flavour wrote a rules dump, and a Service's view.

kube-proxy writes a Service in one of two shapes. iptables mode (`iptables-save`; the flavour is
iptables' backend, `iptables-nft` or `iptables-legacy`) walks KUBE-SERVICES -> KUBE-SVC-
(conditional `statistic` probabilities) -> KUBE-SEP- -> DNAT, every rule with a live counter.
nftables mode (`nft list table ip kube-proxy`) looks the destination up in verdict maps and picks
an endpoint with `numgen random mod N` (a flat 1/N each) in service-/local- chains -> endpoint-
chains -> dnat, and carries no counters. The lab, the cluster's node reader and the panes all ask
this module which shape they hold instead of deciding it each their own way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from svcwatch.kubeproxy import chains as names
from svcwatch.kubeproxy import nft
from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.model.errors import InputError
from svcwatch.model.service import Service

IPTABLES, NFTABLES = "iptables", nft.BACKEND
IPTABLES_NFT, IPTABLES_LEGACY = "iptables-nft", "iptables-legacy"
PROXY_MODES = (IPTABLES, NFTABLES)
_VERSION = re.compile(r"iptables(?:-save)? v(\d+)\.(\d+)\.(\d+)(?: \((nf_tables|legacy)\))?")
_REJECTS = ("REJECT", "reject", nft.REJECT_CHAIN)


@dataclass(frozen=True)
class RulesDump:
    """A node's kube-proxy rules as read: the mode, the flavour that wrote them, the text."""

    mode: str  # iptables | nftables
    flavour: str  # iptables-nft | iptables-legacy | iptables (unknown) | nftables
    text: str


def flavour_of_version(version_output: str) -> str:
    """`iptables --version` (or an `iptables-save` header) -> iptables-nft or iptables-legacy.

    iptables before 1.8 had only the legacy backend and prints no "(legacy)" suffix.
    """
    found = _VERSION.search(version_output)
    if not found:
        raise InputError(f"not iptables --version output: {version_output.strip()[:60]!r}")
    return IPTABLES_NFT if found[4] == "nf_tables" else IPTABLES_LEGACY


def identify(text: str, command: str = "") -> RulesDump:
    """Which mode wrote `text`: an nft listing with `table ip kube-proxy` is nftables mode, anything
    else an `iptables-save` dump whose header (or, failing that, the command) names the flavour."""
    if nft.is_nft_mode(text):
        return RulesDump(NFTABLES, NFTABLES, text)
    header = text.splitlines()[0] if text else ""
    try:
        flavour = flavour_of_version(header)
    except InputError:
        flavour = IPTABLES_LEGACY if "legacy" in command else IPTABLES
    return RulesDump(IPTABLES, flavour, text)


def service_view(dump: RulesDump, service: Service) -> ChainTree:
    """One Service's entry rules, chains (walk order) and reject/drop rules, whichever the mode."""
    if dump.mode == NFTABLES:
        return nft.service_tree_nft(dump.text, service)
    from svcwatch.kubeproxy.restore import parse_save, service_tree

    return service_tree(parse_save(dump.text), service, proxy_backend=dump.flavour)


# --- what a tree says, per mode ----------------------------------------------------------------


def is_nft(tree: ChainTree | None) -> bool:
    """Whether kube-proxy's nftables mode wrote these rules (table ip kube-proxy)."""
    return tree is not None and tree.proxy_backend == NFTABLES


def balancer_chains(tree: ChainTree) -> set[str]:
    """The chains whose branches pick an endpoint (their rules get a share column)."""
    prefixes = (
        (nft.SERVICE_PREFIX, nft.LOCAL_PREFIX)
        if is_nft(tree)
        else (names.SVC_PREFIX, names.SVL_PREFIX)
    )
    return {chain for chain in tree.chains if chain.startswith(prefixes)}


def endpoint_chain_prefix(tree: ChainTree) -> str:
    """endpoint- (nftables) or KUBE-SEP- (iptables): the chains that DNAT."""
    return nft.ENDPOINT_PREFIX if is_nft(tree) else names.SEP_PREFIX


def shares(tree: ChainTree) -> dict[str, float]:
    """Each endpoint's share of new connections, keyed as `share_key` keys a branch rule."""
    from svcwatch.kubeproxy.restore import share_of

    return nft.nft_share_of(tree) if is_nft(tree) else share_of(tree)


def share_key(rule: Rule) -> str:
    """The key of `shares` for one branch: its target chain, or `ip:port` for an nft dnat map.

    A ClientIP-affinity check gets "" (no share): it only matches clients seen before, so it
    takes none of the new ones, although it jumps to the same KUBE-SEP- (or endpoint-) as a
    statistic (numgen) branch.
    """
    if rule.recent == "rcheck" or " @affinity-" in f" {rule.spec}":  # nft: `ip saddr @affinity-…`
        return ""
    if rule.target == "dnat" and rule.dnat_to:
        return rule.dnat_to
    return rule.target or ""


def has_counters(tree: ChainTree) -> bool:
    """iptables counts every rule; kube-proxy's nftables rules count only if someone added them."""
    return not is_nft(tree) or any(" counter" in f" {r.spec}" for r in tree.all_rules())


def affinity_seconds(tree: ChainTree | None) -> int | None:
    """ClientIP affinity's timeout: iptables' `-m recent --rcheck --seconds N` rules, nftables'
    affinity sets' `timeout`; None without affinity."""
    if tree is None:
        return None
    if is_nft(tree):
        return tree.affinity_seconds
    return next((r.sticky_seconds for r in tree.all_rules() if r.recent == "rcheck"), None)


def rejects(tree: ChainTree | None) -> bool:
    """Whether the Service's no-endpoint rules reject (iptables' REJECT, nftables' reject-chain)."""
    return tree is not None and any(r.target in _REJECTS for r in tree.filter_rules)
