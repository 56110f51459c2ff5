"""Service + EndpointSlices -> the iptables-restore input kube-proxy (iptables mode) writes.

This follows `syncProxyRules` in kubernetes `pkg/proxy/iptables/proxier.go` (v1.29-1.30, what
k3s embeds) rule for rule and token for token, for a full sync of one Service: `*filter` then
`*nat`, the fixed chains first, then per Service port the KUBE-SERVICES / KUBE-NODEPORTS entry
rules, KUBE-EXT- (masquerade external traffic), KUBE-SVC- (load-balance), KUBE-SEP- (DNAT), and
last the `-X` of stale chains and the "must be the last rule" jump to KUBE-NODEPORTS.

The probability chain. KUBE-SVC- holds one rule per endpoint, sorted as "ip:port" strings. Rule
i (0-based) of n matches with probability 1/(n-i), written `%0.10f`; the last rule has no
statistic match and catches whatever is left. A new connection falls through the rules in order,
so endpoint i is chosen with probability (1/(n-i)) * prod_{j<i} (1 - 1/(n-j)) = 1/n: every
endpoint gets an equal share although the written numbers differ (0.3333333333, 0.5000000000,
then the catch-all for n=3). The kernel stores each probability as round(p * 2^31) in a u32,
which is why `iptables-save` prints 0.33333333349 (see `syntax.saved_probability`).

Which endpoints count is `endpoints.py` (ready, else serving+terminating). A port with no usable
endpoint gets no nat chains at all, only filter-table REJECT rules, which is why such a Service
answers "connection refused" at once. The one-time jump rules from the built-in chains are
`hook_rules` (see `hooks.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from svcwatch.kubeproxy import chains as names
from svcwatch.kubeproxy.endpoints import Categorized, ProxyEndpoint, categorize, port_endpoints
from svcwatch.kubeproxy.hooks import jump_rules
from svcwatch.kubeproxy.rules import Rule, RuleSet, Table
from svcwatch.kubeproxy.syntax import make_rule
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.service import Service, ServicePort

NODEPORTS_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
LOCALHOST_NFACCT = "localhost_nps_accepted_pkts"
FILTER_CHAINS = (
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
)
NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")


@dataclass(frozen=True)
class ProxyConfig:
    """The kube-proxy settings that change the rules; defaults are k3s's."""

    cluster_cidr: str = "10.42.0.0/16"  # k3s passes it, so KUBE-SVC gets the `! -s` masq rule
    masquerade_bit: int = 14
    random_fully: bool = True  # iptables >= 1.6.2 supports --random-fully
    localhost_nodeports: bool = True  # kube-proxy's default: NodePorts answer on 127.0.0.1 too
    node_name: str | None = None  # decides which endpoints are local (externalTrafficPolicy=Local)
    localhost_nodeports_nfacct: bool = False  # v1.31+ extra nfacct-counted rule; k3s 1.30: off
    conntrack_tcp_liberal: bool = False  # nf_conntrack_tcp_be_liberal=1 drops the INVALID rule
    masquerade_all: bool = False  # --masquerade-all: masquerade every ClusterIP connection

    @property
    def masquerade_mark(self) -> str:
        """`1 << bit` formatted like Go's `%#08x`: 0x00004000."""
        return f"0x{1 << self.masquerade_bit:08x}"


@dataclass(slots=True)
class _Buffers:
    """kube-proxy's four line buffers: filter chains/rules, nat chains/rules."""

    filter_chains: list[str] = field(default_factory=list)
    filter_rules: list[Rule] = field(default_factory=list)
    nat_chains: list[str] = field(default_factory=list)
    nat_rules: list[Rule] = field(default_factory=list)
    active: set[str] = field(default_factory=set)

    def filter(self, chain: str, *args: str) -> None:
        self.filter_rules.append(make_rule(chain, " ".join(args)))

    def nat(self, chain: str, *args: str) -> None:
        self.nat_rules.append(make_rule(chain, " ".join(args)))

    def declare(self, chain: str) -> None:
        self.nat_chains.append(chain)
        self.active.add(chain)


def _comment(text: str) -> str:
    """`-m comment --comment "text"`, quoted as kube-proxy writes its formatted comments."""
    return f"-m comment --comment {_q(text)}"


def _q(text: str) -> str:
    """A comment kube-proxy formats with `"%s ..."`: the quotes are part of what it writes."""
    return f'"{text}"'


def _has_cluster_ip(service: Service) -> bool:
    """kube-proxy skips headless Services (ClusterIP None or empty) entirely."""
    return bool(service.cluster_ip) and service.cluster_ip != "None"


def _node_port(service: Service, port: ServicePort) -> int | None:
    if service.type in ("NodePort", "LoadBalancer") and port.node_port:
        return port.node_port
    return None


@dataclass(frozen=True, slots=True)
class _Port:
    """One Service port's names and its categorized endpoints."""

    spn: str
    proto: str
    cluster_ip: str
    port: int
    node_port: int | None
    external_local: bool
    endpoints: Categorized

    @property
    def svc(self) -> str:
        return names.svc_chain(self.spn, self.proto)

    @property
    def svl(self) -> str:
        return names.svl_chain(self.spn, self.proto)

    @property
    def ext(self) -> str:
        return names.ext_chain(self.spn, self.proto)

    def sep(self, ep: ProxyEndpoint) -> str:
        return names.sep_chain(self.spn, self.proto, ep.key)

    @property
    def has_external(self) -> bool:
        return self.endpoints.has_any and (not self.external_local or bool(self.endpoints.local))

    def cluster_ip_match(self) -> str:
        return (
            f"-m comment --comment {_q(self.spn + ' cluster IP')} -m {self.proto} -p {self.proto} "
            f"-d {self.cluster_ip} --dport {self.port}"
        )


def _plan(
    service: Service, port: ServicePort, slices: Sequence[EndpointSlice], config: ProxyConfig
) -> _Port:
    node_port = _node_port(service, port)
    external_local = node_port is not None and service.external_traffic_policy == "Local"
    endpoints = categorize(port_endpoints(service, port, slices, config.node_name), external_local)
    return _Port(
        names.service_port_name(service, port),
        names.proto_of(port),
        str(service.cluster_ip),
        port.port,
        node_port,
        external_local,
        endpoints,
    )


def _entry_rules(buf: _Buffers, p: _Port, config: ProxyConfig) -> None:
    """KUBE-SERVICES / KUBE-NODEPORTS jumps, or the filter REJECT/DROP rules instead."""
    if p.endpoints.has_any:
        buf.nat("KUBE-SERVICES", p.cluster_ip_match(), "-j", p.svc)
    else:
        buf.filter(
            "KUBE-SERVICES",
            f"-m comment --comment {_q(p.spn + ' has no endpoints')}",
            f"-m {p.proto} -p {p.proto} -d {p.cluster_ip} --dport {p.port} -j REJECT",
        )
    if p.node_port is None:
        return
    by_port = f"-m {p.proto} -p {p.proto}"
    if p.endpoints.has_any:
        if config.localhost_nodeports and config.localhost_nodeports_nfacct:
            buf.nat(
                "KUBE-NODEPORTS",
                f"-m comment --comment {p.spn} {by_port} -d 127.0.0.0/8",
                f"--dport {p.node_port} -m nfacct --nfacct-name {LOCALHOST_NFACCT} -j {p.ext}",
            )
        buf.nat(
            "KUBE-NODEPORTS",
            f"-m comment --comment {p.spn} {by_port} --dport {p.node_port} -j {p.ext}",
        )
    if not p.has_external:
        why, target = (
            ("has no endpoints", "REJECT")
            if not p.endpoints.has_any
            else ("has no local endpoints", "DROP")
        )
        buf.filter(
            "KUBE-EXTERNAL-SERVICES",
            f"-m comment --comment {_q(p.spn + ' ' + why)}",
            f"-m addrtype --dst-type LOCAL {by_port} --dport {p.node_port} -j {target}",
        )


def _external_chain(buf: _Buffers, p: _Port, config: ProxyConfig) -> None:
    """KUBE-EXT-: masquerade (Cluster) or keep the source IP (Local), then the policy chain."""
    buf.declare(p.ext)
    if not p.external_local:
        buf.nat(
            p.ext,
            _comment(f"masquerade traffic for {p.spn} external destinations"),
            "-j KUBE-MARK-MASQ",
        )
    else:
        if config.cluster_cidr:
            buf.nat(
                p.ext,
                _comment(f"pod traffic for {p.spn} external destinations"),
                f"-s {config.cluster_cidr} -j {p.svc}",
            )
        buf.nat(
            p.ext,
            _comment(f"masquerade LOCAL traffic for {p.spn} external destinations"),
            "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        )
        buf.nat(
            p.ext,
            _comment(f"route LOCAL traffic for {p.spn} external destinations"),
            f"-m addrtype --src-type LOCAL -j {p.svc}",
        )
    if p.has_external:
        buf.nat(p.ext, f"-j {p.svl if p.external_local else p.svc}")


def _endpoint_rules(
    buf: _Buffers, p: _Port, chain: str, endpoints: Sequence[ProxyEndpoint]
) -> None:
    """The probability chain: rule i of n matches 1/(n-i); the last one catches the rest."""
    buf.declare(chain)
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        statistic = (
            f" -m statistic --mode random --probability {1.0 / (n - i):0.10f}" if i < n - 1 else ""
        )
        buf.nat(
            chain, f"-m comment --comment {_q(f'{p.spn} -> {ep.key}')}{statistic} -j {p.sep(ep)}"
        )


def _render_port(buf: _Buffers, p: _Port, config: ProxyConfig) -> None:
    """All rules for one Service port, in the order syncProxyRules writes them."""
    _entry_rules(buf, p, config)
    if p.endpoints.has_any:
        if config.masquerade_all:
            buf.nat(p.svc, p.cluster_ip_match(), "-j KUBE-MARK-MASQ")
        elif config.cluster_cidr:
            buf.nat(p.svc, p.cluster_ip_match(), f"! -s {config.cluster_cidr} -j KUBE-MARK-MASQ")
    if p.endpoints.has_any and p.node_port is not None:
        _external_chain(buf, p, config)
    if p.endpoints.cluster:
        _endpoint_rules(buf, p, p.svc, p.endpoints.cluster)
    if p.endpoints.local and p.external_local:
        _endpoint_rules(buf, p, p.svl, p.endpoints.local)
    for ep in p.endpoints.reachable:
        buf.declare(p.sep(ep))
        buf.nat(p.sep(ep), f"-m comment --comment {p.spn} -s {ep.ip} -j KUBE-MARK-MASQ")
        buf.nat(
            p.sep(ep),
            f"-m comment --comment {p.spn} -m {p.proto} -p {p.proto}",
            f"-j DNAT --to-destination {ep.key}",
        )


def _fixed_rules(buf: _Buffers, config: ProxyConfig) -> None:
    """KUBE-POSTROUTING / KUBE-MARK-MASQ, and the localnet guard in KUBE-FIREWALL."""
    buf.filter_chains.extend(FILTER_CHAINS)
    buf.nat_chains.extend(NAT_CHAINS)
    mark = config.masquerade_mark
    buf.nat("KUBE-POSTROUTING", f"-m mark ! --mark {mark}/{mark} -j RETURN")
    buf.nat("KUBE-POSTROUTING", f"-j MARK --xor-mark {mark}")
    buf.nat(
        "KUBE-POSTROUTING",
        _comment("kubernetes service traffic requiring SNAT"),
        "-j MASQUERADE" + (" --random-fully" if config.random_fully else ""),
    )
    buf.nat("KUBE-MARK-MASQ", f"-j MARK --or-mark {mark}")
    if config.localhost_nodeports:
        buf.filter_chains.append("KUBE-FIREWALL")
        buf.filter(
            "KUBE-FIREWALL",
            _comment("block incoming localnet connections"),
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8",
            "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        )


def _closing_rules(buf: _Buffers, config: ProxyConfig) -> None:
    """The last KUBE-SERVICES rule (to KUBE-NODEPORTS) and the KUBE-FORWARD accept rules."""
    not_localhost = "" if config.localhost_nodeports else " ! -d 127.0.0.0/8"
    buf.nat(
        "KUBE-SERVICES",
        f"-m comment --comment {NODEPORTS_COMMENT} -m addrtype --dst-type LOCAL"
        f"{not_localhost} -j KUBE-NODEPORTS",
    )
    if not config.conntrack_tcp_liberal:
        buf.filter("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP")
    mark = config.masquerade_mark
    buf.filter(
        "KUBE-FORWARD",
        _comment("kubernetes forwarding rules"),
        f"-m mark --mark {mark}/{mark} -j ACCEPT",
    )
    buf.filter(
        "KUBE-FORWARD",
        _comment("kubernetes forwarding conntrack rule"),
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    )


def render(
    service: Service,
    slices: Sequence[EndpointSlice],
    config: ProxyConfig = ProxyConfig(),  # noqa: B008 (frozen, so one shared default is safe)
    stale_chains: Iterable[str] = (),
) -> RuleSet:
    """The restore input of a full kube-proxy sync for a node whose only Service is `service`.

    Args:
        service: the Service; with no ClusterIP (headless) it gets no rules, as in kube-proxy.
        slices: its EndpointSlices (others' are ignored).
        config: kube-proxy settings (k3s defaults).
        stale_chains: chains now in the kernel; the service chains among them that this sync
            does not write are flushed and deleted (`:NAME` then `-X NAME`), as kube-proxy does.

    Returns:
        `*filter` then `*nat`, chains and rules in kube-proxy's order.
    """
    buf = _Buffers()
    _fixed_rules(buf, config)
    if _has_cluster_ip(service):
        for port in service.ports:
            _render_port(buf, _plan(service, port, slices, config), config)
    stale = [
        c for c in dict.fromkeys(stale_chains) if names.is_service_chain(c) and c not in buf.active
    ]
    buf.nat_chains.extend(stale)
    deletions_at = len(buf.nat_rules)
    _closing_rules(buf, config)
    return RuleSet(
        [
            Table("filter", buf.filter_chains, buf.filter_rules),
            Table("nat", buf.nat_chains, buf.nat_rules, deleted=stale, deleted_after=deletions_at),
        ]
    )


def hook_rules(config: ProxyConfig = ProxyConfig()) -> RuleSet:  # noqa: B008 (frozen default)
    """The jump rules kube-proxy installs once (PREROUTING/OUTPUT -> KUBE-SERVICES, ...).

    Restore input for a fresh node. It declares, and so under --noflush empties, every KUBE-
    chain it jumps to: apply it once, before the first `render`, not after. The jumps do not
    depend on `config`; it is accepted so callers pass the same settings everywhere.
    """
    del config
    return jump_rules()
