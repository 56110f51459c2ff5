"""Raw API bodies (from kopf or the lab's YAML) -> model objects, validated the same way.

The watchers pass plain bodies downstream; whoever needs a Service or an EndpointSlice converts
here, with the same parser (and the same one-line InputError) as `svcwatch lab apply -f`. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.manifest import parse_service, parse_slice
from svcwatch.model.service import Service


def slice_from_body(body: Mapping[str, Any], source: str = "api") -> EndpointSlice:
    """An EndpointSlice body -> EndpointSlice; InputError naming `source` and field if invalid."""
    return parse_slice(body, _where(body, source))


def service_from_body(body: Mapping[str, Any], source: str = "api") -> Service:
    """A Service body -> Service; InputError naming `source` and field if invalid."""
    return parse_service(body, _where(body, source))


def _where(body: Mapping[str, Any], source: str) -> str:
    """`api:EndpointSlice default/socat`, so a bad object from a cluster is named in the error."""
    if source != "api":
        return source
    meta = body.get("metadata") or {}
    if not isinstance(meta, Mapping):
        return source
    kind = body.get("kind") or "object"
    return f"{source}:{kind} {meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"
