"""ChainPane: the Service's iptables chain tree as the kernel has it, with live counters.

Rules are read back from the kernel (never taken from the renderer), so what the pane shows is
what packets really walk: entry rules (KUBE-SERVICES / KUBE-NODEPORTS: cluster IP, external IPs,
load-balancer IPs, nodePort) -> KUBE-FW (source ranges) -> KUBE-EXT -> KUBE-SVC / KUBE-SVL ->
KUBE-SEP -> DNAT. `statistic` probabilities are also shown as effective shares, because "0.5 then
1.0" really means 50% / 50%; ClientIP-affinity checks show how long a client sticks instead of a
share, since they only catch returning clients. Rules that appeared in the latest sync are
highlighted for a while.
In kube-proxy's nftables mode the pane shows table ip kube-proxy's maps and chains instead
(service-ips -> external-/service- -> endpoint- -> dnat), with numgen's flat 1/N shares. That table
has no counters, so each DNAT rule shows the new connections the capture saw land on its endpoint
(SYNs onto cni0 since the slice last changed), and the pane says so.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from svcwatch.explain import chain_view
from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.model.events import SyncTiming

HIGHLIGHT_SECONDS = 4.0


class ChainPane(VerticalScroll):
    """Entry rules, then each chain of the Service with its rules, counters and shares."""

    COMPONENT_CLASSES = {
        "chain--name",
        "chain--counter",
        "chain--jump",
        "chain--changed",
        "chain--dim",
        "chain--reject",
    }

    def __init__(self, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.clock = clock
        self.chain_tree: ChainTree | None = None
        self.changed_at: dict[str, float] = {}  # rule line -> when it appeared
        self.captured: dict[str, int] = {}  # endpoint ip:port -> new connections in the capture

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("reading rules from the kernel…", id="chain-body")

    def on_mount(self) -> None:
        self.border_title = "iptables chain"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())

    def show_tree(self, tree: ChainTree, after_sync: bool = False) -> None:
        """Show a fresh read; rules not in the previous read are marked changed (after a sync)."""
        now = self.clock()
        if self.chain_tree is not None:
            before = {r.line() for r in self.chain_tree.all_rules()}
            for rule in tree.all_rules():
                if rule.line() not in before:
                    self.changed_at[rule.line()] = now
        self.chain_tree = tree
        self.border_title = self.title_for(tree)
        self.redraw()

    def start_over(self) -> None:
        self.chain_tree = None
        self.changed_at.clear()
        self.captured = {}
        self.border_title, self.border_subtitle = "iptables chain", ""
        self.query_one("#chain-body", Static).update("reading rules from the kernel…")

    def show_landed(self, counts: dict[str, int]) -> None:
        """Connections the capture saw land per endpoint: the counter column of rules that have
        no counters (kube-proxy's nftables table). Redraws only when a count changed."""
        if counts != self.captured:
            self.captured = dict(counts)
            if self.chain_tree is not None and not chain_view.has_counters(self.chain_tree):
                self.redraw()

    def show_sync(self, timing: SyncTiming) -> None:
        """The last slice change's lag, under the pane: how long until the kernel and the wire
        showed it (the lab's numbers against kube-proxy's 1 s minSyncPeriod are the point)."""
        parts = [f"rv={timing.resource_version}"]
        if timing.rules_ms is not None:
            parts.append(f"rules +{timing.rules_ms:.0f} ms")
        effect = "…" if timing.effect_ms is None else f"+{timing.effect_ms:.0f} ms"
        parts.append(f"first packet {effect}")
        self.border_subtitle = " → ".join(parts)

    def tick(self) -> None:
        """Expire highlights that are older than HIGHLIGHT_SECONDS."""
        now = self.clock()
        expired = [k for k, t in self.changed_at.items() if now - t > HIGHLIGHT_SECONDS]
        for key in expired:
            del self.changed_at[key]
        if expired:
            self.redraw()

    @staticmethod
    def title_for(tree: ChainTree) -> str:
        """What wrote the rules: iptables (nft or legacy backend) or kube-proxy's nftables mode."""
        node = f" · node {tree.node}" if tree.node else ""
        if chain_view.is_nft(tree):
            counters = "" if chain_view.has_counters(tree) else " · no counters"
            return f"nftables (table ip kube-proxy) · {tree.service}{node}{counters}"
        backend = f" · {tree.proxy_backend}" if tree.proxy_backend else ""
        return f"iptables chain · {tree.service}{node}{backend}"

    @property
    def chain_tree_service(self) -> str:
        """The Service key; a comment that only repeats it is left out to save width."""
        return self.chain_tree.service if self.chain_tree else ""

    def is_highlighted(self, rule: Rule) -> bool:
        return rule.line() in self.changed_at

    def redraw(self) -> None:
        if self.chain_tree is not None and self.is_mounted:
            self.query_one("#chain-body", Static).update(self.render_tree(self.chain_tree))

    def render_tree(self, tree: ChainTree, fit: bool = True) -> Text:
        """The pane's text; `fit`: the paths first when the pane is too short for every rule."""
        out = Text(no_wrap=True, overflow="ellipsis")
        if not tree.entry and not tree.chains and not tree.filter_rules:
            out.append(f"no rules for {tree.service} in the kernel", self._style("chain--dim"))
            return out
        rule_lines = len(tree.all_rules()) + len(tree.chains) + 2
        if fit and self.is_mounted and 0 < self.size.height < rule_lines:
            self._paths_first(out, tree)  # too short for every rule: the evidence first
        if tree.entry:  # none when no endpoint is ready: only the filter table's REJECT is left
            self._section(out, " / ".join(sorted({r.chain for r in tree.entry})), tree.entry, {})
        shares = chain_view.shares(tree)
        balancers = chain_view.balancer_chains(tree)
        for chain, rules in tree.chains.items():
            self._section(out, chain, rules, shares if chain in balancers else {})
        if tree.filter_rules:
            title = " / ".join(sorted({r.chain for r in tree.filter_rules}))
            self._section(
                out, title if chain_view.is_nft(tree) else "filter table", tree.filter_rules, {}
            )
        if not chain_view.has_counters(tree):
            out.append(
                "kube-proxy's table has no counters: 'conns' = new connections the capture saw "
                "sent to each endpoint (a SYN onto cni0, or held on an unanswered ARP)\n",
                self._style("chain--dim"),
            )
        out.rstrip()
        return out

    def _paths_first(self, out: Text, tree: ChainTree) -> None:
        """One line per path a connection takes, with its counter, then the full tree below."""
        counted = chain_view.has_counters(tree)
        for path in chain_view.service_paths(tree):
            line = Text(" ")
            count = path.packets if counted else self.captured.get(path.dnat_to, 0)
            line.append(
                f"{count:>5} {'pkts' if counted else 'conns'} ", self._style("chain--counter")
            )
            if path.share is not None:
                line.append(f"{path.share * 100:3.0f}% ", self._style("chain--jump"))
            hops = [_short_chain(path.balancer)]
            if path.endpoint:
                hops.append(_short_chain(path.endpoint))
            line.append(" → ".join(hops) + " → ", self._style("chain--name"))
            line.append(f"DNAT {path.dnat_to}", self._style("chain--jump"))
            out.append_text(line)
            out.append("\n")

    def _section(self, out: Text, title: str, rules: list[Rule], shares: dict[str, float]) -> None:
        out.append(title + "\n", self._style("chain--name"))
        for rule in rules:
            out.append_text(self._rule_line(rule, shares.get(chain_view.share_key(rule))))
            out.append("\n")

    def _rule_line(self, rule: Rule, share: float | None) -> Text:
        changed = self.is_highlighted(rule)
        line = Text("  ")
        tree = self.chain_tree
        counted = tree is None or chain_view.has_counters(tree)
        if counted:
            line.append(f"{rule.packets:>6} pkts ", self._style("chain--counter"))
        elif rule.dnat_to:  # no counter: what the capture saw land there instead
            line.append(
                f"{self.captured.get(rule.dnat_to, 0):>5} conns ", self._style("chain--counter")
            )
        else:
            line.append(f"{'-':>6}      ", self._style("chain--counter"))
        if share is not None:
            nft_share = tree is not None and chain_view.is_nft(tree)
            prob = "" if rule.probability is None or nft_share else f" p={rule.probability:.5f}"
            line.append(f"{share * 100:3.0f}%{prob} ", self._style("chain--jump"))
        match = chain_view.match_summary(tree, rule) if tree is not None else ""
        if match:
            line.append(match + " ")
        if rule.target is None:  # e.g. KUBE-FW-'s last rule: only counts what falls through
            line.append("-> (no jump: falls through)", self._style("chain--dim"))
        else:
            rejects = ("REJECT", "DROP", "reject", "drop")
            target_role = "chain--reject" if rule.target in rejects else "chain--jump"
            line.append(f"-> {rule.target}", self._style(target_role))
        if rule.dnat_to:
            line.append(f" {rule.dnat_to}", self._style("chain--jump"))
        if rule.comment and rule.comment != self.chain_tree_service:
            line.append(f'  "{rule.comment}"', self._style("chain--dim"))
        if changed:
            line.stylize(self._style("chain--changed"))
            line.append("  ◀ new", self._style("chain--changed"))
        return line

    def _style(self, role: str) -> Style:
        return self.get_component_rich_style(role, partial=True)

    def on_resize(self) -> None:
        self.redraw()  # how much fits decides whether the paths come first


def _short_chain(name: str) -> str:
    """KUBE-SVC-6GHM6NOKDRAB634Q -> KUBE-SVC-6GHM…: the kind and enough hash to tell apart."""
    return name if len(name) <= 15 else name[:13] + "…"
