"""The lab's stored objects parsed once per content: caches keyed by the YAML text itself.

A scenario key re-reads these on every press, and the dashboard reads the slice thrice per
change: parsing the same text again (pure-Python YAML, a walk over the pod CIDR) held the GIL
for ~10 ms of the key -> rules path, while iptables-restore ran. Keyed by content: never stale.
"""

from __future__ import annotations

from functools import lru_cache

import yaml

from svcwatch.lab.topology import LabSpec
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.manifest import parse_documents, parse_service
from svcwatch.model.service import Service

BASELINE_FILE = "baseline-endpointslice.yaml"


@lru_cache(maxsize=4)
def parsed_slice(text: str, source: str) -> EndpointSlice:
    """The one EndpointSlice in `text`; InputError when there is not exactly one."""
    found = [o for o in parse_documents(text, source) if isinstance(o, EndpointSlice)]
    if len(found) != 1:
        raise InputError("expected exactly one EndpointSlice", source=source)
    return found[0]


@lru_cache(maxsize=4)
def parsed_service(text: str, source: str) -> Service:
    """The Service stored as `text`."""
    return parse_service(yaml.safe_load(text), source)


@lru_cache(maxsize=4)
def parsed_baseline(text: str) -> EndpointSlice:
    """The baseline slice the lab wrote from its manifests."""
    return next(o for o in parse_documents(text, BASELINE_FILE) if isinstance(o, EndpointSlice))


@lru_cache(maxsize=16)
def unused_ip(spec: LabSpec, used: frozenset[str]) -> str:
    """A pod-network address no pod has (scanning the pod CIDR is what the cache spares)."""
    return spec.unused_ip(used)
