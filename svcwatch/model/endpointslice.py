"""EndpointSlice (discovery.k8s.io/v1) with Kubernetes' condition defaults.

kube-proxy reads conditions with defaults: a missing `ready` or `serving` is true, a missing
`terminating` is false. The raw values are kept (so a slice round-trips to the same YAML) and the
`is_*` properties apply the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"


@dataclass(frozen=True, slots=True)
class EndpointConditions:
    """`endpoints[].conditions` as written; None means the field was absent."""

    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None

    @property
    def is_ready(self) -> bool:
        return self.ready is not False

    @property
    def is_serving(self) -> bool:
        return self.serving is not False

    @property
    def is_terminating(self) -> bool:
        return self.terminating is True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint; kube-proxy only ever uses `addresses[0]`."""

    addresses: tuple[str, ...]
    conditions: EndpointConditions = EndpointConditions()
    node_name: str | None = None
    target_ref: str | None = None  # the pod's name when the slice names one
    zone_hints: tuple[str, ...] = ()  # hints.forZones[].name: topology-aware routing

    @property
    def address(self) -> str | None:
        return self.addresses[0] if self.addresses else None


@dataclass(frozen=True, slots=True)
class EndpointPort:
    """One entry of `ports`; `name` None means absent (kube-proxy skips it), "" means unnamed."""

    port: int | None
    name: str | None = ""
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    """An EndpointSlice; `service_name` comes from the `kubernetes.io/service-name` label."""

    namespace: str
    name: str
    endpoints: tuple[Endpoint, ...]
    ports: tuple[EndpointPort, ...]
    address_type: str = "IPv4"
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    resource_version: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def service_name(self) -> str | None:
        return self.labels.get(SERVICE_NAME_LABEL)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def with_endpoints(self, *endpoints: Endpoint) -> EndpointSlice:
        return replace(self, endpoints=tuple(endpoints))

    def with_ports(self, *ports: EndpointPort) -> EndpointSlice:
        return replace(self, ports=tuple(ports))

    def to_manifest(self) -> dict[str, Any]:
        """The slice as the Kubernetes API would print it (the YAML a user edits)."""
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        if self.resource_version is not None:
            meta["resourceVersion"] = self.resource_version
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": meta,
            "addressType": self.address_type,
            "endpoints": [_endpoint_manifest(e) for e in self.endpoints],
            "ports": [_port_manifest(p) for p in self.ports],
        }


def _endpoint_manifest(endpoint: Endpoint) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": list(endpoint.addresses)}
    conditions = {
        key: value
        for key, value in (
            ("ready", endpoint.conditions.ready),
            ("serving", endpoint.conditions.serving),
            ("terminating", endpoint.conditions.terminating),
        )
        if value is not None
    }
    out["conditions"] = conditions
    if endpoint.node_name:
        out["nodeName"] = endpoint.node_name
    if endpoint.target_ref:
        out["targetRef"] = {"kind": "Pod", "name": endpoint.target_ref}
    if endpoint.zone_hints:
        out["hints"] = {"forZones": [{"name": zone} for zone in endpoint.zone_hints]}
    return out


def _port_manifest(port: EndpointPort) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if port.name is not None:
        out["name"] = port.name
    if port.port is not None:
        out["port"] = port.port
    out["protocol"] = port.protocol
    return out
