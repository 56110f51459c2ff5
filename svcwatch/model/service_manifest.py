"""A v1 Service manifest -> `Service`, accepting what the API server accepts.

Every Service the API server would store parses, including ExternalName and headless Services
(which kube-proxy skips), and a LoadBalancer with `allocateLoadBalancerNodePorts: false` (no
nodePort, like k3s' traefik). Invalid ones get the one-line `InputError` naming the field:
bad enums, ports, IPs and CIDRs, a nodePort on a ClusterIP Service, source ranges or a
health-check nodePort where the API forbids them. The one refusal the API server would not make:
a nodePort it would allocate has to be given, because svcwatch has no allocator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svcwatch.model import fields
from svcwatch.model.errors import InputError
from svcwatch.model.service import DEFAULT_AFFINITY_SECONDS, Service, ServicePort

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
POLICIES = ("Cluster", "Local")
MAX_AFFINITY_SECONDS = 86400


def parse_service(doc: Mapping[str, Any], source: str) -> Service:
    """One Service object (already YAML-decoded) -> Service, or InputError."""
    namespace, name, labels = fields.metadata(doc, source)
    spec = fields.mapping(doc, "spec", source)
    svc_type = fields.one_of(spec, "type", SERVICE_TYPES, source, "spec.type")
    if svc_type == "ExternalName":
        return _external_name(spec, namespace, name, labels, source)
    cluster_ip = _cluster_ip(spec, source)
    allocate = _allocate_node_ports(spec, svc_type, source)
    ports = _ports(spec, svc_type, cluster_ip is None, allocate, source)
    selector = spec.get("selector") or {}
    if not isinstance(selector, Mapping):
        raise InputError("expected a mapping", source=source, field="spec.selector")
    external = fields.one_of(
        spec, "externalTrafficPolicy", POLICIES, source, "spec.externalTrafficPolicy"
    )
    affinity, timeout = _affinity(spec, source)
    return Service(
        namespace=namespace,
        name=name,
        ports=ports,
        type=svc_type,
        cluster_ip=cluster_ip,
        selector={str(k): str(v) for k, v in selector.items()},
        external_traffic_policy=external,
        labels=labels,
        internal_traffic_policy=fields.one_of(
            spec, "internalTrafficPolicy", POLICIES, source, "spec.internalTrafficPolicy"
        ),
        external_ips=_ips(spec, "externalIPs", source),
        load_balancer_ips=_ingress_ips(doc, source),
        source_ranges=_source_ranges(spec, svc_type, source),
        health_check_node_port=_health_check_port(spec, svc_type, external, source),
        session_affinity=affinity,
        affinity_seconds=timeout,
        allocate_lb_node_ports=allocate,
    )


def _external_name(
    spec: Mapping[str, Any], namespace: str, name: str, labels: dict[str, str], source: str
) -> Service:
    """ExternalName: a DNS alias; kube-proxy writes no rules for it (ports are optional)."""
    target = spec.get("externalName")
    if not isinstance(target, str) or not target:
        raise InputError(
            f"an ExternalName Service needs externalName, got {target!r}",
            source=source,
            field="spec.externalName",
        )
    ports = tuple(
        ServicePort(
            port=fields.port(raw.get("port"), source, f"spec.ports[{i}].port"),
            protocol=fields.protocol(
                raw.get("protocol", "TCP"), source, f"spec.ports[{i}].protocol"
            ),
            name=str(raw.get("name") or ""),
        )
        for i, raw in enumerate(_port_list(spec, source, optional=True))
    )
    return Service(namespace, name, ports, "ExternalName", labels=labels, external_name=target)


def _cluster_ip(spec: Mapping[str, Any], source: str) -> str | None:
    """The cluster IP; None for a headless Service ("None") or one not allocated yet ("")."""
    value = spec.get("clusterIP")
    if value in (None, "", "None"):
        return None
    return fields.ip(value, None, source, "spec.clusterIP")


def _allocate_node_ports(spec: Mapping[str, Any], svc_type: str, source: str) -> bool:
    value = spec.get("allocateLoadBalancerNodePorts")
    if value is None:
        return True
    if not isinstance(value, bool):
        raise InputError(
            f"must be true or false, not {value!r}",
            source=source,
            field="spec.allocateLoadBalancerNodePorts",
        )
    if svc_type != "LoadBalancer":
        raise InputError(
            "may only be used when type is LoadBalancer",
            source=source,
            field="spec.allocateLoadBalancerNodePorts",
        )
    return value


def _port_list(spec: Mapping[str, Any], source: str, *, optional: bool) -> list[Mapping[str, Any]]:
    raw_ports = fields.listing(spec, "ports", source, "spec.ports", optional=optional)
    for i, raw in enumerate(raw_ports):
        if not isinstance(raw, Mapping):
            raise InputError("expected a mapping", source=source, field=f"spec.ports[{i}]")
    return raw_ports


def _ports(
    spec: Mapping[str, Any], svc_type: str, headless: bool, allocate: bool, source: str
) -> tuple[ServicePort, ...]:
    """spec.ports: required unless headless; every port named when there are several."""
    raw_ports = _port_list(spec, source, optional=headless)
    if not raw_ports and not headless:
        raise InputError("a Service needs at least one port", source=source, field="spec.ports")
    return tuple(
        _port(raw, i, len(raw_ports), svc_type, allocate, source) for i, raw in enumerate(raw_ports)
    )


def _port(
    raw: Mapping[str, Any], i: int, count: int, svc_type: str, allocate: bool, source: str
) -> ServicePort:
    where = f"spec.ports[{i}]"
    port_name = raw.get("name") or ""
    if count > 1 and not port_name:
        raise InputError(
            "a multi-port Service must name every port", source=source, field=f"{where}.name"
        )
    target = raw.get("targetPort")
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        target = fields.port(target, source, f"{where}.targetPort")
    return ServicePort(
        port=fields.port(raw.get("port"), source, f"{where}.port"),
        protocol=fields.protocol(raw.get("protocol", "TCP"), source, f"{where}.protocol"),
        name=str(port_name),
        target_port=target,
        node_port=_node_port(raw.get("nodePort"), svc_type, allocate, source, f"{where}.nodePort"),
    )


def _node_port(value: Any, svc_type: str, allocate: bool, source: str, where: str) -> int | None:
    if value is not None:
        if svc_type == "ClusterIP":
            raise InputError("may not be used when type is ClusterIP", source=source, field=where)
        return fields.port(value, source, where)
    if svc_type == "NodePort" or (svc_type == "LoadBalancer" and allocate):
        raise InputError(
            f"a {svc_type} Service needs a nodePort (svcwatch does not allocate one)",
            source=source,
            field=where,
        )
    return None


def _ips(spec: Mapping[str, Any], key: str, source: str) -> tuple[str, ...]:
    values = fields.listing(spec, key, source, f"spec.{key}", optional=True)
    return tuple(fields.ip(v, None, source, f"spec.{key}[{i}]") for i, v in enumerate(values))


def _ingress_ips(doc: Mapping[str, Any], source: str) -> tuple[str, ...]:
    """status.loadBalancer.ingress IPs in VIP mode (kube-proxy ignores ipMode: Proxy and
    hostname-only entries)."""
    status = doc.get("status") or {}
    balancer = status.get("loadBalancer") or {} if isinstance(status, Mapping) else {}
    if not isinstance(balancer, Mapping):
        raise InputError("expected a mapping", source=source, field="status.loadBalancer")
    where = "status.loadBalancer.ingress"
    found: list[str] = []
    for i, entry in enumerate(fields.listing(balancer, "ingress", source, where, optional=True)):
        if not isinstance(entry, Mapping):
            raise InputError("expected a mapping", source=source, field=f"{where}[{i}]")
        mode = entry.get("ipMode") or "VIP"
        if mode not in ("VIP", "Proxy"):
            raise InputError(
                f"must be VIP or Proxy, not {mode!r}", source=source, field=f"{where}[{i}].ipMode"
            )
        if entry.get("ip") and mode == "VIP":
            found.append(fields.ip(entry["ip"], None, source, f"{where}[{i}].ip"))
    return tuple(found)


def _source_ranges(spec: Mapping[str, Any], svc_type: str, source: str) -> tuple[str, ...]:
    where = "spec.loadBalancerSourceRanges"
    values = fields.listing(spec, "loadBalancerSourceRanges", source, where, optional=True)
    if values and svc_type != "LoadBalancer":
        raise InputError("may only be used when type is LoadBalancer", source=source, field=where)
    return tuple(fields.cidr(v, source, f"{where}[{i}]") for i, v in enumerate(values))


def _health_check_port(
    spec: Mapping[str, Any], svc_type: str, policy: str, source: str
) -> int | None:
    value = spec.get("healthCheckNodePort")
    if value is None or value == 0:
        return None
    where = "spec.healthCheckNodePort"
    if svc_type != "LoadBalancer" or policy != "Local":
        raise InputError(
            "may only be set when type is LoadBalancer and externalTrafficPolicy is Local",
            source=source,
            field=where,
        )
    return fields.port(value, source, where)


def _affinity(spec: Mapping[str, Any], source: str) -> tuple[str, int]:
    """sessionAffinity and its clientIP.timeoutSeconds (1-86400, default 10800)."""
    affinity = fields.one_of(
        spec, "sessionAffinity", ("None", "ClientIP"), source, "spec.sessionAffinity"
    )
    config = spec.get("sessionAffinityConfig") or {}
    client = config.get("clientIP") or {} if isinstance(config, Mapping) else None
    where = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
    if not isinstance(client, Mapping):
        raise InputError("expected a mapping", source=source, field="spec.sessionAffinityConfig")
    timeout = client.get("timeoutSeconds", DEFAULT_AFFINITY_SECONDS)
    if timeout != DEFAULT_AFFINITY_SECONDS and affinity != "ClientIP":
        raise InputError(
            "may only be set with sessionAffinity ClientIP", source=source, field=where
        )
    valid = isinstance(timeout, int) and not isinstance(timeout, bool)
    if not valid or not 1 <= timeout <= MAX_AFFINITY_SECONDS:
        raise InputError(
            f"must be 1-{MAX_AFFINITY_SECONDS}, not {timeout!r}", source=source, field=where
        )
    return affinity, timeout
