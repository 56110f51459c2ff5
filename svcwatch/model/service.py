"""The Service as kube-proxy sees it: every field its iptables proxier reads.

kube-proxy's service cache (`pkg/proxy/serviceport.go`, `pkg/apis/core/v1/helper` and
`pkg/api/v1/service`) keeps, per Service port: the cluster IP, port, protocol and nodePort, the
externalIPs, the VIP-mode load-balancer ingress IPs, loadBalancerSourceRanges, the health-check
nodePort (only for a LoadBalancer with externalTrafficPolicy=Local), both traffic policies and
ClientIP session affinity with its timeout. Everything else in a Service (selector, labels,
allocateLoadBalancerNodePorts, loadBalancerClass...) changes no rule; the selector and labels are
kept because the lab and the cluster mode need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_AFFINITY_SECONDS = 10800  # the API server's default for sessionAffinityConfig


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One entry of `spec.ports`; `name` is "" for an unnamed port, as in the API."""

    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str | None = None
    node_port: int | None = None

    def to_manifest(self) -> dict[str, Any]:
        """This port as an entry of a v1 Service's `spec.ports`."""
        out: dict[str, Any] = {"port": self.port, "protocol": self.protocol}
        if self.name:
            out["name"] = self.name
        if self.target_port is not None:
            out["targetPort"] = self.target_port
        if self.node_port is not None:
            out["nodePort"] = self.node_port
        return out


@dataclass(frozen=True, slots=True)
class Service:
    """A Service, reduced to what decides its iptables rules (plus selector and labels)."""

    namespace: str
    name: str
    ports: tuple[ServicePort, ...]
    type: str = "ClusterIP"
    cluster_ip: str | None = None
    selector: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    external_traffic_policy: str = "Cluster"
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    internal_traffic_policy: str = "Cluster"
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip, VIP mode only
    source_ranges: tuple[str, ...] = ()  # spec.loadBalancerSourceRanges, as CIDRs
    health_check_node_port: int | None = None
    session_affinity: str = "None"  # or "ClientIP"
    affinity_seconds: int = DEFAULT_AFFINITY_SECONDS
    allocate_lb_node_ports: bool = True  # no rule depends on it; kept for the round trip
    external_name: str | None = None

    @property
    def key(self) -> str:
        """`namespace/name`, the string kube-proxy puts in its rule comments."""
        return f"{self.namespace}/{self.name}"

    @property
    def externally_accessible(self) -> bool:
        """NodePort and LoadBalancer Services, and ClusterIP ones with externalIPs."""
        return self.type in ("NodePort", "LoadBalancer") or (
            self.type == "ClusterIP" and bool(self.external_ips)
        )

    @property
    def external_policy_local(self) -> bool:
        """externalTrafficPolicy=Local counts only where there is external traffic."""
        return self.externally_accessible and self.external_traffic_policy == "Local"

    @property
    def internal_policy_local(self) -> bool:
        return self.internal_traffic_policy == "Local"

    @property
    def sticky_seconds(self) -> int | None:
        """ClientIP affinity's timeout, or None without affinity."""
        return self.affinity_seconds if self.session_affinity == "ClientIP" else None

    @property
    def health_check_port(self) -> int | None:
        """The health-check nodePort kube-proxy opens: LoadBalancer + Local policy only."""
        needs = self.type == "LoadBalancer" and self.external_policy_local
        return self.health_check_node_port if needs else None

    def to_manifest(self) -> dict[str, Any]:
        """The Service as a v1 manifest; `parse_service` reads it back to an equal Service."""
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            meta["labels"] = dict(self.labels)
        spec: dict[str, Any] = {"type": self.type, "ports": [p.to_manifest() for p in self.ports]}
        if self.cluster_ip:
            spec["clusterIP"] = self.cluster_ip
        if self.selector:
            spec["selector"] = dict(self.selector)
        spec.update(self._spec_extras())
        out: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": meta}
        out["spec"] = spec
        if self.load_balancer_ips:
            ingress = [{"ip": ip} for ip in self.load_balancer_ips]
            out["status"] = {"loadBalancer": {"ingress": ingress}}
        return out

    def _spec_extras(self) -> dict[str, Any]:
        """The optional spec fields that differ from the API's defaults."""
        extras: dict[str, Any] = {}
        if self.external_traffic_policy != "Cluster":
            extras["externalTrafficPolicy"] = self.external_traffic_policy
        if self.internal_traffic_policy != "Cluster":
            extras["internalTrafficPolicy"] = self.internal_traffic_policy
        if self.external_ips:
            extras["externalIPs"] = list(self.external_ips)
        if self.source_ranges:
            extras["loadBalancerSourceRanges"] = list(self.source_ranges)
        if self.health_check_node_port is not None:
            extras["healthCheckNodePort"] = self.health_check_node_port
        if self.session_affinity != "None":
            extras["sessionAffinity"] = self.session_affinity
            timeout = {"clientIP": {"timeoutSeconds": self.affinity_seconds}}
            extras["sessionAffinityConfig"] = timeout
        if not self.allocate_lb_node_ports:
            extras["allocateLoadBalancerNodePorts"] = False
        if self.external_name:
            extras["externalName"] = self.external_name
        return extras
