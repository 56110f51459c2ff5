"""`svcwatch cluster status`: what svcwatch owns on the cluster, in a few lines a human reads.

It answers the questions asked after a crash or before a talk: is the demo up, which slice will
faults patch (and who manages the others), are agent pods left over, is an original still saved?
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from svcwatch.cluster.agent import AGENT_LABELS
from svcwatch.cluster.api import ClusterApi
from svcwatch.cluster.demo import demo_documents, first_of
from svcwatch.cluster.objects import OWNER, list_saved, slice_manager
from svcwatch.model.endpointslice import SERVICE_NAME_LABEL


def slice_summary(body: dict[str, Any]) -> str:
    """`10.42.0.9:12345 ready, 10.42.0.10:12345 not-ready` (ports x addresses)."""
    ports = [p.get("port") for p in body.get("ports") or []] or [None]
    parts = []
    for endpoint in body.get("endpoints") or []:
        ready = (endpoint.get("conditions") or {}).get("ready") is not False
        for address in (endpoint.get("addresses") or [])[:1]:
            for port in ports:
                parts.append(
                    f"{address}:{port if port is not None else '?'} "
                    f"{'ready' if ready else 'not-ready'}"
                )
    return ", ".join(parts) or "no endpoints"


def describe(
    api: ClusterApi, context: str, manifests: Iterable[str], namespace: str | None
) -> list[str]:
    """Status lines for the demo Service named in the manifests."""
    docs = demo_documents(list(manifests) or None, namespace)
    service_doc = first_of(docs, "Service")
    ns = (service_doc or docs[0])["metadata"]["namespace"]
    lines = [f"context {context} ({api.server}), namespace {ns}"]
    if service_doc is not None:
        lines += _service_lines(api, ns, service_doc["metadata"]["name"])
    agents = api.list("Pod", ns, AGENT_LABELS)
    for pod in agents:
        node = (pod.get("spec") or {}).get("nodeName", "?")
        phase = (pod.get("status") or {}).get("phase", "?")
        lines.append(
            f"agent pod {pod['metadata']['name']} on {node}: {phase} (`svcwatch cluster down` "
            "removes it)"
        )
    for saved in list_saved(context):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(saved.saved_at))
        lines.append(
            f"saved original of EndpointSlice {saved.namespace}/{saved.name} from {when}: "
            "run `svcwatch cluster restore` unless svcwatch is running"
        )
    return lines


def _service_lines(api: ClusterApi, namespace: str, name: str) -> list[str]:
    service = api.read_or_none("Service", namespace, name)
    if service is None:
        return [f"Service {namespace}/{name}: missing (run `svcwatch cluster up`)"]
    spec = service.get("spec") or {}
    ports = ", ".join(
        f"{p.get('port')}" + (f" nodePort {p['nodePort']}" if p.get("nodePort") else "")
        for p in spec.get("ports") or []
    )
    lines = [
        f"Service {namespace}/{name}: {spec.get('type', 'ClusterIP')} "
        f"{spec.get('clusterIP', '')} ports {ports}"
    ]
    slices = api.list("EndpointSlice", namespace, {SERVICE_NAME_LABEL: name})
    for body in slices:
        manager = slice_manager(body) or "nobody"
        role = (
            "faults patch this one" if manager == OWNER else "not svcwatch's: --take-over to adopt"
        )
        lines.append(
            f"  EndpointSlice {body['metadata']['name']} (managed by {manager}; {role}): "
            f"{slice_summary(body)}"
        )
    if not slices:
        lines.append("  no EndpointSlice for it (run `svcwatch cluster up`)")
    return lines
