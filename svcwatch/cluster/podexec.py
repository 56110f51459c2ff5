"""The node agent's commands over the Kubernetes exec API (pods/exec, a websocket).

The protocol is `v5.channel.k8s.io` (or v4 on older API servers): binary frames whose first byte is
the channel -- 1 stdout, 2 stderr, 3 error -- and, when the command is over, one metav1.Status on
the error channel: Success, Failure with reason NonZeroExitCode and the exit code in
details.causes, or a Failure with no exit code at all when the container runtime could not start
the command (containerd: `exec: "nft": executable file not found in $PATH`). The client library
turns that last one into a ValueError, so the status is read here, and a missing binary becomes
`MissingBinary` naming the binary, the image and the node -- which also lets the agent fall back
to the next iptables-save flavour.

Each exec is opened with the calling thread's own API client (ClusterApi.core): the client's
`stream()` swaps the client's request method while it opens the websocket, which breaks any other
thread's REST or watch call made on the same client meanwhile. The stream is opened with
`binary=True`: the client's default decodes stdout as UTF-8 and would mangle pcap bytes.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from svcwatch.cluster.transport import MissingBinary, command_failed, timed_out
from svcwatch.model.errors import SetupError

STDOUT, STDERR, ERROR = 1, 2, 3  # the channels of Kubernetes' exec protocol
READ_TIMEOUT = 0.5  # seconds one websocket poll waits, so a stop is noticed quickly
NOT_FOUND_WORDS = ("executable file not found", "no such file or directory")


class StreamDropped(OSError):
    """The exec connection ended without the command's exit status (API server, node or network
    went away): the capture behind it should be restarted."""


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """The command's end as the error channel's metav1.Status says it."""

    code: int | None  # None: no exit code (the runtime could not run it, or no status came)
    message: str
    received: bool  # False: the connection ended before any status

    @classmethod
    def parse(cls, raw: bytes | str) -> ExitStatus:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            return cls(None, "", received=False)
        try:
            status = json.loads(text)
        except ValueError:  # protocol v1-v3 sent the error as plain text
            return cls(None, text.strip(), received=True)
        if status.get("status") == "Success":
            return cls(0, "", received=True)
        causes = (status.get("details") or {}).get("causes") or []
        for cause in causes:
            if cause.get("reason") == "ExitCode":
                try:
                    return cls(int(cause.get("message")), str(status.get("message", "")), True)
                except (TypeError, ValueError):
                    break
        message = " ".join(str(status.get("message") or status.get("reason") or "").split())
        return cls(None, message, received=True)


def check_exit(
    argv: Sequence[str], where: str, image: str, status: ExitStatus, stderr: str
) -> None:
    """Raise the one-line error for a command that did not succeed; return when it did."""
    if status.code == 0:
        return
    if status.code is not None:
        raise command_failed(argv, where, status.code, stderr)
    if not status.received:
        raise StreamDropped(f"the exec of {argv[0]} on {where} ended before the command did")
    if any(words in status.message for words in NOT_FOUND_WORDS):
        raise MissingBinary(argv[0], image, where)
    raise SetupError(f"{argv[0]} could not run on {where}: {status.message[-200:]}")


def dispose(ws: Any) -> None:
    """Close an exec websocket and its socket. WSClient.close() alone leaves the socket open when
    the server closed first (the library then thinks it is already disconnected)."""
    try:
        ws.close(timeout=0)
    except Exception:  # the connection is already gone
        pass
    if ws.sock is not None:
        ws.sock.shutdown()


class ExecTransport:
    """The agent's commands run by `kubectl exec`-equivalent calls into pod `pod`."""

    def __init__(
        self,
        api: Any,
        namespace: str,
        pod: str,
        node: str,
        image: str = "?",
        container: str = "agent",
    ) -> None:
        self.api = api  # a svcwatch.cluster.api.ClusterApi
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.image = image
        self.where = f"node {node}"

    def _connect(self, argv: Sequence[str]) -> Any:
        from kubernetes.stream import stream  # heavy: only cluster mode needs it

        core = self.api.core  # this thread's own client (see the module docstring)
        return self.api.call_stream(
            "create",
            "pods/exec",
            self.namespace,
            lambda: stream(
                core.connect_get_namespaced_pod_exec,
                self.pod,
                self.namespace,
                command=list(argv),
                container=self.container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
                binary=True,
            ),
        )

    def run(self, argv: Sequence[str], timeout: float = 20.0) -> str:
        """Run to completion; a command still running after `timeout` is an error, not a
        truncated success."""
        ws = self._connect(argv)
        try:
            ws.run_forever(timeout=timeout)
            finished = not ws.is_open()
            out = bytes(ws.read_channel(STDOUT))
            err = bytes(ws.read_channel(STDERR)).decode(errors="replace")
            status = ExitStatus.parse(ws.read_channel(ERROR))
        except Exception as exc:  # the websocket library's own errors: the connection broke
            raise StreamDropped(f"the exec of {argv[0]} on {self.where} broke: {exc}") from None
        finally:
            dispose(ws)
        if not finished:  # still running: what came so far is not the command's output
            raise timed_out(argv, self.where, timeout)
        check_exit(argv, self.where, self.image, status, err)
        return out.decode(errors="replace")

    def open_stream(self, argv: Sequence[str]) -> io.RawIOBase:
        return ExecStream(self._connect(argv), argv, self.where, self.image)


class ExecStream(io.RawIOBase):
    """A websocket exec session's stdout as a raw binary stream (stderr kept for messages).

    One thread reads; `close()` may come from any other. close() never touches the websocket
    library's reader state: it sends the close frame and shuts the socket down, which wakes the
    reader, and whichever of the two is last closes the file descriptor.
    """

    def __init__(self, ws: Any, argv: Sequence[str], where: str, image: str) -> None:
        self.ws = ws
        self.argv, self.where, self.image = list(argv), where, image
        self.stderr = bytearray()
        self.status = ExitStatus(None, "", received=False)
        self._pending = memoryview(b"")  # what the last frame left unread; sliced, never copied
        self._closing = False
        self._io = threading.Lock()  # held while the websocket is read
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._io:
            try:
                return self._readinto(buffer)
            except (SetupError, OSError):
                if self._closing:  # close() from another thread: an end, not an error
                    return 0
                raise
            except Exception as exc:  # the websocket library's: the connection broke
                if self._closing:
                    return 0
                raise StreamDropped(f"exec stream on {self.where} dropped: {exc}") from None
            finally:
                if self._closing:
                    self._release()

    def _poll(self, timeout: float) -> None:
        """One websocket poll: stdout to `_pending`, stderr kept, the status noted at the end."""
        self.ws.update(timeout=timeout)
        chunk = bytes(self.ws.read_channel(STDOUT))
        if chunk:  # joined only when wait_for_stderr polled before anything was read
            self._pending = memoryview(bytes(self._pending) + chunk if self._pending else chunk)
        self.stderr += self.ws.read_channel(STDERR)
        if not self.ws.is_open():
            self.status = ExitStatus.parse(self.ws.read_channel(ERROR))

    def _readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._closing:
                return 0
            if not self.ws.is_open():
                check_exit(self.argv, self.where, self.image, self.status, self.stderr_text)
                return 0  # EOF: the command ended on its own (exit 0)
            self._poll(READ_TIMEOUT)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")

    def wait_for_stderr(self, text: str, timeout: float) -> bool:
        """Poll (before any reader thread starts) until stderr shows `text`; stdout is kept."""
        import time

        deadline = time.monotonic() + timeout
        with self._io:
            while text not in self.stderr_text and self.ws.is_open():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._poll(min(left, READ_TIMEOUT))
        return text in self.stderr_text

    def failure(self) -> Exception | None:
        """Why the command ended, once it has: its exit status as the error to raise (None while
        it runs or when it exited 0)."""
        if self.ws.is_open():
            return None
        try:
            check_exit(self.argv, self.where, self.image, self.status, self.stderr_text)
        except (SetupError, OSError) as exc:
            return exc
        return None

    def close(self) -> None:
        with self._lock:
            if self.closed or self._closing:
                return
            self._closing = True
        websocket = self.ws.sock
        try:
            websocket.send_close()  # the API server stops the command
        except Exception:  # the connection is already gone
            pass
        try:
            websocket.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in poll
        except Exception:  # already shut down or closed
            pass
        if self._io.acquire(blocking=False):  # no reader inside: release it here
            try:
                self._release()
            finally:
                self._io.release()

    def _release(self) -> None:
        if not self.closed:
            dispose(self.ws)
            super().close()
