"""Services + EndpointSlices -> the `table ip kube-proxy` that kube-proxy's nftables proxier writes.

This follows `setupNFTables` and `syncProxyRules` in kubernetes `pkg/proxy/nftables/proxier.go`
as upstream's `TestOverallNFTablesRules` expects them (proxier_test.go at commit 030880a5, the
1.34/1.35 line: base chains `filter-prerouting-pre-dnat` / `filter-output-pre-dnat` at priority
-110 and `filter-input` / `-forward` / `-output` at 0, `cluster-ips-check`, endpoint chains picked
by `numgen random mod N vmap`). The output is the transaction's end state as knftables' fake
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
kube-proxy writes no `counter` statements anywhere in this table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from svcwatch.kubeproxy.chains import join_host_port, proto_of
from svcwatch.kubeproxy.endpoints import Categorized, ProxyEndpoint, categorize, port_endpoints
from svcwatch.kubeproxy.nft import (
    REJECT_CHAIN,
    TABLE_FAMILY,
    TABLE_NAME,
    endpoint_chain,
    external_chain,
    local_chain,
    service_chain,
)
from svcwatch.kubeproxy.rules import Rule
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.service import Service, ServicePort

__all__ = ["NftConfig", "NftRuleset", "render_nft", "transaction_listing"]

MARK_MASQ = "mark-for-masquerade"
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
    """One Service port: its names, addresses and categorized endpoints."""

    service: Service
    port: ServicePort
    node_port: int | None
    external_local: bool
    endpoints: Categorized

    @property
    def spn(self) -> str:
        return f"{self.service.key}:{self.port.name}" if self.port.name else self.service.key

    @property
    def proto(self) -> str:
        return proto_of(self.port)

    @property
    def cluster_chain(self) -> str:
        return service_chain(self.service, self.port)

    @property
    def local_chain(self) -> str:
        return local_chain(self.service, self.port)

    @property
    def external_chain(self) -> str:
        return external_chain(self.service, self.port)

    def endpoint_chain(self, ep: ProxyEndpoint) -> str:
        return endpoint_chain(self.service, self.port, ep.ip, ep.port)

    @property
    def has_external(self) -> bool:
        return self.endpoints.has_any and (not self.external_local or bool(self.endpoints.local))


def _plan(
    service: Service, port: ServicePort, slices: Sequence[EndpointSlice], config: NftConfig
) -> _Port:
    node_port = port.node_port if service.type in ("NodePort", "LoadBalancer") else None
    external_local = node_port is not None and service.external_traffic_policy == "Local"
    endpoints = categorize(port_endpoints(service, port, slices, config.node_name), external_local)
    return _Port(service, port, node_port or None, external_local, endpoints)


def _dispatch(tx: _Tx, p: _Port) -> None:
    """The cluster-ips / service-ips / service-nodeports / no-endpoint-* elements of one port."""
    cip, eps = str(p.service.cluster_ip), p.endpoints
    key = f"{cip} . {p.proto} . {p.port.port}"
    reject = f"goto {REJECT_CHAIN}"
    tx.element("cluster-ips", cip)
    if eps.has_any:
        tx.element("service-ips", key, f"goto {p.cluster_chain}")
    else:
        tx.element("no-endpoint-services", key, reject, comment=p.spn)
    if p.node_port is None:
        return
    np_key = f"{p.proto} . {p.node_port}"
    if eps.has_any:
        tx.element("service-nodeports", np_key, f"goto {p.external_chain}")
    if not p.has_external:
        verdict = reject if not eps.has_any else "drop"
        tx.element("no-endpoint-nodeports", np_key, verdict, comment=p.spn)


def _balance(tx: _Tx, p: _Port, chain: str, endpoints: Sequence[ProxyEndpoint]) -> None:
    """`writeServiceToEndpointRules`: one numgen vmap, branch i -> endpoint i (sorted)."""
    branches = " , ".join(f"{i} : goto {p.endpoint_chain(ep)}" for i, ep in enumerate(endpoints))
    tx.rule(chain, f"numgen random mod {len(endpoints)} vmap {{ {branches} }}")


def _external(tx: _Tx, p: _Port, config: NftConfig) -> None:
    """external-: masquerade (Cluster policy) or keep the source (Local), then the policy chain."""
    chain = p.external_chain
    if not p.external_local:
        tx.rule(chain, f"jump {MARK_MASQ}")
    else:
        if config.cluster_cidr:
            tx.rule(chain, f"ip saddr {config.cluster_cidr} goto {p.cluster_chain}",
                    "short-circuit pod traffic")  # fmt: skip
        tx.rule(chain, f"fib saddr type local jump {MARK_MASQ}", "masquerade local traffic")
        tx.rule(chain, f"fib saddr type local goto {p.cluster_chain}",
                "short-circuit local traffic")  # fmt: skip
    if p.has_external:
        tx.rule(chain, f"goto {p.local_chain if p.external_local else p.cluster_chain}")


def _render_port(tx: _Tx, p: _Port, config: NftConfig) -> list[str]:
    """One Service port's chains, rules and elements; returns its per-Service chain names."""
    eps = p.endpoints
    chains = [p.endpoint_chain(ep) for ep in eps.reachable]
    if eps.cluster:
        chains.append(p.cluster_chain)
    if eps.local and p.external_local:
        chains.append(p.local_chain)
    if eps.has_any and p.node_port is not None:
        chains.append(p.external_chain)
    for chain in chains:
        tx.chain(chain)
    _dispatch(tx, p)
    if eps.has_any and config.cluster_cidr:
        tx.rule(p.cluster_chain,
                f"ip daddr {p.service.cluster_ip} ip saddr != {config.cluster_cidr} "
                f"jump {MARK_MASQ}")  # fmt: skip
    if eps.has_any and p.node_port is not None:
        _external(tx, p, config)
    if eps.cluster:
        _balance(tx, p, p.cluster_chain, eps.cluster)
    if eps.local and p.external_local:
        _balance(tx, p, p.local_chain, eps.local)
    for ep in eps.reachable:
        tx.rule(p.endpoint_chain(ep), f"ip saddr {ep.ip} jump {MARK_MASQ}")
        tx.rule(
            p.endpoint_chain(ep), f"meta l4proto {p.proto} dnat to {join_host_port(ep.ip, ep.port)}"
        )
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
    for service, slices in services:
        if not service.cluster_ip or service.cluster_ip == "None":
            continue
        for port in service.ports:
            own.extend(_render_port(tx, _plan(service, port, slices, config), config))
    return NftRuleset([*head, *tx.chains, *tx.rules, *tx.elements], own)


_ADD = re.compile(
    rf"^add (table|chain|rule|set|map|element) {TABLE_FAMILY} {TABLE_NAME}(?: (\S+))?(.*)$"
)


def transaction_listing(transaction: str) -> str:
    """An `add …` transaction folded into `nft list table` block form, for `parse_nft_table`.

    So the renderer's output and the kernel's listing go through one reader: the lab compares
    what it wants (this) with what the kernel has (`nft list table ip kube-proxy`).
    """
    blocks: dict[str, list[str]] = {}
    for line in transaction.splitlines():
        found = _ADD.match(line)
        if found is None or found[1] == "table":
            continue
        kind, name, rest = found[1], found[2], found[3].strip()
        if kind in ("chain", "set", "map"):
            blocks.setdefault(f"{kind} {name}", [])
        elif kind == "rule":
            blocks.setdefault(f"chain {name}", []).append(rest)
        else:
            container = next(k for k in (f"set {name}", f"map {name}") if k in blocks)
            blocks[container].append(rest.strip("{} "))
    out = [f"table {TABLE_FAMILY} {TABLE_NAME} {{"]
    for block, body in blocks.items():
        out.append(f"\t{block} {{")
        if block.startswith("chain "):
            out.extend(f"\t\t{rule}" for rule in body)
        elif body:
            out.append(f"\t\telements = {{ {', '.join(body)} }}")
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"
