"""The jump rules kube-proxy installs once, from the built-in chains into its own chains.

kube-proxy does not write these in its restore input (that would replace every rule in
PREROUTING, INPUT...): on a full sync it `iptables -I`s each one that is missing, in the order of
its `iptablesJumpChains` table, after kubelet has made its own KUBE-FIREWALL jumps. Prepending in
list order leaves each built-in chain holding the jumps in reverse list order, kubelet's last,
which is what a k3s node's `iptables-save` shows. An empty KUBE-PROXY-CANARY chain in mangle, nat
and filter lets kube-proxy notice when something flushed the tables.
"""

from __future__ import annotations

from svcwatch.kubeproxy.rules import RuleSet
from svcwatch.kubeproxy.syntax import make_rule

_NEW = "-m conntrack --ctstate NEW"
_PUBLIC = "kubernetes externally-visible service portals"
_LB_FIREWALL = "kubernetes load balancer firewall"
# iptablesJumpChains, in kube-proxy's order: (table, source chain, extra matches, comment, target).
JUMPS: tuple[tuple[str, str, str, str, str], ...] = (
    ("filter", "INPUT", _NEW, _PUBLIC, "KUBE-EXTERNAL-SERVICES"),
    ("filter", "FORWARD", _NEW, _PUBLIC, "KUBE-EXTERNAL-SERVICES"),
    ("filter", "INPUT", "", "kubernetes health check service ports", "KUBE-NODEPORTS"),
    ("filter", "FORWARD", _NEW, "kubernetes service portals", "KUBE-SERVICES"),
    ("filter", "OUTPUT", _NEW, "kubernetes service portals", "KUBE-SERVICES"),
    ("filter", "FORWARD", "", "kubernetes forwarding rules", "KUBE-FORWARD"),
    ("filter", "INPUT", _NEW, _LB_FIREWALL, "KUBE-PROXY-FIREWALL"),
    ("filter", "OUTPUT", _NEW, _LB_FIREWALL, "KUBE-PROXY-FIREWALL"),
    ("filter", "FORWARD", _NEW, _LB_FIREWALL, "KUBE-PROXY-FIREWALL"),
    ("nat", "OUTPUT", "", "kubernetes service portals", "KUBE-SERVICES"),
    ("nat", "PREROUTING", "", "kubernetes service portals", "KUBE-SERVICES"),
    ("nat", "POSTROUTING", "", "kubernetes postrouting rules", "KUBE-POSTROUTING"),
)
# kubelet's own jumps to KUBE-FIREWALL, already there when kube-proxy starts on a k3s node.
KUBELET_JUMPS = (("filter", "INPUT", "KUBE-FIREWALL"), ("filter", "OUTPUT", "KUBE-FIREWALL"))
CANARY_CHAIN = "KUBE-PROXY-CANARY"
CANARY_TABLES = ("mangle", "nat", "filter")


def jump_rules() -> RuleSet:
    """The hook rules as restore input for a fresh node (see `render.hook_rules`)."""
    ruleset = RuleSet()
    order: dict[tuple[str, str], list[str]] = {}
    for table, source, target in KUBELET_JUMPS:
        order.setdefault((table, source), []).append(f"-j {target}")
    for table, source, extra, comment, target in JUMPS:
        jump = f'-m comment --comment "{comment}" -j {target}'
        order.setdefault((table, source), []).insert(0, f"{extra} {jump}" if extra else jump)
        if target not in ruleset.table(table).chains:
            ruleset.table(table).chains.append(target)
    for table, _source, target in KUBELET_JUMPS:
        if target not in ruleset.table(table).chains:
            ruleset.table(table).chains.append(target)
    for name in CANARY_TABLES:
        ruleset.table(name).chains.append(CANARY_CHAIN)
    for (table, source), specs in order.items():
        ruleset.table(table).rules.extend(make_rule(source, spec) for spec in specs)
    return ruleset
