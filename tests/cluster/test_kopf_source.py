"""KopfSource against kmock: a real HTTP API with real watch streams, nothing monkey-patched."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import kmock
import pytest

from tests.cluster.conftest import (
    SERVICES,
    SLICE_URL,
    SLICES,
    body,
    load_resources,
    watcher_requests,
)
from tests.cluster.exec_server import QuickCloseServer

pytestmark = pytest.mark.cluster


def add_demo_objects(k8s: kmock.KubernetesEmulator) -> None:
    k8s.objects[SERVICES, "default", "socat"] = body("service-socat")
    k8s.objects[SLICES, "default", "socat"] = body("endpointslice-socat")


def assert_read_only(k8s: kmock.KubernetesEmulator) -> None:
    """The watcher only GETs (discovery, LIST, WATCH): no patches, finalizers or annotations."""
    requests = watcher_requests(k8s)
    assert requests, "the watcher made no requests at all"
    assert {str(r.method.value).upper() for r in requests} == {"GET"}
    assert any(r.action == kmock.action.WATCH and r.resource == SLICES for r in requests)


def with_port(slice_body: dict[str, Any], port: int) -> dict[str, Any]:
    slice_body["ports"][0]["port"] = port
    return slice_body


async def test_added_and_modified_slices_reach_the_handler(
    k8s: kmock.KubernetesEmulator, watch: Any
) -> None:
    add_demo_objects(k8s)
    recorder, _ = await watch()

    added = await recorder.wait_for(lambda: recorder.matching("ADDED", "EndpointSlice"))
    assert added[0].key == "default/socat"
    assert added[0].body["endpoints"][0]["addresses"] == ["10.42.0.142"]
    await recorder.wait_for(lambda: recorder.matching("ADDED", "Service"))

    await k8s.patch(
        f"{SLICE_URL}/socat", json={"ports": [{"name": "", "port": 12346, "protocol": "TCP"}]}
    )
    await k8s.patch(
        f"{SLICE_URL}/socat",
        json={"endpoints": [{"addresses": ["10.42.0.142"], "conditions": {"ready": False}}]},
    )

    modified = await recorder.wait_for(
        lambda: recorder.matching(
            "MODIFIED", "EndpointSlice", "endpoints[0].conditions.ready: true -> false"
        )
    )
    assert modified[0].body["ports"][0]["port"] == 12346
    assert recorder.matching("MODIFIED", "EndpointSlice", "ports[0].port: 12345 -> 12346")
    assert recorder.errors == []
    assert_read_only(k8s)


async def test_objects_of_other_services_are_ignored(
    k8s: kmock.KubernetesEmulator, watch: Any
) -> None:
    add_demo_objects(k8s)
    k8s.objects[SLICES, "default", "redis-x7k2p"] = body("endpointslice-other")
    other_service = body("service-socat")
    other_service["metadata"]["name"] = "redis"
    k8s.objects[SERVICES, "default", "redis"] = other_service
    recorder, source = await watch()
    await recorder.wait_for(lambda: recorder.matching("ADDED", "EndpointSlice"))

    second = body("endpointslice-other")
    second["metadata"]["name"] = "redis-q9v4m"
    await k8s.post(SLICE_URL, json=second)
    await k8s.patch(
        f"{SLICE_URL}/socat", json={"ports": [{"name": "", "port": 12346, "protocol": "TCP"}]}
    )
    await recorder.wait_for(lambda: recorder.matching("MODIFIED", "EndpointSlice"))
    await asyncio.to_thread(source.stop)  # kopf drains every queued event before it stops

    assert {e.key for e in recorder.events} == {"default/socat"}
    assert sorted((e.type, e.kind) for e in recorder.events) == [
        ("ADDED", "EndpointSlice"),
        ("ADDED", "Service"),
        ("MODIFIED", "EndpointSlice"),
    ]
    assert_read_only(k8s)


async def test_a_dropped_watch_reconnects_without_losing_a_change(
    k8s: kmock.KubernetesEmulator, watch: Any
) -> None:
    add_demo_objects(k8s)
    drop = asyncio.Event()
    # The first slice watch-stream is ours: it stays open until `drop`, then the server ends it.
    # Later watch-streams fall through to the emulator, which replays every object as ADDED.
    k8s[kmock.action.WATCH, SLICES] << iter([b"", until(drop)])
    recorder, _ = await watch()
    await recorder.wait_for(lambda: recorder.matching("ADDED", "EndpointSlice"))

    # Changed while nobody is streaming it: only a reconnect can reveal it.
    k8s.objects[SLICES, "default", "socat"] = with_port(body("endpointslice-socat"), 8080)
    drop.set()

    changed = await recorder.wait_for(
        lambda: recorder.matching("MODIFIED", "EndpointSlice", "ports[0].port: 12345 -> 8080")
    )
    assert changed[0].old is not None and changed[0].old["ports"][0]["port"] == 12345
    slice_watches = [
        r for r in watcher_requests(k8s) if r.action == kmock.action.WATCH and r.resource == SLICES
    ]
    assert len(slice_watches) >= 2
    # The emulator's replay of the unchanged Service is no event.
    assert len(recorder.matching("ADDED", "Service")) == 1
    assert recorder.matching("MODIFIED", "Service") == []
    assert_read_only(k8s)


async def test_410_gone_relists_and_keeps_the_change(
    k8s: kmock.KubernetesEmulator, watch: Any
) -> None:
    add_demo_objects(k8s)
    expire = asyncio.Event()
    gone = {
        "type": "ERROR",
        "object": {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version: 48213 (48990)",
        },
    }
    k8s[kmock.action.WATCH, SLICES] << iter([b"", until(expire), gone])
    recorder, source = await watch()
    await recorder.wait_for(lambda: recorder.matching("ADDED", "EndpointSlice"))
    lists_before = _slice_lists(k8s)

    k8s.objects[SLICES, "default", "socat"] = with_port(body("endpointslice-socat"), 8080)
    expire.set()

    await recorder.wait_for(
        lambda: recorder.matching("MODIFIED", "EndpointSlice", "ports[0].port: 12345 -> 8080")
    )
    await recorder.wait_for(lambda: recorder.stale and recorder.stale[-1] is None)
    assert isinstance(recorder.stale[0], float), "the 410 should have marked the data stale"
    assert not source.is_stale
    assert _slice_lists(k8s) == lists_before + 1
    assert recorder.errors == []
    assert_read_only(k8s)


async def test_an_unreachable_api_server_marks_the_data_stale(watch: Any) -> None:
    """The API server goes away (all connections drop); it comes back with a changed slice."""
    async with kmock.KubernetesEmulator() as k8s:
        k8s = load_resources(k8s)
        add_demo_objects(k8s)
        async with kmock.Server(k8s, server_cls=QuickCloseServer) as server:
            port = server.port
            recorder, source = await watch(server_url=str(server.url))
            await recorder.wait_for(lambda: recorder.matching("ADDED", "EndpointSlice"))
        stale_since = await recorder.wait_for(lambda: source.stale_since)

        k8s.objects[SLICES, "default", "socat"] = with_port(body("endpointslice-socat"), 8080)
        async with kmock.Server(k8s, port=port, server_cls=QuickCloseServer):
            await recorder.wait_for(
                lambda: recorder.matching(
                    "MODIFIED", "EndpointSlice", "ports[0].port: 12345 -> 8080"
                )
            )
            await recorder.wait_for(lambda: not source.is_stale)
        assert recorder.stale[0] == stale_since
        assert_read_only(k8s)


async def test_a_broken_watch_stream_restarts_kopf(
    k8s: kmock.KubernetesEmulator, watch: Any
) -> None:
    """kopf gives up a watch on any stream error but 410; the source starts a fresh kopf. When
    it stops, every connection it opened through both kopfs is closed, by the watcher itself (not
    left for the garbage collector, which warns about each)."""
    add_demo_objects(k8s)
    fail = asyncio.Event()
    broken = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "reason": "InternalError"}}
    k8s[kmock.action.WATCH, SLICES] << iter([b"", until(fail), broken])
    recorder, source = await watch()
    await recorder.wait_for(lambda: recorder.matching("ADDED", "EndpointSlice"))
    port = int(str(k8s.url).rsplit(":", 1)[1].split("/")[0])
    assert connections_to(port) > 0  # the lists and watches, open while it watches

    k8s.objects[SLICES, "default", "socat"] = with_port(body("endpointslice-socat"), 8080)
    fail.set()

    await recorder.wait_for(
        lambda: recorder.matching("MODIFIED", "EndpointSlice", "ports[0].port: 12345 -> 8080")
    )
    await recorder.wait_for(lambda: not source.is_stale)
    assert any("500" in line or "InternalError" in line for line in recorder.errors)
    assert isinstance(recorder.stale[0], float)
    assert_read_only(k8s)
    await asyncio.to_thread(source.stop)
    assert connections_to(port) == 0


def until(event: asyncio.Event) -> Callable[[], Awaitable[None]]:
    """A stream item that holds the stream open until `event` is set, sending nothing."""

    async def wait() -> None:
        await event.wait()

    return wait


def _slice_lists(k8s: kmock.KubernetesEmulator) -> int:
    return sum(
        1 for r in watcher_requests(k8s) if r.action == kmock.action.LIST and r.resource == SLICES
    )


def connections_to(port: int) -> int:
    """Established TCP connections this process holds to 127.0.0.1:`port` (from /proc)."""
    import os
    from pathlib import Path

    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and int(remote.split(":")[1], 16) == port and inode in inodes:
            count += 1
    return count


@pytest.mark.parametrize("moment", [0.0, 0.05, 0.15, 0.3, 0.6])
async def test_a_watch_stopped_at_any_moment_of_its_start_holds_no_connection(
    k8s: kmock.KubernetesEmulator, moment: float
) -> None:
    """A dashboard quit while the watch is still starting: stopped at that moment, the watcher
    holds no connection afterwards, and says nothing went wrong."""
    import kopf

    from svcwatch.watch.kopf_source import KopfSource

    add_demo_objects(k8s)
    url = str(k8s.url)
    errors: list[str] = []
    source = KopfSource(
        namespace="default",
        service_name="socat",
        handler=lambda _event: None,
        on_error=errors.append,
        login=lambda **_: kopf.ConnectionInfo(server=url),
    )
    starting = asyncio.create_task(asyncio.to_thread(source.start, timeout=20))
    await asyncio.sleep(moment)
    await asyncio.to_thread(source.stop)
    (started,) = await asyncio.gather(starting, return_exceptions=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert connections_to(port) == 0
    assert errors == []
    # up before the stop, or told in one line that it was stopped first
    assert started is None or str(started) == "cannot watch the cluster: stopped before it was up"
