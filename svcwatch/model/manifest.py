"""Kubernetes YAML -> model objects, validated the way the API server would.

These are the same files a user would `kubectl apply`. Every problem raises `InputError` naming
the source, the field path and the bad value, so the CLI can print one line and exit 2. Parsing
text is pure; reading files is the caller's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from svcwatch.model.endpointslice import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
)
from svcwatch.model.errors import InputError
from svcwatch.model.fields import ip as _ip_any
from svcwatch.model.fields import listing as _list
from svcwatch.model.fields import mapping as _map
from svcwatch.model.fields import metadata as _metadata
from svcwatch.model.fields import opt_bool as _opt_bool
from svcwatch.model.fields import port as _port
from svcwatch.model.fields import protocol as _protocol
from svcwatch.model.service import Service
from svcwatch.model.service_manifest import parse_service as parse_service

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")


@dataclass(frozen=True, slots=True)
class Deployment:
    """The demo workload: enough to run its pods in the lab and to apply it to a cluster."""

    namespace: str
    name: str
    labels: dict[str, str]
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    container_ports: tuple[int, ...]
    replicas: int = 1
    body: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


Manifest = Service | EndpointSlice | Deployment


@dataclass(slots=True)
class ManifestSet:
    """The objects of one or more files, by kind."""

    services: list[Service] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)

    def add(self, obj: Manifest) -> None:
        if isinstance(obj, Service):
            self.services.append(obj)
        elif isinstance(obj, EndpointSlice):
            self.slices.append(obj)
        else:
            self.deployments.append(obj)

    def slices_for(self, service: Service) -> list[EndpointSlice]:
        return [
            s
            for s in self.slices
            if s.namespace == service.namespace and s.service_name == service.name
        ]


def parse_documents(text: str, source: str) -> list[Manifest]:
    """Parse a multi-document YAML text; unknown kinds are rejected, empty documents skipped."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InputError(f"malformed YAML: {problem}", source=source, field=where) from None
    out: list[Manifest] = []
    for index, doc in enumerate(docs):
        where = source if len(docs) == 1 else f"{source}[{index}]"
        out.extend(parse_object(doc, where))
    return out


def parse_object(doc: Any, source: str) -> list[Manifest]:
    """One API object (or a `kind: List`) -> model objects."""
    if not isinstance(doc, Mapping):
        raise InputError("expected a Kubernetes object (a mapping)", source=source)
    kind = doc.get("kind")
    if kind == "List":
        items = _list(doc, "items", source)
        return [
            obj
            for i, item in enumerate(items)
            for obj in parse_object(item, f"{source}.items[{i}]")
        ]
    parsers: dict[str, Callable[[Mapping[str, Any], str], Manifest]] = {
        "Service": parse_service,
        "EndpointSlice": parse_slice,
        "Deployment": parse_deployment,
    }
    if kind not in parsers:
        raise InputError(
            f"unsupported kind {kind!r} (expected one of {', '.join(parsers)})",
            source=source,
            field="kind",
        )
    parsed: Manifest = parsers[kind](doc, source)
    return [parsed]


def parse_slice(doc: Mapping[str, Any], source: str) -> EndpointSlice:
    namespace, name, labels = _metadata(doc, source)
    if not labels.get(SERVICE_NAME_LABEL):
        raise InputError(
            f"missing label {SERVICE_NAME_LABEL} (kube-proxy ignores a slice without it)",
            source=source,
            field="metadata.labels",
        )
    address_type = doc.get("addressType")
    if address_type not in ADDRESS_TYPES:
        raise InputError(
            f"addressType must be one of {', '.join(ADDRESS_TYPES)}, not {address_type!r}",
            source=source,
            field="addressType",
        )
    endpoints = []
    for i, raw in enumerate(_list(doc, "endpoints", source, optional=True)):
        f = f"endpoints[{i}]"
        if not isinstance(raw, Mapping):
            raise InputError("expected a mapping", source=source, field=f)
        addresses = _list(raw, "addresses", source, f"{f}.addresses")
        if not addresses:
            raise InputError(
                "an endpoint needs at least one address", source=source, field=f"{f}.addresses"
            )
        if address_type == "IPv4":
            addresses = [_ipv4(a, source, f"{f}.addresses[{j}]") for j, a in enumerate(addresses)]
        elif address_type == "IPv6":
            addresses = [_ip(a, 6, source, f"{f}.addresses[{j}]") for j, a in enumerate(addresses)]
        conditions = raw.get("conditions") or {}
        if not isinstance(conditions, Mapping):
            raise InputError("expected a mapping", source=source, field=f"{f}.conditions")
        target_ref = raw.get("targetRef") or {}
        endpoints.append(
            Endpoint(
                addresses=tuple(str(a) for a in addresses),
                conditions=EndpointConditions(
                    ready=_opt_bool(conditions, "ready", source, f"{f}.conditions"),
                    serving=_opt_bool(conditions, "serving", source, f"{f}.conditions"),
                    terminating=_opt_bool(conditions, "terminating", source, f"{f}.conditions"),
                ),
                node_name=raw.get("nodeName"),
                target_ref=target_ref.get("name") if isinstance(target_ref, Mapping) else None,
                zone_hints=_zone_hints(raw, source, f),
            )
        )
    ports = []
    for i, raw in enumerate(_list(doc, "ports", source, optional=True)):
        f = f"ports[{i}]"
        if not isinstance(raw, Mapping):
            raise InputError("expected a mapping", source=source, field=f)
        port = raw.get("port")
        ports.append(
            EndpointPort(
                port=None if port is None else _port(port, source, f"{f}.port"),
                name=None if "name" not in raw else str(raw["name"] or ""),
                protocol=_protocol(raw.get("protocol", "TCP"), source, f"{f}.protocol"),
            )
        )
    version = (doc.get("metadata") or {}).get("resourceVersion")
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    return EndpointSlice(
        namespace=namespace,
        name=name,
        endpoints=tuple(endpoints),
        ports=tuple(ports),
        address_type=str(address_type),
        labels=labels,
        resource_version=None if version is None else str(version),
        annotations={str(k): str(v) for k, v in annotations.items()}
        if isinstance(annotations, Mapping)
        else {},
    )


def _zone_hints(raw: Mapping[str, Any], source: str, where: str) -> tuple[str, ...]:
    """endpoints[].hints.forZones[].name (topology-aware routing), in order."""
    hints = raw.get("hints") or {}
    if not isinstance(hints, Mapping):
        raise InputError("expected a mapping", source=source, field=f"{where}.hints")
    zones = _list(hints, "forZones", source, f"{where}.hints.forZones", optional=True)
    names = [z.get("name") if isinstance(z, Mapping) else None for z in zones]
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise InputError(
                f"a zone hint needs a name, got {zones[i]!r}",
                source=source,
                field=f"{where}.hints.forZones[{i}]",
            )
    return tuple(str(n) for n in names)


def parse_deployment(doc: Mapping[str, Any], source: str) -> Deployment:
    namespace, name, labels = _metadata(doc, source)
    spec = _map(doc, "spec", source)
    template = _map(spec, "template", source, "spec.template")
    pod_spec = _map(template, "spec", source, "spec.template.spec")
    containers = _list(pod_spec, "containers", source, "spec.template.spec.containers")
    if not containers or not isinstance(containers[0], Mapping):
        raise InputError(
            "needs one container", source=source, field="spec.template.spec.containers"
        )
    c = containers[0]
    ports = tuple(
        _port(
            p.get("containerPort"),
            source,
            f"spec.template.spec.containers[0].ports[{i}].containerPort",
        )
        for i, p in enumerate(c.get("ports") or [])
    )
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise InputError(
            f"replicas must be a whole number >= 0, not {replicas!r}",
            source=source,
            field="spec.replicas",
        )
    pod_labels = (template.get("metadata") or {}).get("labels") or labels
    return Deployment(
        namespace=namespace,
        name=name,
        labels={str(k): str(v) for k, v in pod_labels.items()},
        image=str(c.get("image", "")),
        command=tuple(str(x) for x in c.get("command") or ()),
        args=tuple(str(x) for x in c.get("args") or ()),
        container_ports=ports,
        replicas=replicas,
        body=dict(doc),
    )


def collect(objects: Iterable[Manifest]) -> ManifestSet:
    out = ManifestSet()
    for obj in objects:
        out.add(obj)
    return out


def dump_slice(slice_: EndpointSlice) -> str:
    """The slice as YAML, in the API's field order (what `kubectl get -o yaml` shows)."""
    text: str = yaml.safe_dump(slice_.to_manifest(), sort_keys=False, default_flow_style=False)
    return text


def _ip(value: Any, version: int, source: str, path: str) -> str:
    return _ip_any(value, version, source, path)


def _ipv4(value: Any, source: str, path: str) -> str:
    return _ip_any(value, 4, source, path)


def parse_ipv4(value: str, what: str = "address") -> str:
    """Validate a user-typed IPv4 address (flags, prompts)."""
    return _ipv4(value, what, "")


def parse_port(value: Any, what: str = "port") -> int:
    """Validate a user-typed port (flags, prompts)."""
    return _port(value, what, "")
