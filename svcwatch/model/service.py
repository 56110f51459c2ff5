"""The Service as kube-proxy sees it: namespace/name, cluster IP and ports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One entry of `spec.ports`; `name` is "" for an unnamed port, as in the API."""

    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str | None = None
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """A Service, reduced to what decides its iptables rules."""

    namespace: str
    name: str
    ports: tuple[ServicePort, ...]
    type: str = "ClusterIP"
    cluster_ip: str | None = None
    selector: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    external_traffic_policy: str = "Cluster"
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    @property
    def key(self) -> str:
        """`namespace/name`, the string kube-proxy puts in its rule comments."""
        return f"{self.namespace}/{self.name}"

    def port_named(self, name: str) -> ServicePort | None:
        """The Service port with this name ("" for the unnamed one), if any."""
        return next((p for p in self.ports if p.name == name), None)
