"""A fresh kmock Kubernetes API server per test, on a real port, with a kubeconfig pointing at it.

svcwatch's cluster code is synchronous (the `kubernetes` client), so the emulator runs on its own
event loop in a background thread; the test talks to it over HTTP like any client and reads its
request log for assertions. The server lives for one test only: kmock slows down with every
request it has served (docs/design.md).

The kubeconfig points at a front server (exec_server.ExecApi) that serves `pods/exec` over real
websockets and Pod Security refusals, and hands every other request to kmock; with `tls=` it speaks
HTTPS and asks for a client certificate, as a real API server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

from svcwatch.cluster.api import ClusterApi, connect
from tests.cluster.exec_server import ExecApi, QuickCloseServer, Runner, TlsFiles

CONTEXT = "kmock"


class MockCluster:
    """The running emulator: its URL, kubeconfig, request log and a test-side API client."""

    def __init__(
        self, kubeconfig: Path, *, tls: TlsFiles | None = None, runner: Runner | None = None
    ) -> None:
        self.kubeconfig = kubeconfig
        self.tls = tls
        self.runner = runner
        self.handler: Any = None
        self.exec_api: ExecApi | None = None
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kmock", daemon=True)

    def start(self, setup: Callable[[Any], None] | None = None) -> None:
        self._setup = setup
        self._thread.start()
        if not self._ready.wait(timeout=20):
            raise RuntimeError("kmock did not start")
        self._write_kubeconfig()

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as handler, kmock.Server(handler):
            with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated API
                warnings.simplefilter("ignore", DeprecationWarning)
                handler.resources.load_bundled()
            if self._setup is not None:
                self._setup(handler)
            self.exec_api = ExecApi(handler, self.runner)
            front = QuickCloseServer(self.exec_api, host="127.0.0.1")
            await front.start_server(ssl=self.tls.server_context() if self.tls else None)
            self.handler, self.url = handler, str(front.make_url("")).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            await self.exec_api.stop()
            server = front.runner.server if front.runner is not None else None
            for connection in server.connections if server is not None else []:
                if connection.transport is not None:  # gone at once, like a dead API server:
                    connection.transport.abort()  # TLS would wait 30 s for the client's goodbye
            await front.close()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def on_loop(self, fn: Callable[[Any], object]) -> None:
        """Run `fn(handler)` on the server's loop (to add reactions while it serves)."""
        assert self._loop is not None
        done: Future[None] = Future()

        def call() -> None:
            try:
                fn(self.handler)
                done.set_result(None)
            except Exception as exc:  # surfaced in the test thread
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(call)
        done.result(timeout=10)

    def _write_kubeconfig(self) -> None:
        cluster: dict[str, Any] = {"server": self.url}
        user: dict[str, Any] = {"token": "test-token"}
        if self.tls is not None:
            cluster["certificate-authority"] = str(self.tls.ca)
            user = {
                "client-certificate": str(self.tls.client_cert),
                "client-key": str(self.tls.client_key),
            }
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": cluster}],
            "users": [{"name": "tester", "user": user}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": "kmock", "user": "tester"}}],
            "current-context": CONTEXT,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def api(self) -> ClusterApi:
        """A client for the test's own "kubectl" and "kubelet" actions."""
        return connect(str(self.kubeconfig), CONTEXT)[1]

    def requests(self, method: str | None = None, path_part: str = "") -> list[Any]:
        """The request log, filtered by HTTP method and a path fragment."""
        return [
            r
            for r in list(self.handler)
            if (method is None or str(r.method.value) == method) and path_part in r.url.path
        ]

    def stored(self, plural_ref: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The emulator's current copy of an object (None when absent or deleted)."""
        for (resource, ns, obj_name), obj in list(self.handler.objects.items()):
            if (
                resource.plural == plural_ref
                and ns == namespace
                and obj_name == name
                and not obj.deleted
            ):
                return dict(obj.raw)
        return None


@contextlib.contextmanager
def running_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> Iterator[MockCluster]:
    """A kmock API server (MockCluster options: tls, runner), its kubeconfig, and a private
    svcwatch state dir, for the length of the block."""
    monkeypatch.setenv("SVCWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    mock = MockCluster(tmp_path / "kubeconfig", **options)
    mock.start()
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockCluster]:
    """A kmock API server for this test, its kubeconfig, and a private svcwatch state dir."""
    with running_cluster(tmp_path, monkeypatch) as mock:
        yield mock


def make_pod(
    api: ClusterApi,
    namespace: str,
    name: str,
    labels: dict[str, str],
    *,
    node: str = "node-1",
    ip: str | None = None,
) -> None:
    """Play the scheduler (and, with `ip`, the kubelet): a pod on `node`, Ready with that IP."""
    api.create(
        "Pod",
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "creationTimestamp": "2025-01-01T00:00:00Z",
            },
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "alpine/socat"}]},
            "status": {"phase": "Pending"},
        },
    )
    if ip is not None:
        make_ready(api, namespace, name, ip)


def make_ready(
    api: ClusterApi, namespace: str, name: str, ip: str, host_ip: str = "172.18.0.2"
) -> None:
    """Play the kubelet: the pod runs, is Ready and has `ip`."""
    set_pod_status(
        api,
        namespace,
        name,
        phase="Running",
        podIP=ip,
        hostIP=host_ip,
        conditions=[{"type": "Ready", "status": "True"}],
        containerStatuses=[{"name": "c", "ready": True, "state": {"running": {}}}],
    )


def set_pod_status(api: ClusterApi, namespace: str, name: str, **status: Any) -> None:
    """Play the kubelet: write these fields of the pod's status."""
    api.merge_patch("Pod", namespace, name, {"status": status})


def make_slice(
    api: ClusterApi,
    name: str,
    manager: str,
    endpoints: list[dict[str, Any]],
    port: int = 12345,
    *,
    service: str = "socat",
    namespace: str = "default",
) -> dict[str, Any]:
    """An EndpointSlice of Service default/socat (or `service`) managed by `manager`; the
    server's copy."""
    labels = {
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": manager,
    }
    return api.create(
        "EndpointSlice",
        namespace,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "", "port": port, "protocol": "TCP"}],
        },
    )


def run_agent_container(
    api: ClusterApi, name: str, namespace: str = "default", host_ip: str = "172.18.0.2"
) -> None:
    """Play the kubelet for an agent pod: its container runs (hostNetwork: podIP is hostIP)."""
    running = [{"name": "agent", "state": {"running": {}}}]
    status = {"phase": "Running", "hostIP": host_ip, "podIP": host_ip, "containerStatuses": running}
    set_pod_status(api, namespace, name, **status)


def kubelet_for_agents(
    cluster: MockCluster, stop: threading.Event, namespace: str = "default"
) -> None:
    """Play the kubelet for every pod svcwatch creates (node agents, probe pods): it runs."""
    api = cluster.api()
    while not stop.wait(0.1):
        for pod in api.list("Pod", namespace, {"app.kubernetes.io/managed-by": "svcwatch"}):
            if not (pod.get("status") or {}).get("containerStatuses"):
                run_agent_container(api, pod["metadata"]["name"], namespace)
    api.close()


def start_agent_pod(api: ClusterApi, node: str, image: str, namespace: str = "default") -> str:
    """The agent pod svcwatch would create on `node`, created and running; its name."""
    from svcwatch.cluster.agent import render_agent_pod

    body = render_agent_pod(node, namespace, image)
    api.create("Pod", namespace, body)
    run_agent_container(api, body["metadata"]["name"], namespace)
    return str(body["metadata"]["name"])


def wait_for(check: Callable[[], object], what: str, seconds: float = 20) -> None:
    """Poll `check` until it is truthy; AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}")
        time.sleep(0.02)


class AgentKubelet:
    """`kubelet_for_agents` on a thread from now until stop(), which joins it, so it never calls
    a server that has stopped."""

    def __init__(self, cluster: MockCluster, namespace: str = "default") -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=kubelet_for_agents,
            args=(cluster, self._stop, namespace),
            name="kubelet",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
