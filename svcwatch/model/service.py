"""The Service as kube-proxy sees it: namespace/name, cluster IP and ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
        if self.external_traffic_policy != "Cluster":
            spec["externalTrafficPolicy"] = self.external_traffic_policy
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}
