"""Which endpoints kube-proxy uses for one Service port, and which chains they land in.

From the EndpointSlices, kube-proxy's endpoint cache (`pkg/proxy/endpointslicecache.go`) keeps,
per Service port, one entry per "ip:port": slice ports are matched to the Service port by name
and protocol, ports with no name or no port are skipped, only `addresses[0]` counts, and the list
is sorted as strings (so 10.42.0.142 comes before 10.42.0.99). `categorize` then follows
`CategorizeEndpoints` (`pkg/proxy/topology.go`): ready endpoints serve; if none is ready, the
serving-and-terminating ones do; anything else gets no KUBE-SEP chain at all.

Topology-aware routing (`topologyModeFromHints`): when every ready endpoint carries zone hints
(`hints.forZones`, which the EndpointSlice controller writes for `trafficDistribution:
PreferClose` or the topology-mode annotation) and at least one is hinted for this node's zone,
Cluster policy uses only the endpoints hinted for that zone; otherwise hints are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from svcwatch.kubeproxy.chains import join_host_port
from svcwatch.model.endpointslice import EndpointPort, EndpointSlice
from svcwatch.model.service import Service, ServicePort


@dataclass(frozen=True, slots=True)
class ProxyEndpoint:
    """One endpoint of one Service port, as kube-proxy's endpoint cache keeps it."""

    ip: str
    port: int
    is_local: bool = False
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zone_hints: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """ "ip:port" (net.JoinHostPort): the sort key, the KUBE-SEP hash input, the DNAT target."""
        return join_host_port(self.ip, self.port)


def _matching_ports(
    service: Service, port: ServicePort, slices: Sequence[EndpointSlice]
) -> Iterator[tuple[EndpointSlice, EndpointPort]]:
    """The (slice, slice port) pairs that feed this Service port on an IPv4 proxier."""
    for slice_ in slices:
        if slice_.address_type != "IPv4" or slice_.namespace != service.namespace:
            continue  # FQDN and IPv6 slices are not for the IPv4 proxier
        if slice_.service_name not in (None, service.name):
            continue
        for slice_port in slice_.ports:
            usable = slice_port.name is not None and bool(slice_port.port)
            if usable and slice_port.name == port.name and slice_port.protocol == port.protocol:
                yield slice_, slice_port


def port_endpoints(
    service: Service,
    port: ServicePort,
    slices: Sequence[EndpointSlice],
    node_name: str | None = None,
) -> list[ProxyEndpoint]:
    """The endpoints kube-proxy knows for one Service port, sorted as "ip:port" strings.

    Duplicates across slices collapse into one, a local copy winning; `node_name` is this node,
    which decides `is_local`.
    """
    found: dict[str, ProxyEndpoint] = {}
    for slice_, slice_port in _matching_ports(service, port, slices):
        for ep in slice_.endpoints:
            if ep.address is None or ":" in ep.address or slice_port.port is None:
                continue
            local = ep.node_name is not None and ep.node_name == node_name
            conditions = ep.conditions
            info = ProxyEndpoint(
                ep.address,
                slice_port.port,
                local,
                conditions.is_ready,
                conditions.is_serving,
                conditions.is_terminating,
                ep.zone_hints,
            )
            if info.key not in found or local:
                found[info.key] = info
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True, slots=True)
class Categorized:
    """CategorizeEndpoints' answer: which endpoints each policy chain uses."""

    cluster: list[ProxyEndpoint]
    local: list[ProxyEndpoint]
    reachable: list[ProxyEndpoint]  # the ones that get KUBE-SEP chains
    has_any: bool  # usable endpoints anywhere in the cluster, not just on this node


def _usable(ep: ProxyEndpoint) -> bool:
    return ep.ready or (ep.serving and ep.terminating)


def _local_endpoints(endpoints: Sequence[ProxyEndpoint]) -> tuple[list[ProxyEndpoint], bool]:
    """This node's ready endpoints, else its serving+terminating ones (and whether it fell back)."""
    ready = [e for e in endpoints if e.is_local and e.ready]
    if ready:
        return ready, False
    return [e for e in endpoints if e.is_local and e.serving and e.terminating], True


def topology_zone(endpoints: Sequence[ProxyEndpoint], zone: str | None) -> str | None:
    """The zone whose hinted endpoints Cluster policy uses, or None (hints ignored)."""
    ready = [e for e in endpoints if e.ready]
    if not zone or any(not e.zone_hints for e in ready):
        return None
    return zone if any(zone in e.zone_hints for e in ready) else None


def categorize(
    endpoints: Sequence[ProxyEndpoint],
    uses_local: bool = False,
    uses_cluster: bool = True,
    zone: str | None = None,
) -> Categorized:
    """Ready endpoints, else serving+terminating ones; for Local policy, the same on this node.

    `uses_cluster`/`uses_local` say which policy chains the Service port needs (KUBE-SVC- for
    Cluster policy or any external traffic, KUBE-SVL- for a Local policy); an unused one stays
    empty, as in kube-proxy. `zone` is this node's topology.kubernetes.io/zone.
    """
    cluster: list[ProxyEndpoint] = []
    topology = topology_zone(endpoints, zone) if uses_cluster else None
    if uses_cluster:
        cluster = [
            e for e in endpoints if e.ready and (topology is None or topology in e.zone_hints)
        ] or [e for e in endpoints if e.serving and e.terminating]
    if not uses_local:
        return Categorized(cluster, [], cluster, bool(cluster))
    has_any = bool(cluster) or any(_usable(e) for e in endpoints)
    local, fallback = _local_endpoints(endpoints)
    if not uses_cluster:
        return Categorized([], local, local, has_any)
    if topology is None and (not fallback or not local):
        return Categorized(cluster, local, cluster, has_any)
    # Local fell back to terminating endpoints, or topology left local ones out of `cluster`:
    # kube-proxy merges both lists (in map order; sorted here).
    merged = {e.key: e for e in [*cluster, *local]}
    return Categorized(cluster, local, [merged[k] for k in sorted(merged)], has_any)
