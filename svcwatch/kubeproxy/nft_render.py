"""Services + EndpointSlices -> the `table ip kube-proxy` that kube-proxy's nftables proxier writes.

This follows `setupNFTables` and `syncProxyRules` in kubernetes `pkg/proxy/nftables/proxier.go`
as upstream's `TestOverallNFTablesRules` expects them (proxier_test.go at commit 030880a5: base
chains `filter-prerouting-pre-dnat` / `filter-output-pre-dnat` at priority -110 and
`filter-input` / `-forward` / `-output` at 0, `cluster-ips-check`, endpoint chains picked by
`numgen random mod N vmap`). The output is the transaction's end state as knftables' fake
`Dump()` prints it: `add table`, sets and maps, chains, rules, elements, one object per line, in an
order `nft -f` accepts (a chain exists before anything jumps to it).

Where iptables mode walks a list of rules per packet, nftables mode looks the destination up once in
a verdict map: `service-ips` (`clusterIP . proto . port : goto service-…`) and `service-nodeports`
(`proto . nodePort : goto external-…`). A service- chain masquerades off-cluster sources and then
picks an endpoint with `numgen random mod N vmap { 0 : goto endpoint-…, … }`: a flat 1/N each, no
conditional probabilities. An endpoint- chain marks hairpin traffic and DNATs. A port with no
usable endpoint gets no chains, only a `no-endpoint-services` / `no-endpoint-nodeports` element
whose verdict is `goto reject-chain` (or `drop` when only the Local policy lacks endpoints), looked
up from the filter hooks, which is why it answers "connection refused" at once, as in iptables mode.
kube-proxy writes no `counter` statements anywhere in this table. Every Service feature the
proxier reads is rendered: both traffic policies (local- chains), externalIPs and LoadBalancer IPs
(into external-), loadBalancerSourceRanges (firewall-ips -> firewall-), ClientIP affinity (an
`affinity-` set per endpoint, looked up before the numgen and updated in the endpoint chain).
Not rendered: `--masquerade-all` and `--nodeport-addresses` matching every address (the lab
passes neither; the node's IP fills `nodeport-ips`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

from svcwatch.kubeproxy.chains import join_host_port
from svcwatch.kubeproxy.endpoints import ProxyEndpoint
from svcwatch.kubeproxy.nft import (
    ENDPOINT_PREFIX,
    REJECT_CHAIN,
    TABLE_FAMILY,
    TABLE_NAME,
    endpoint_chain,
    external_chain,
    firewall_chain,
    local_chain,
    service_chain,
)
from svcwatch.kubeproxy.portplan import PortPlan, plan
from svcwatch.kubeproxy.proxyconfig import ProxyConfig
from svcwatch.kubeproxy.rules import Rule
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.service import Service, ServicePort

__all__ = ["NftConfig", "NftRuleset", "render_nft"]

MARK_MASQ = "mark-for-masquerade"
AFFINITY_PREFIX = "affinity-"
_T = f"{TABLE_FAMILY} {TABLE_NAME}"
_ADDR = "ipv4_addr"
_DEST = "ip daddr . meta l4proto . th dport"
# (name, type, hook, priority): `nftablesBaseChains`.
BASE_CHAINS = (
    ("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
    ("filter-output-pre-dnat", "filter", "output", -110),
    ("filter-input", "filter", "input", 0),
    ("filter-forward", "filter", "forward", 0),
    ("filter-output", "filter", "output", 0),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
# (destination, source, extra matches): `nftablesJumpChains`, in its order.
JUMP_CHAINS = (
    ("nodeport-endpoints-check", "filter-input", "ct state new"),
    ("service-endpoints-check", "filter-input", "ct state new"),
    ("service-endpoints-check", "filter-forward", "ct state new"),
    ("service-endpoints-check", "filter-output", "ct state new"),
    ("firewall-check", "filter-prerouting-pre-dnat", "ct state new"),
    ("firewall-check", "filter-output-pre-dnat", "ct state new"),
    ("services", "nat-output", ""),
    ("services", "nat-prerouting", ""),
    ("masquerading", "nat-postrouting", ""),
    ("cluster-ips-check", "filter-forward", "ct state new"),
    ("cluster-ips-check", "filter-output", "ct state new"),
)
_VERDICT_MAP = f"{_ADDR} . inet_proto . inet_service : verdict"
_PORT_MAP = "inet_proto . inet_service : verdict"
# (kind, name, type, comment), in the order upstream's baseRules lists them.
CONTAINERS = (
    ("set", "cluster-ips", _ADDR, "Active ClusterIPs"),
    ("set", "nodeport-ips", _ADDR, "IPs that accept NodePort traffic"),
    (
        "map",
        "firewall-ips",
        _VERDICT_MAP,
        "destinations that are subject to LoadBalancerSourceRanges",
    ),
    (
        "map",
        "no-endpoint-nodeports",
        _PORT_MAP,
        "vmap to drop or reject packets to service nodeports with no endpoints",
    ),  # fmt: skip
    (
        "map",
        "no-endpoint-services",
        _VERDICT_MAP,
        "vmap to drop or reject packets to services with no endpoints",
    ),  # fmt: skip
    ("map", "service-ips", _VERDICT_MAP, "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
    ("map", "service-nodeports", _PORT_MAP, "NodePort traffic"),
)


@dataclass(frozen=True)
class NftConfig:
    """The kube-proxy settings that change the table; defaults are the lab's k3s node."""

    cluster_cidr: str = "10.42.0.0/16"  # the local-traffic detector: pods are "inside"
    service_cidr: str = "10.43.0.0/16"  # ClusterIPs outside any Service are dropped
    node_ips: tuple[str, ...] = ("192.168.97.3",)  # --nodeport-addresses: the nodeport-ips set
    masquerade_mark: str = "0x00004000"  # fmt.Sprintf("%#08x", 1<<14)
    node_name: str | None = None


@dataclass(slots=True)
class NftRuleset:
    """A rendered table: `add …` lines in `nft -f` order, and its per-Service chains."""

    lines: list[str] = field(default_factory=list)
    service_chains: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def rules(self) -> list[Rule]:
        """Every rule line as a Rule (chain, spec), for callers that count or diff rules."""
        prefix = f"add rule {_T} "
        out = []
        for line in self.lines:
            if line.startswith(prefix):
                chain, _, spec = line[len(prefix) :].partition(" ")
                out.append(Rule(chain, spec))
        return out


@dataclass(slots=True)
class _Tx:
    """Objects of one transaction, kept apart so every chain is declared before it is used."""

    sets: list[str] = field(default_factory=list)  # the affinity sets
    chains: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)

    def chain(self, name: str, spec: str = "") -> None:
        line = f"add chain {_T} {name}" + (f" {{ {spec} ; }}" if spec else "")
        if line not in self.chains:
            self.chains.append(line)

    def rule(self, chain: str, spec: str, comment: str | None = None) -> None:
        self.rules.append(
            f"add rule {_T} {chain} {spec}" + (f' comment "{comment}"' if comment else "")
        )

    def element(
        self, container: str, key: str, value: str = "", comment: str | None = None
    ) -> None:
        text = key + (f' comment "{comment}"' if comment else "") + (f" : {value}" if value else "")
        self.elements.append(f"add element {_T} {container} {{ {text} }}")


def _base(tx: _Tx, config: NftConfig) -> list[str]:
    """`setupNFTables`: table, sets/maps, base and top-level chains with their fixed rules."""
    head = [f'add table {_T} {{ comment "rules for kube-proxy" ; }}']
    for kind, name, type_, comment in CONTAINERS:
        head.append(f'add {kind} {_T} {name} {{ type {type_} ; comment "{comment}" ; }}')
    for name, type_, hook, priority in BASE_CHAINS:
        tx.chain(name, f"type {type_} hook {hook} priority {priority}")
    for destination, source, extra in JUMP_CHAINS:
        tx.chain(destination)
        tx.rule(source, f"{extra} jump {destination}".strip())
    for name in ("services", "cluster-ips-check", "masquerading", MARK_MASQ, "firewall-check"):
        tx.chain(name)
    tx.chain(REJECT_CHAIN, 'comment "helper for @no-endpoint-services / @no-endpoint-nodeports"')
    mark = config.masquerade_mark
    tx.rule(MARK_MASQ, f"mark set mark or {mark}")
    tx.rule("masquerading", f"mark and {mark} == 0 return")
    tx.rule("masquerading", f"mark set mark xor {mark}")
    tx.rule("masquerading", "masquerade fully-random")
    tx.rule("cluster-ips-check", "ip daddr @cluster-ips reject",
            "Reject traffic to invalid ports of ClusterIPs")  # fmt: skip
    if config.service_cidr:
        tx.rule("cluster-ips-check", f"ip daddr {{ {config.service_cidr} }} drop",
                "Drop traffic to unallocated ClusterIPs")  # fmt: skip
    tx.elements.extend(f"add element {_T} nodeport-ips {{ {ip} }}" for ip in config.node_ips)
    tx.rule(REJECT_CHAIN, "reject")
    tx.rule("service-endpoints-check", f"{_DEST} vmap @no-endpoint-services")
    by_node_port = "ip daddr @nodeport-ips meta l4proto . th dport vmap"
    tx.rule("nodeport-endpoints-check", f"{by_node_port} @no-endpoint-nodeports")
    tx.rule("firewall-check", f"{_DEST} vmap @firewall-ips")
    tx.rule("services", f"{_DEST} vmap @service-ips")
    tx.rule("services", f"{by_node_port} @service-nodeports")
    return head


@dataclass(frozen=True, slots=True)
class _Port:
    """One Service port: what syncProxyRules decided (`portplan.plan`) and its nft names."""

    service: Service
    port: ServicePort
    plan: PortPlan

    @property
    def cluster_chain(self) -> str:
        return service_chain(self.service, self.port)

    @property
    def local_chain(self) -> str:
        return local_chain(self.service, self.port)

    @property
    def external_chain(self) -> str:
        return external_chain(self.service, self.port)

    @property
    def firewall_chain(self) -> str:
        return firewall_chain(self.service, self.port)

    @property
    def internal_chain(self) -> str:
        return self.local_chain if self.plan.internal_local else self.cluster_chain

    @property
    def uses_firewall(self) -> bool:
        """`usesFWChain`: LB IPs with source ranges (with or without endpoints, unlike iptables)."""
        return bool(self.plan.lb_ips) and bool(self.plan.source_ranges)

    def endpoint_chain(self, ep: ProxyEndpoint) -> str:
        return endpoint_chain(self.service, self.port, ep.ip, ep.port)

    def affinity_set(self, ep: ProxyEndpoint) -> str:
        """`affinity-` + the endpoint chain's base: the ClientIP-affinity set of one endpoint."""
        return AFFINITY_PREFIX + self.endpoint_chain(ep)[len(ENDPOINT_PREFIX) :]

    def key(self, ip: str) -> str:
        return f"{ip} . {self.plan.proto} . {self.plan.port}"

    def verdict(self) -> str:
        """No endpoints at all: reject; only a Local policy without local endpoints: drop."""
        return f"goto {REJECT_CHAIN}" if not self.plan.has_endpoints else "drop"


def _dispatch(tx: _Tx, p: _Port) -> None:
    """The cluster-ips / service-ips / firewall-ips / service-nodeports / no-endpoint-* elements."""
    plan, spn = p.plan, p.plan.spn
    tx.element("cluster-ips", plan.cluster_ip)
    if plan.has_internal:
        tx.element("service-ips", p.key(plan.cluster_ip), f"goto {p.internal_chain}")
    else:
        tx.element("no-endpoint-services", p.key(plan.cluster_ip), p.verdict(), comment=spn)
    for ip in plan.external_ips:
        if plan.has_endpoints:
            tx.element("service-ips", p.key(ip), f"goto {p.external_chain}")
        if not plan.has_external:
            tx.element("no-endpoint-services", p.key(ip), p.verdict(), comment=spn)
    for ip in plan.lb_ips:
        if plan.has_endpoints:
            tx.element("service-ips", p.key(ip), f"goto {p.external_chain}")
        if p.uses_firewall:
            tx.element("firewall-ips", p.key(ip), f"goto {p.firewall_chain}")
    for ip in plan.lb_ips if not plan.has_external else ():
        tx.element("no-endpoint-services", p.key(ip), p.verdict(), comment=spn)
    if plan.node_port is None:
        return
    by_port = f"{plan.proto} . {plan.node_port}"
    if plan.has_endpoints:
        tx.element("service-nodeports", by_port, f"goto {p.external_chain}")
    if not plan.has_external:
        tx.element("no-endpoint-nodeports", by_port, p.verdict(), comment=spn)


def _balance(tx: _Tx, p: _Port, chain: str, endpoints: Sequence[ProxyEndpoint]) -> None:
    """`writeServiceToEndpointRules`: affinity lookups first, then one numgen vmap (sorted)."""
    if p.plan.sticky_seconds is not None:
        for ep in endpoints:
            tx.rule(chain, f"ip saddr @{p.affinity_set(ep)} goto {p.endpoint_chain(ep)}")
    branches = " , ".join(f"{i} : goto {p.endpoint_chain(ep)}" for i, ep in enumerate(endpoints))
    tx.rule(chain, f"numgen random mod {len(endpoints)} vmap {{ {branches} }}")


def _external(tx: _Tx, p: _Port, config: NftConfig) -> None:
    """external-: masquerade (Cluster policy) or keep the source (Local), then the policy chain."""
    chain, plan = p.external_chain, p.plan
    if not plan.external_local:
        tx.rule(chain, f"jump {MARK_MASQ}")
    else:
        if config.cluster_cidr:
            tx.rule(chain, f"ip saddr {config.cluster_cidr} goto {p.cluster_chain}",
                    "short-circuit pod traffic")  # fmt: skip
        tx.rule(chain, f"fib saddr type local jump {MARK_MASQ}", "masquerade local traffic")
        tx.rule(chain, f"fib saddr type local goto {p.cluster_chain}",
                "short-circuit local traffic")  # fmt: skip
    if plan.has_external:
        tx.rule(chain, f"goto {p.local_chain if plan.external_local else p.cluster_chain}")


def _firewall(tx: _Tx, p: _Port, config: NftConfig) -> None:
    """firewall-: drop sources outside loadBalancerSourceRanges (the LB IPs too, when a range
    holds the node's own IP: VIP-style LBs loop a node's own requests back from the VIP)."""
    sources = list(p.plan.source_ranges)
    node_ip = config.node_ips[0] if config.node_ips else None
    if node_ip and any(ip_address(node_ip) in ip_network(r, strict=False) for r in sources):
        sources.extend(p.plan.lb_ips)
    tx.rule(p.firewall_chain, f"ip saddr != {{ {' , '.join(sources)} }} drop")


def _endpoint_chains(tx: _Tx, p: _Port) -> None:
    """endpoint-: hairpin masquerade, remember the client (affinity), DNAT."""
    sticky = p.plan.sticky_seconds
    for ep in p.plan.endpoints.reachable:
        chain = p.endpoint_chain(ep)
        tx.rule(chain, f"ip saddr {ep.ip} jump {MARK_MASQ}")
        if sticky is not None:
            tx.rule(chain, f"update @{p.affinity_set(ep)} {{ ip saddr }}")
        tx.rule(chain, f"meta l4proto {p.plan.proto} dnat to {join_host_port(ep.ip, ep.port)}")


def _render_port(tx: _Tx, p: _Port, config: NftConfig) -> list[str]:
    """One Service port's chains, sets, rules and elements; returns its per-Service chains."""
    plan, eps = p.plan, p.plan.endpoints
    chains = [p.endpoint_chain(ep) for ep in eps.reachable]
    chains += [p.cluster_chain] if eps.cluster else []
    chains += [p.local_chain] if eps.local else []
    chains += [p.external_chain] if plan.uses_ext_chain else []
    chains += [p.firewall_chain] if p.uses_firewall else []
    for chain in chains:
        tx.chain(chain)
    _dispatch(tx, p)
    if plan.has_internal and config.cluster_cidr:
        off_cluster = f"ip saddr != {config.cluster_cidr}"
        tx.rule(p.internal_chain, f"ip daddr {plan.cluster_ip} {off_cluster} jump {MARK_MASQ}")
    if plan.uses_ext_chain:
        _external(tx, p, config)
    if p.uses_firewall:
        _firewall(tx, p, config)
    if plan.sticky_seconds is not None:
        for ep in eps.reachable:
            tx.sets.append(
                f"add set {_T} {p.affinity_set(ep)} {{ type {_ADDR} ; flags dynamic,timeout ; "
                f"timeout {plan.sticky_seconds}s ; }}"
            )
    if eps.cluster:
        _balance(tx, p, p.cluster_chain, eps.cluster)
    if eps.local:
        _balance(tx, p, p.local_chain, eps.local)
    _endpoint_chains(tx, p)
    return chains


def render_nft(
    services: Iterable[tuple[Service, Sequence[EndpointSlice]]],
    config: NftConfig = NftConfig(),  # noqa: B008 (frozen, so one shared default is safe)
) -> NftRuleset:
    """The whole `table ip kube-proxy` after a full sync for these Services and their slices.

    Headless Services (no ClusterIP) get nothing, as in kube-proxy. The lab loads the result
    after `add table` + `delete table` in the same `nft -f` batch, so a sync replaces the table
    atomically and chains that went away are gone in that same batch.
    """
    tx = _Tx()
    head = _base(tx, config)
    own: list[str] = []
    proxy = ProxyConfig(cluster_cidr=config.cluster_cidr, node_name=config.node_name)
    for service, slices in services:
        if not service.cluster_ip or service.cluster_ip == "None":
            continue
        for port in service.ports:
            p = _Port(service, port, plan(service, port, slices, proxy))
            own.extend(_render_port(tx, p, config))
    return NftRuleset([*head, *tx.sets, *tx.chains, *tx.rules, *tx.elements], own)
