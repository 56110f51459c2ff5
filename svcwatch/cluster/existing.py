"""Any existing Service as found on a cluster: its body, all its EndpointSlices, one view of them.

An on-call engineer points svcwatch at a Service it did not create (`svcwatch --cluster -n NS
svc/NAME`). The EndpointSlice controller may split its endpoints over several slices (100
endpoints each by default, and more while a rollout moves them), all labelled
`kubernetes.io/service-name: NAME`; kube-proxy reads them together, so svcwatch shows them merged.
Nothing here writes: whether svcwatch may break the Service is decided by `ownership`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from svcwatch.cluster.api import ClusterApi, NotFound
from svcwatch.cluster.demo import APP_MANAGED_BY
from svcwatch.cluster.objects import OWNER, slice_manager
from svcwatch.model.endpointslice import SERVICE_NAME_LABEL, EndpointSlice
from svcwatch.model.errors import SetupError
from svcwatch.model.service import Service

READ_ONLY_WHY = (
    "svcwatch watches {key} read-only: it did not create it "
    "(pass --take-over to break its first EndpointSlice, restored on exit)"
)


def read_existing(api: ClusterApi, namespace: str, name: str) -> tuple[Service, dict[str, Any]]:
    """The Service and its body; SetupError (one line) when it does not exist."""
    from svcwatch.model.manifest import parse_service

    try:
        body = api.read("Service", namespace, name)
    except NotFound:
        raise SetupError(
            f"Service {namespace}/{name} does not exist (see `kubectl get services -n {namespace}`)"
        ) from None
    # Named as the watcher names a bad object (watch/convert.py; backends do not import it).
    return parse_service(body, f"api:Service {namespace}/{name}"), body


def service_slices(api: ClusterApi, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    """Every EndpointSlice body of the Service, by name (sorted), as the controller labels them."""
    bodies = api.list("EndpointSlice", namespace, {SERVICE_NAME_LABEL: name})
    return dict(sorted((str(b["metadata"]["name"]), dict(b)) for b in bodies))


def svcwatch_slice(bodies: Iterable[Mapping[str, Any]]) -> str | None:
    """The name of the slice svcwatch manages among `bodies`, if any."""
    return next(
        (str(b["metadata"]["name"]) for b in bodies if slice_manager(b) == OWNER),
        None,
    )


def created_by_svcwatch(body: Mapping[str, Any]) -> bool:
    """Whether `cluster up` created this object (its label says so)."""
    return ((body.get("metadata") or {}).get("labels") or {}).get(APP_MANAGED_BY) == OWNER


def merged_view(service: Service, slices: Mapping[str, EndpointSlice]) -> EndpointSlice:
    """All the slices' endpoints as one slice, as kube-proxy reads them: the dashboard's view.

    One slice is shown as it is; several are shown under the first one's name with "+N" and
    each endpoint once (a rollout may list an address in two slices for a moment)."""
    if len(slices) == 1:
        return next(iter(slices.values()))
    ordered = list(slices.values())
    seen: dict[tuple[str, ...], Any] = {}
    for slice_ in ordered:
        for endpoint in slice_.endpoints:
            seen.setdefault(endpoint.addresses, endpoint)
    first = ordered[0] if ordered else None
    name = f"{first.name} +{len(ordered) - 1}" if first else f"{service.name} (no slices)"
    ports = next((s.ports for s in ordered if s.ports), ())
    return EndpointSlice(
        service.namespace,
        name,
        tuple(seen.values()),
        ports,
        labels={SERVICE_NAME_LABEL: service.name},
    )
