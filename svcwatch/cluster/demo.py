"""`cluster up` / `cluster down`: the blog post's demo objects on a real cluster, and nothing else.

`up` applies the Deployment, the selector-less Service and svcwatch's own EndpointSlice from
manifests/, labels each `app.kubernetes.io/managed-by: svcwatch`, waits (showing progress) for the
socat pod to be Ready, and fills the slice with that pod's IP: no EndpointSlice controller will,
because the Service has no selector. `down` deletes only objects that carry svcwatch's label, so a
user's own `socat` Service with the same name is never removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from svcwatch.cluster.api import ClusterApi, Conflict, has_labels
from svcwatch.cluster.objects import OWNER, check_editable, list_saved, refuse_protected
from svcwatch.cluster.waiting import poll_until
from svcwatch.locations import manifest_files
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.manifest import parse_documents
from svcwatch.textfile import read_text_file

APP_MANAGED_BY = "app.kubernetes.io/managed-by"  # on everything `cluster up` creates
DEMO_KINDS = ("Deployment", "Service", "EndpointSlice")  # what `cluster up` applies, in order
POLL_SECONDS = 1.0

Progress = Callable[[str], None]


def demo_documents(paths: Iterable[str] | None, namespace: str | None) -> list[dict[str, Any]]:
    """The Deployment, Service and EndpointSlice documents to apply, validated, in apply order.

    Other kinds in the same directory (the agent pod template, RBAC) are not demo objects and are
    skipped. `namespace` (-n) overrides the manifests' namespace.
    """
    docs: list[dict[str, Any]] = []
    for path in manifest_files(paths):
        text = read_text_file(path, field="-f")
        try:
            raw = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        except yaml.YAMLError:
            raw = None
        if raw is None:  # let the model's parser word the YAML error (file, line)
            parse_documents(text, str(path))
            continue
        demo = [d for d in raw if d.get("kind") in DEMO_KINDS]
        if demo:
            parse_documents(yaml.safe_dump_all(demo), str(path))  # InputError naming file and field
        docs.extend(demo)
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        meta["namespace"] = namespace or meta.get("namespace") or "default"
        refuse_protected(meta["namespace"])
        meta.setdefault("labels", {})[APP_MANAGED_BY] = OWNER
    if not any(d["kind"] == "EndpointSlice" for d in docs):
        raise InputError("the manifests have no EndpointSlice for svcwatch to own", field="-f")
    return sorted(docs, key=lambda d: DEMO_KINDS.index(d["kind"]))


def first_of(docs: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((d for d in docs if d["kind"] == kind), None)


def pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return {str(k): str(v) for k, v in (template.get("labels") or {}).items()}


def is_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return (
        ready
        and bool(status.get("podIP"))
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
    )


def pod_state(pod: Mapping[str, Any]) -> str:
    """A short phrase for progress lines: `Pending (ContainerCreating)`, `Running, not Ready`."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    waiting = (
        ((s.get("state") or {}).get("waiting") or {}).get("reason")
        for s in status.get("containerStatuses") or []
    )
    reasons = [str(r) for r in waiting if r]
    if reasons:
        return f"{phase} ({', '.join(reasons)})"
    return phase if is_ready(pod) or phase != "Running" else "Running, not Ready"


@dataclass(frozen=True, slots=True)
class UpResult:
    """What `cluster up` made: the Service, the slice it filled, and the pod behind it."""

    namespace: str
    service: str
    slice: str
    pod: str
    pod_ip: str
    node: str | None
    created: tuple[
        str, ...
    ]  # "Deployment/socat", ... (objects that already existed are not listed)


def up(
    api: ClusterApi, docs: list[dict[str, Any]], progress: Progress, timeout: float = 180.0
) -> UpResult:
    """Apply the demo objects, wait for the pod, fill svcwatch's slice with its IP."""
    created: list[str] = []
    for doc in docs:
        kind, meta = doc["kind"], doc["metadata"]
        body = dict(doc)
        if kind == "EndpointSlice":
            body = {**doc, "endpoints": []}  # filled below, once a pod is Ready
        try:
            api.create(kind, meta["namespace"], body)
            created.append(f"{kind}/{meta['name']}")
            progress(f"created {kind} {meta['namespace']}/{meta['name']}")
        except Conflict:
            existing = api.read(kind, meta["namespace"], meta["name"])
            if kind == "EndpointSlice":
                check_editable(existing, take_over=False)
            progress(f"{kind} {meta['namespace']}/{meta['name']} already exists: reusing it")
    deployment = first_of(docs, "Deployment")
    slice_doc = first_of(docs, "EndpointSlice")
    service = first_of(docs, "Service")
    assert slice_doc is not None  # demo_documents guarantees one
    if deployment is None:
        raise InputError(
            "the manifests have no Deployment whose pod could fill the slice", field="-f"
        )
    namespace = slice_doc["metadata"]["namespace"]
    pod = wait_for_ready_pod(api, namespace, pod_labels(deployment), progress, timeout)
    fill_slice(api, slice_doc, pod)
    ip = pod["status"]["podIP"]
    progress(
        f"filled EndpointSlice {namespace}/{slice_doc['metadata']['name']} with {ip} (pod "
        f"{pod['metadata']['name']})"
    )
    return UpResult(
        namespace=namespace,
        service=(service or {}).get("metadata", {}).get("name", ""),
        slice=slice_doc["metadata"]["name"],
        pod=pod["metadata"]["name"],
        pod_ip=ip,
        node=(pod.get("spec") or {}).get("nodeName"),
        created=tuple(created),
    )


def wait_for_ready_pod(
    api: ClusterApi, namespace: str, labels: Mapping[str, str], progress: Progress, timeout: float
) -> dict[str, Any]:
    """Poll until a pod with `labels` is Ready with an IP; report each new state once."""
    selector = ",".join(f"{k}={v}" for k, v in labels.items())

    def look() -> tuple[dict[str, Any] | None, str]:
        pods = api.list("Pod", namespace, labels)
        ready = [p for p in pods if is_ready(p)]
        if ready:  # the newest Ready pod: after a rollout that is the one that stays
            newest = max(
                ready, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", ""))
            )
            return newest, "Ready"
        state = "; ".join(f"{p['metadata']['name']}: {pod_state(p)}" for p in pods)
        return None, state or "no pod yet"

    return poll_until(
        look,
        timeout=timeout,
        every=POLL_SECONDS,
        progress=progress,
        waiting=f"waiting for a Ready pod ({selector}) in {namespace}",
        gave_up=lambda state: SetupError(
            f"no Ready pod with {selector} in {namespace} after {timeout:.0f}s ({state}): "
            f"see `kubectl -n {namespace} describe pod -l {selector}`"
        ),
    )


def endpoint_for(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The slice endpoint a controller would write for this Ready pod."""
    meta = pod.get("metadata") or {}
    out: dict[str, Any] = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name")},
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        out["nodeName"] = node
    return out


def fill_slice(
    api: ClusterApi, slice_doc: Mapping[str, Any], pod: Mapping[str, Any]
) -> dict[str, Any]:
    """Point svcwatch's own slice at the pod (its ports as in the manifest)."""
    meta = slice_doc["metadata"]
    current = api.read("EndpointSlice", meta["namespace"], meta["name"])
    check_editable(current, take_over=False)
    patch = {
        "endpoints": [endpoint_for(pod)],
        "ports": slice_doc.get("ports") or current.get("ports"),
    }
    return api.merge_patch("EndpointSlice", meta["namespace"], meta["name"], patch)


def down(
    api: ClusterApi, docs: list[dict[str, Any]], context: str, progress: Progress
) -> list[str]:
    """Delete svcwatch's agent and probe pods and the demo objects it created (labelled), last
    first."""
    from svcwatch.cluster.agent import delete_agents  # agent pods: same namespace, same label
    from svcwatch.cluster.probe_pod import delete_probe_pods

    removed: list[str] = []
    namespaces = sorted({d["metadata"]["namespace"] for d in docs})
    for namespace in namespaces:
        removed += [f"Pod/{name}" for name in delete_agents(api, namespace)]
        removed += [f"Pod/{name}" for name in delete_probe_pods(api, namespace)]
    for doc in reversed(docs):
        kind, meta = doc["kind"], doc["metadata"]
        existing = api.read_or_none(kind, meta["namespace"], meta["name"])
        if existing is None:
            continue
        if not has_labels(existing, {APP_MANAGED_BY: OWNER}):
            progress(f"kept {kind} {meta['namespace']}/{meta['name']}: svcwatch did not create it")
            continue
        if api.delete(kind, meta["namespace"], meta["name"]):
            removed.append(f"{kind}/{meta['name']}")
            progress(f"deleted {kind} {meta['namespace']}/{meta['name']}")
    for saved in list_saved(context):  # a deleted slice has nothing left to restore
        if f"EndpointSlice/{saved.name}" in removed and saved.namespace in namespaces:
            saved.path.unlink(missing_ok=True)
    return removed
