"""One Service port as kube-proxy's syncProxyRules sees it, and the buffers the rules go into.

`plan` works out, per Service port, what `syncProxyRules` decides before writing a rule: the
chain names, which endpoints each policy chain holds (`endpoints.categorize`), whether internal
(ClusterIP) and external (NodePort, externalIPs, LB IPs) traffic have endpoints, and whether the
KUBE-EXT- and KUBE-FW- chains are needed. The entry-point and per-service chain writers then
only write.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from svcwatch.kubeproxy import chains as names
from svcwatch.kubeproxy.endpoints import Categorized, ProxyEndpoint, categorize, port_endpoints
from svcwatch.kubeproxy.proxyconfig import ProxyConfig
from svcwatch.kubeproxy.rules import Rule
from svcwatch.kubeproxy.syntax import make_rule
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.service import Service, ServicePort


def q(text: str) -> str:
    """A comment kube-proxy formats with `"%s ..."`: the quotes are part of what it writes."""
    return f'"{text}"'


def comment(text: str) -> str:
    """`-m comment --comment "text"`, quoted as kube-proxy writes its formatted comments."""
    return f"-m comment --comment {q(text)}"


@dataclass(slots=True)
class Buffers:
    """kube-proxy's four line buffers: filter chains/rules, nat chains/rules.

    `comments` is False in kube-proxy's large-cluster mode, where the per-endpoint rules (the
    KUBE-SVC-/KUBE-SVL- branches and the KUBE-SEP- chains) lose their comments.
    """

    filter_chains: list[str] = field(default_factory=list)
    filter_rules: list[Rule] = field(default_factory=list)
    nat_chains: list[str] = field(default_factory=list)
    nat_rules: list[Rule] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    comments: bool = True

    def filter(self, chain: str, *args: str) -> None:
        self.filter_rules.append(make_rule(chain, " ".join(a for a in args if a)))

    def nat(self, chain: str, *args: str) -> None:
        self.nat_rules.append(make_rule(chain, " ".join(a for a in args if a)))

    def declare(self, chain: str) -> None:
        self.nat_chains.append(chain)
        self.active.add(chain)

    def endpoint_comment(self, text: str) -> str:
        """appendServiceCommentLocked: the comment as given, or nothing in a large cluster."""
        return f"-m comment --comment {text}" if self.comments else ""


def _ipv4(values: Sequence[str]) -> tuple[str, ...]:
    """The IPv4 proxier's share of a list of IPs or CIDRs (kube-proxy filters by family)."""
    return tuple(v for v in values if ipaddress.ip_network(v, strict=False).version == 4)


@dataclass(frozen=True, slots=True)
class PortPlan:
    """One Service port's names, destinations, policies and categorized endpoints."""

    spn: str
    proto: str
    cluster_ip: str
    port: int
    node_port: int | None
    external_ips: tuple[str, ...]
    lb_ips: tuple[str, ...]
    source_ranges: tuple[str, ...]
    health_check_port: int | None
    sticky_seconds: int | None
    internal_local: bool
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

    @property
    def fw(self) -> str:
        return names.fw_chain(self.spn, self.proto)

    def sep(self, ep: ProxyEndpoint) -> str:
        return names.sep_chain(self.spn, self.proto, ep.key)

    @property
    def has_endpoints(self) -> bool:
        return self.endpoints.has_any

    @property
    def has_internal(self) -> bool:
        """Whether ClusterIP traffic has endpoints (internalTrafficPolicy=Local: local ones)."""
        return self.has_endpoints and (not self.internal_local or bool(self.endpoints.local))

    @property
    def has_external(self) -> bool:
        """Whether external traffic has endpoints (externalTrafficPolicy=Local: local ones)."""
        return self.has_endpoints and (not self.external_local or bool(self.endpoints.local))

    @property
    def uses_ext_chain(self) -> bool:
        """KUBE-EXT- exists whenever there are endpoints and any external destination."""
        reachable_from_outside = self.node_port or self.lb_ips or self.external_ips
        return self.has_endpoints and bool(reachable_from_outside)

    @property
    def uses_fw_chain(self) -> bool:
        """KUBE-FW- exists for LB IPs with loadBalancerSourceRanges (and endpoints)."""
        return self.has_endpoints and bool(self.lb_ips) and bool(self.source_ranges)

    @property
    def internal_chain(self) -> str:
        return self.svl if self.internal_local else self.svc

    @property
    def external_policy_chain(self) -> str:
        return self.svl if self.external_local else self.svc

    @property
    def lb_chain(self) -> str:
        return self.fw if self.uses_fw_chain else self.ext

    def refusal(self) -> tuple[str, str]:
        """(comment, target) of a filter rule for traffic with no endpoint to go to: REJECT when
        the Service has none at all, DROP when a Local policy finds none on this node."""
        if not self.has_endpoints:
            return q(f"{self.spn} has no endpoints"), "REJECT"
        return q(f"{self.spn} has no local endpoints"), "DROP"

    def match(self, destination: str, port: int | None = None) -> str:
        """`-m tcp -p tcp -d IP --dport PORT`, the destination match of the entry rules."""
        return f"-m {self.proto} -p {self.proto} -d {destination} --dport {port or self.port}"


def plan(
    service: Service, port: ServicePort, slices: Sequence[EndpointSlice], config: ProxyConfig
) -> PortPlan:
    """What syncProxyRules works out for one Service port before writing its rules."""
    external_ips = _ipv4(service.external_ips)
    lb_ips = _ipv4(service.load_balancer_ips)
    node_port = port.node_port or None
    accessible = bool(node_port or external_ips or lb_ips)
    internal_local = service.internal_policy_local
    external_local = service.external_policy_local
    uses_cluster = not internal_local or accessible
    uses_local = internal_local or (external_local and accessible)
    found = port_endpoints(service, port, slices, config.node_name)
    return PortPlan(
        spn=names.service_port_name(service, port),
        proto=names.proto_of(port),
        cluster_ip=str(service.cluster_ip),
        port=port.port,
        node_port=node_port,
        external_ips=external_ips,
        lb_ips=lb_ips,
        source_ranges=_ipv4(service.source_ranges),
        health_check_port=service.health_check_port,
        sticky_seconds=service.sticky_seconds,
        internal_local=internal_local,
        external_local=external_local,
        endpoints=categorize(found, uses_local, uses_cluster, config.node_zone),
    )
