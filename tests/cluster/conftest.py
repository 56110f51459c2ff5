"""kmock fixtures: a fresh, short-lived Kubernetes API mock (real HTTP, watch streams) per test.

kmock slows down with every request it has served, so no server outlives its test. The bundled
resource discovery is loaded first: without `v1` and `discovery.k8s.io/v1` kopf cannot resolve
what to watch. Tests write to the mock through kmock's own client (User-Agent `kmock/...`), so the
request log tells the test's writes apart from the watcher's requests.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest

from svcwatch.watch.events import WatchEvent
from svcwatch.watch.kopf_source import KopfSource

BODIES = Path(__file__).parent.parent / "data" / "bodies"
SLICES = kmock.resource("discovery.k8s.io", "v1", "endpointslices")
SERVICES = kmock.resource("", "v1", "services")
SLICE_URL = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def body(name: str) -> dict[str, Any]:
    """A recorded API body from tests/data/bodies (a fresh copy each time)."""
    return copy.deepcopy(json.loads((BODIES / f"{name}.json").read_text()))


class Recorder:
    """Collects what a watcher delivers, from kopf's thread; awaitable from the test's loop."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self.errors: list[str] = []
        self.stale: list[float | None] = []
        self._lock = threading.Lock()

    def handler(self, event: WatchEvent) -> None:
        with self._lock:
            self.events.append(event)

    def on_error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def on_stale(self, since: float | None) -> None:
        with self._lock:
            self.stale.append(since)

    def matching(self, type_: str, kind: str, line: str | None = None) -> list[WatchEvent]:
        with self._lock:
            return [
                e
                for e in self.events
                if e.type == type_ and e.kind == kind and (line is None or line in e.describe())
            ]

    async def wait_for(self, what: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait, not blocking the mock's loop, until `what()` is truthy; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while not (result := what()):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out; events={self.events!r} errors={self.errors!r} stale={self.stale!r}"
                )
            await asyncio.sleep(0.01)
        return result


@pytest.fixture()
def k8s(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    """The per-test kmock emulator (from kmock's pytest plugin) with Kubernetes' resources."""
    return load_resources(kmock)


def load_resources(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    """Load Kubernetes' built-in resource discovery (v1, discovery.k8s.io/v1, ...) into kmock."""
    with warnings.catch_warnings():  # kmock 0.8 reads its data with a deprecated importlib API
        warnings.simplefilter("ignore", DeprecationWarning)
        kmock.resources.load_bundled()
    return kmock


@pytest.fixture()
async def watch(k8s: kmock.KubernetesEmulator) -> AsyncIterator[Callable[..., Any]]:
    """Start a KopfSource on the mock: `recorder, source = await watch()`; stopped at teardown."""
    started: list[KopfSource] = []

    async def start(
        server_url: str | None = None, service_name: str = "socat"
    ) -> tuple[Recorder, KopfSource]:
        import kopf  # the login handler's return type; kopf is only needed by cluster tests

        url = server_url or str(k8s.url)
        recorder = Recorder()
        source = KopfSource(
            namespace="default",
            service_name=service_name,
            handler=recorder.handler,
            on_error=recorder.on_error,
            on_stale=recorder.on_stale,
            login=lambda **_: kopf.ConnectionInfo(server=url),
        )
        await asyncio.to_thread(source.start, timeout=20)
        started.append(source)
        return recorder, source

    yield start
    for source in started:
        await asyncio.to_thread(source.stop)


def watcher_requests(k8s: kmock.KubernetesEmulator) -> list[kmock.Request]:
    """Every request except the test's own writes (made with kmock's client)."""
    return [r for r in k8s if not str(r.headers.get("User-Agent", "")).startswith("kmock/")]
