"""TCP echo probes name each outcome as the OS (and the blog post) does, over loopback servers."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from svcwatch.model.events import Notice, ProbeEvent
from svcwatch.probe.tcp import ProbeLoop, probe_once
from tests.helpers.sinks import CollectingSink

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


HANDLERS: list[asyncio.Task[None]] = []  # the servers' connection handlers, awaited at the end


async def serve(handler: Handler) -> tuple[asyncio.Server, int]:
    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        HANDLERS.append(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def probe_against(handler: Handler, timeout: float = 1.0) -> ProbeEvent:
    """One probe against `handler`; every connection it served is closed before the loop ends."""
    server, port = await serve(handler)
    async with server:
        event = await probe_once(("127.0.0.1", port), netns=None, timeout=timeout, payload=b"hello")
    handlers, HANDLERS[:] = list(HANDLERS), []
    await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 5)
    return event


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read(100))
    await writer.drain()
    writer.close()


async def test_echo_ok_reports_timings_and_bytes() -> None:
    event = await probe_against(echo)
    assert event.kind == "echo-ok" and event.ok
    assert event.nbytes == 5 and event.src == "127.0.0.1" and event.sport
    assert event.connect_ms is not None and event.echo_ms is not None
    assert event.text().startswith(f"127.0.0.1:{event.sport} -> 127.0.0.1:{event.dport} connect=")
    assert event.text().endswith("(5B)")


async def test_nothing_listening_is_connection_refused() -> None:
    server, port = await serve(echo)
    server.close()
    await server.wait_closed()
    event = await probe_once(("127.0.0.1", port), netns=None, timeout=1.0, payload=b"hello")
    assert (event.kind, event.phase, event.error, event.errno) == (
        "io-error",
        "connect",
        "connection refused",
        "ECONNREFUSED",
    )
    assert event.sport is not None


async def test_silent_server_is_a_read_timeout_in_gos_words() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # the payload, never echoed
        await reader.read(100)  # end of stream: the probe gave up and closed

    event = await probe_against(silent, timeout=0.2)
    assert (event.phase, event.error) == ("read", "i/o timeout")
    assert event.text() == (
        f"127.0.0.1:{event.sport} -> 127.0.0.1:{event.dport} read: read tcp "
        f"127.0.0.1:{event.sport}->127.0.0.1:{event.dport}: i/o timeout"
    )


async def test_short_echo_then_close() -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"he")
        await writer.drain()
        writer.close()

    event = await probe_against(short)
    assert (event.phase, event.error) == ("read", "short echo (2B of 5B)")


async def test_wrong_echo() -> None:
    async def shout(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.read(100)).upper())
        await writer.drain()
        writer.close()

    event = await probe_against(shout)
    assert event.kind == "io-error" and event.error.startswith("wrong echo")


async def test_reset_by_peer() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    event = await probe_against(reset)
    assert (event.phase, event.error, event.errno) == (
        "read",
        "connection reset by peer",
        "ECONNRESET",
    )


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A listener that accepts and never answers, in a thread (the probe loop has its own)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_probes_overlap_so_a_slow_one_never_stalls_the_cadence(silent_listener: int) -> None:
    sink = CollectingSink()
    loop = ProbeLoop(
        sink, target=("127.0.0.1", silent_listener), netns=None, interval=0.1, timeout=0.5
    )
    loop.start()
    deadline = time.monotonic() + 10
    while len(sink.snapshot()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop()
    events = sorted(
        (e for e in sink.snapshot() if isinstance(e, ProbeEvent)), key=lambda e: e.started or 0
    )
    assert len(events) >= 3 and all(e.error == "i/o timeout" for e in events)
    # The second probe began while the first was still waiting for its echo.
    assert events[1].started is not None and events[1].started < events[0].ts


def test_stop_is_prompt_and_emits_nothing_after(silent_listener: int) -> None:
    sink = CollectingSink()
    loop = ProbeLoop(
        sink, target=("127.0.0.1", silent_listener), netns=None, interval=0.05, timeout=5
    )
    loop.start()
    time.sleep(0.2)
    loop.stop()
    count = len(sink.snapshot())
    time.sleep(0.2)
    assert len(sink.snapshot()) == count == 0


def test_a_client_namespace_that_is_gone_is_told_once_not_every_probe() -> None:
    """After `lab down` under a running session every probe fails to open its socket alike:
    the user sees one error notice, not one a second."""
    sink = CollectingSink()
    loop = ProbeLoop(sink, target=("127.0.0.1", 9), netns="svcwatch-gone-client", interval=0.02)
    loop.start()
    time.sleep(0.3)  # some fifteen probes
    loop.stop()
    notices = [e for e in sink.snapshot() if isinstance(e, Notice)]
    assert [(n.kind, n.message.split(":")[:2]) for n in notices] == [
        ("error", ["probe", " cannot open a socket"])
    ]
    assert not any(isinstance(e, ProbeEvent) for e in sink.snapshot())
