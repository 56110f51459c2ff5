"""TCP echo probes: connect, send a payload, expect it back, and name failures in the OS's words.

This is what a client of the Service experiences. Each probe's socket is created inside the client
namespace (setns only around socket(), never across an await), so its packets enter the node on
eth0 like a real client's. Failures are named the way Go's net package and the blog post name them —
"connection refused", "i/o timeout", "no route to host", "connection reset by peer" — with the phase
(connect, write, read) where they happened. Probes run as independent asyncio tasks on a private
loop in their own thread: a probe stuck in a 2 s timeout never delays the next one.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time

from svcwatch import netns as netns_mod
from svcwatch.model.events import Notice, ProbeEvent
from svcwatch.sinks import EventSink

# errno -> the words Go's net package uses (and the blog post prints).
ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "i/o timeout",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ECONNRESET: "connection reset by peer",
    errno.EPIPE: "broken pipe",
}


class ProbeFailed(Exception):
    """A probe's failure: the phase it happened in, the OS's words, and the errno name if any."""

    def __init__(self, phase: str, words: str, errno_name: str | None = None) -> None:
        super().__init__(f"{phase}: {words}")
        self.phase, self.words, self.errno_name = phase, words, errno_name


def _os_failure(phase: str, exc: OSError) -> ProbeFailed:
    code = exc.errno or 0
    words = ERRNO_WORDS.get(code) or (exc.strerror or str(exc)).lower()
    return ProbeFailed(phase, words, errno.errorcode.get(code))


def _new_socket(netns: str | None) -> socket.socket:
    if netns:
        sock = netns_mod.socket_in(netns, socket.AF_INET, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def _connect(sock: socket.socket, target: tuple[str, int], timeout: float) -> None:
    """Non-blocking connect; the source port is bound as soon as connect() returns EINPROGRESS."""
    loop = asyncio.get_running_loop()
    code = sock.connect_ex(target)
    if code not in (0, errno.EINPROGRESS):
        raise _os_failure("connect", OSError(code, errno.errorcode.get(code, "")))
    if code == errno.EINPROGRESS:
        writable: asyncio.Future[None] = loop.create_future()

        def _writable() -> None:
            if not writable.done():
                writable.set_result(None)

        loop.add_writer(sock.fileno(), _writable)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for returns the result instead of raising
            # CancelledError when the connect completes as the probe is cancelled, so a stopped
            # loop went on to wait out the echo timeout (stop() took 5 s under load).
            async with asyncio.timeout(timeout):
                await writable
        except TimeoutError:
            raise ProbeFailed("connect", "i/o timeout", "ETIMEDOUT") from None
        finally:
            loop.remove_writer(sock.fileno())
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise _os_failure("connect", OSError(code, ""))


async def _echo(sock: socket.socket, payload: bytes, timeout: float) -> bytes:
    """Send the payload and read until as many bytes came back, EOF, or the timeout."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_sendall(sock, payload)
    except TimeoutError:
        raise ProbeFailed("write", "i/o timeout", "ETIMEDOUT") from None
    except OSError as exc:
        raise _os_failure("write", exc) from None
    received = b""
    deadline = loop.time() + timeout
    while len(received) < len(payload):
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await loop.sock_recv(sock, 65536)
        except TimeoutError:
            raise ProbeFailed("read", "i/o timeout", "ETIMEDOUT") from None
        except OSError as exc:
            raise _os_failure("read", exc) from None
        if not chunk:
            break
        received += chunk
    return received


def _check_echo(payload: bytes, received: bytes) -> None:
    if received == payload:
        return
    if len(received) < len(payload):
        words = "EOF" if not received else f"short echo ({len(received)}B of {len(payload)}B)"
        raise ProbeFailed("read", words)
    raise ProbeFailed("read", f"wrong echo ({received[:16]!r}, expected {payload[:16]!r})")


async def probe_once(
    target: tuple[str, int], *, netns: str | None, timeout: float, payload: bytes
) -> ProbeEvent:
    """One probe: connect (≤ timeout), send `payload`, read the echo (≤ timeout).

    Every outcome is an event; only failing to open a socket at all raises (OSError).
    """
    started = time.time()
    src, sport = "", None
    phase_ms: dict[str, float] = {}
    sock = _new_socket(netns)
    try:
        begin = time.perf_counter()
        try:
            await _connect(sock, target, timeout)
        finally:
            src, sport = _local_address(sock)
        phase_ms["connect"] = (time.perf_counter() - begin) * 1000
        begin = time.perf_counter()
        received = await _echo(sock, payload, timeout)
        _check_echo(payload, received)
        phase_ms["echo"] = (time.perf_counter() - begin) * 1000
    except ProbeFailed as failure:
        return _failed(failure, (src, sport), target, phase_ms.get("connect"), started)
    finally:
        sock.close()
    return ProbeEvent(
        time.time(), "echo-ok", src, sport, target[0], target[1],
        connect_ms=phase_ms["connect"], echo_ms=phase_ms["echo"], nbytes=len(received),
        started=started,
    )  # fmt: skip


def _failed(
    failure: ProbeFailed,
    source: tuple[str, int | None],
    target: tuple[str, int],
    connect_ms: float | None,
    started: float,
) -> ProbeEvent:
    return ProbeEvent(
        time.time(), "io-error", source[0], source[1], target[0], target[1],
        connect_ms=connect_ms, phase=failure.phase, error=failure.words,
        errno=failure.errno_name, started=started,
    )  # fmt: skip


def _local_address(sock: socket.socket) -> tuple[str, int | None]:
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return "", None
    return str(host), (int(port) or None)


class ProbeLoop:
    """Probe `target` every `interval` seconds from a private thread and loop, into a sink."""

    def __init__(
        self,
        sink: EventSink,
        *,
        target: tuple[str, int],
        netns: str | None,
        interval: float = 1.0,
        timeout: float = 2.0,
        payload: bytes = b"hello",
    ) -> None:
        self.sink = sink
        self.target = target
        self.netns = netns
        self.interval = interval
        self.timeout = timeout
        self.payload = payload
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        # The socket error last told: a gone namespace fails every probe alike, and one notice
        # says it (not one a second); a working probe, or another error, ends the streak.
        self._socket_error: str | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("probe loop already started")
        self._thread = threading.Thread(target=self._run, name="tcp-probe", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=5)

    def stop(self) -> None:
        """Stop scheduling, cancel probes in flight (they report nothing), join the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._schedule())
        finally:
            loop.close()

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        in_flight: set[asyncio.Task[None]] = set()
        next_at = loop.time()
        while not self._stopping.is_set():
            task = loop.create_task(self._probe_and_emit())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            next_at += self.interval
            try:
                await asyncio.wait_for(self._stopping.wait(), max(0.0, next_at - loop.time()))
            except TimeoutError:
                pass
        for task in list(in_flight):
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)

    async def _probe_and_emit(self) -> None:
        try:
            event = await probe_once(
                self.target, netns=self.netns, timeout=self.timeout, payload=self.payload
            )
        except OSError as exc:  # no socket at all (the client namespace is gone): tell, keep going
            message = f"probe: cannot open a socket: {exc}"
            if message != self._socket_error:
                self._socket_error = message
                self.sink.emit(Notice(time.time(), "error", message, origin="tcp-probe"))
            return
        self._socket_error = None
        self.sink.emit(event)
