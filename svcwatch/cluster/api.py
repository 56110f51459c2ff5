"""Thin wrappers over the `kubernetes` client that speak plain JSON dicts and one-line errors.

Everything goes through `ClusterApi.call`, which knows the verb and resource of each request, so an
RBAC denial becomes "RBAC denied: cannot patch endpointslices.discovery.k8s.io in namespace
default" -- the exact rule missing from the Role -- instead of a 40-line ApiException. Bodies are
read with `_preload_content=False` and parsed as JSON, so what svcwatch saves and restores is the
server's own representation, not the client's model round-trip (which adds nulls and drops fields).

Each thread gets its own `ApiClient` (same configuration): the client's exec helper `stream()`
swaps the client's request method while it opens a websocket (a known upstream issue), and a REST
or watch call another thread makes on that client meanwhile fails ("Handshake status 200 OK") or
leaves it broken for good.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from svcwatch.model.errors import SetupError

MERGE_PATCH = "application/merge-patch+json"
RBAC_HINT = "apply manifests/rbac.yaml (and bind it to your user) or use a context with that right"


POD_SECURITY = re.compile(r'violates PodSecurity "([a-z]+)(?::[^"]*)?": (.*)')


class PodSecurityRejected(SetupError):
    """Pod Security admission refused a pod: the namespace's enforced level and the fix."""

    def __init__(self, namespace: str, level: str, violations: str) -> None:
        self.namespace, self.level = namespace, level
        super().__init__(
            f"Pod Security admission refused svcwatch's node agent in namespace {namespace}: it "
            f'enforces the "{level}" level and the agent needs privileged ({violations}): pass '
            "--agent-namespace with a namespace that allows privileged pods, or label this one: "
            f"kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=privileged"
        )


class NotFound(LookupError):
    """The object does not exist (HTTP 404): callers decide whether that is an error."""


class Conflict(RuntimeError):
    """The object already exists (HTTP 409 on create)."""


@dataclass(frozen=True, slots=True)
class Kind:
    """Where the client keeps one resource's methods, and its RBAC name."""

    api: str  # CoreV1Api | AppsV1Api | DiscoveryV1Api
    method_suffix: str  # e.g. "namespaced_endpoint_slice"
    resource: str  # RBAC resource, e.g. "endpointslices.discovery.k8s.io"


KINDS: dict[str, Kind] = {
    "Pod": Kind("CoreV1Api", "namespaced_pod", "pods"),
    "Service": Kind("CoreV1Api", "namespaced_service", "services"),
    "Deployment": Kind("AppsV1Api", "namespaced_deployment", "deployments.apps"),
    "EndpointSlice": Kind(
        "DiscoveryV1Api", "namespaced_endpoint_slice", "endpointslices.discovery.k8s.io"
    ),
}


class ClusterApi:
    """The few API calls svcwatch makes, each translated to dicts, NotFound, or a SetupError."""

    def __init__(self, api_client: Any, *, server: str = "?", context: str = "?") -> None:
        self.configuration = api_client.configuration
        self.server = server
        self.context = context
        self._local = threading.local()
        self._local.apis = self._apis_on(api_client)  # the creating thread keeps this client
        self._clients: list[tuple[threading.Thread, Any]] = [
            (threading.current_thread(), api_client)
        ]
        self._clients_lock = threading.Lock()

    @staticmethod
    def _apis_on(api_client: Any) -> dict[str, Any]:
        from kubernetes import client  # heavy: only cluster mode needs it

        names = ("CoreV1Api", "AppsV1Api", "DiscoveryV1Api")
        return {name: getattr(client, name)(api_client) for name in names}

    @property
    def _apis(self) -> dict[str, Any]:
        """This thread's API objects, on this thread's own ApiClient (made on first use)."""
        apis: dict[str, Any] | None = getattr(self._local, "apis", None)
        if apis is None:
            from kubernetes import client

            api_client = client.ApiClient(self.configuration)
            with self._clients_lock:
                self._close_clients(ended_only=True)
                self._clients.append((threading.current_thread(), api_client))
            apis = self._local.apis = self._apis_on(api_client)
        return apis

    def _close_clients(self, *, ended_only: bool) -> None:
        keep = []
        for thread, api_client in self._clients:
            if ended_only and thread.is_alive():
                keep.append((thread, api_client))
            else:
                api_client.close()  # its pooled keep-alive connections
        self._clients = keep

    def close(self) -> None:
        """Close every thread's client's pooled connections (call when all are done with it; a
        later call opens new ones)."""
        with self._clients_lock:
            self._close_clients(ended_only=False)

    @property
    def core(self) -> Any:
        """CoreV1Api on the calling thread's client (also what an exec is opened with)."""
        return self._apis["CoreV1Api"]

    def call(
        self,
        verb: str,
        resource: str,
        namespace: str | None,
        fn: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Run one client call; return its JSON body as a dict (None when empty)."""
        from kubernetes.client.exceptions import ApiException  # heavy: import on use
        from urllib3.exceptions import HTTPError

        try:
            response = fn(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise self.translate(exc, verb, resource, namespace) from None
        except HTTPError as exc:
            raise SetupError(
                f"cannot reach the API server {self.server} of context {self.context!r} "
                f"({type(exc).__name__}): is the cluster running? (try `kubectl --context "
                f"{self.context} get nodes`)"
            ) from None
        data = response.data
        return json.loads(data) if data else None

    def call_stream(
        self, verb: str, resource: str, namespace: str | None, opener: Callable[[], Any]
    ) -> Any:
        """Open a websocket session (exec); handshake failures carry the HTTP status in text."""
        from kubernetes.client.exceptions import ApiException  # heavy: import on use

        try:
            return opener()
        except ApiException as exc:
            match = re.search(r"Handshake status (\d{3})", str(exc.reason or ""))
            if match and not exc.status:
                exc.status = int(match.group(1))
            if not exc.status:
                raise SetupError(
                    f"cannot {verb} {resource} in namespace {namespace} via {self.server}: "
                    f"{_status_message(exc)}"
                ) from None
            raise self.translate(exc, verb, resource, namespace) from None

    def translate(self, exc: Any, verb: str, resource: str, namespace: str | None) -> Exception:
        """An ApiException as NotFound, Conflict or a one-line SetupError (verb + resource)."""
        where = f" in namespace {namespace}" if namespace else " (cluster-wide)"
        status = int(getattr(exc, "status", 0) or 0)
        refused = POD_SECURITY.search(_status_message(exc, 2000)) if status == 403 else None
        if refused is not None:
            return PodSecurityRejected(namespace or "", refused.group(1), refused.group(2))
        if status == 403:
            return SetupError(
                f"RBAC denied: cannot {verb} {resource}{where} as context {self.context!r}: "
                f"{RBAC_HINT}"
            )
        if status == 401:
            return SetupError(
                f"the API server rejected the credentials of context {self.context!r} (401): "
                "refresh the kubeconfig"
            )
        if status == 404:
            return NotFound(f"{resource}{where}: not found")
        if status == 409:
            return Conflict(f"{resource}{where}: already exists")
        return SetupError(f"cannot {verb} {resource}{where}: HTTP {status} {_status_message(exc)}")

    # --- typed helpers: one per request svcwatch makes ------------------------------------------

    def _method(self, action: str, kind: str) -> tuple[Callable[..., Any], Kind]:
        spec = KINDS[kind]
        return getattr(self._apis[spec.api], f"{action}_{spec.method_suffix}"), spec

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        fn, spec = self._method("read", kind)
        body: dict[str, Any] = self.call("get", spec.resource, namespace, fn, name, namespace)
        return body

    def read_or_none(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.read(kind, namespace, name)
        except NotFound:
            return None

    def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of `kind` in `namespace` whose labels include `labels` (checked here too)."""
        fn, spec = self._method("list", kind)
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        body = self.call("list", spec.resource, namespace, fn, namespace, label_selector=selector)
        items: list[dict[str, Any]] = list((body or {}).get("items") or [])
        return [i for i in items if has_labels(i, labels or {})]

    def create(self, kind: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        fn, spec = self._method("create", kind)
        created: dict[str, Any] = self.call(
            "create", spec.resource, namespace, fn, namespace, dict(body)
        )
        return created

    def merge_patch(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): lists in `patch` replace the object's lists whole."""
        fn, spec = self._method("patch", kind)
        patched: dict[str, Any] = self.call(
            "patch",
            spec.resource,
            namespace,
            fn,
            name,
            namespace,
            dict(patch),
            _content_type=MERGE_PATCH,
        )
        return patched

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete now (grace period 0 for pods); False when it was already gone."""
        fn, spec = self._method("delete", kind)
        extra = {"grace_period_seconds": 0} if kind == "Pod" else {}
        try:
            self.call("delete", spec.resource, namespace, fn, name, namespace, **extra)
        except NotFound:
            return False
        return True


def has_labels(obj: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Does the object carry every label in `labels`?"""
    own = (obj.get("metadata") or {}).get("labels") or {}
    return all(own.get(k) == v for k, v in labels.items())


def _status_message(exc: Any, limit: int = 200) -> str:
    try:
        message = json.loads(exc.body).get("message")
    except (TypeError, ValueError, AttributeError):
        message = None
    text = str(message or getattr(exc, "reason", "") or "")
    return " ".join(text.split())[:limit]


def connect(
    kubeconfig: str | None, context: str | None, *, in_cluster: str | None = None
) -> tuple[Any, ClusterApi]:
    """Resolve the kubeconfig and context (or, with `in_cluster`, the pod's ServiceAccount in
    that directory) and build the API wrapper (no request made yet).

    Returns:
        (ClusterTarget, ClusterApi); every failure is a one-line SetupError.
    """
    from svcwatch.cluster.kubeconfig import in_cluster_target, new_api_client, resolve

    target = in_cluster_target(in_cluster) if in_cluster else resolve(kubeconfig, context)
    return target, ClusterApi(new_api_client(target), server=target.server, context=target.context)
