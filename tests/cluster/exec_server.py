"""A conformant `pods/exec` websocket endpoint in front of kmock: what ExecTransport meets on a
real API server, frame for frame.

kmock has no exec subresource, and its handler is a plain coroutine on aiohttp requests, so this
front handler takes every request first: `GET .../pods/NAME/exec` with a websocket upgrade is served
here, a privileged pod create may be refused as Pod Security admission would, and everything else
goes to kmock unchanged (same request object, so kmock's request log and watch streams see it all).

The protocol is Kubernetes' remote command over websockets (apimachinery wsstream, the API
server's `proxy/websocket.go`): subprotocol `v5.channel.k8s.io` or `v4.channel.k8s.io`, chosen in
the client's order; binary frames whose first byte is the channel (0 stdin, 1 stdout, 2 stderr,
3 error, 4 resize; v5 adds 255 = "close channel N"); an empty frame on stdout as soon as the
upgrade is done; then the command's output; then one metav1.Status JSON on the error channel
(Success, or Failure with reason NonZeroExitCode and the exit code as details.causes[0].message,
or InternalError with the runtime's message and no exit code), and a websocket close frame.

The command really runs: `runner(namespace, pod, argv)` gives the local argv (by default the same
one, on this host; tests wrap it in `ip netns exec NODE`), so ExecTransport and NodeAgent run
unmodified. Knobs a test turns: `upgrade_delay` (seconds before the 101 answer, drawn from a
range), `missing` (binaries "not in the image": containerd's InternalError), `pod_security`
(namespace -> enforced level), `protocols` (what the server speaks) and `abort()` (drop live
streams without a close frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.test_utils
import aiohttp.web_runner
from aiohttp import web

V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
EXEC_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec$")
PODS_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")
CONTAINER_ID = "3f4c1b2a9d8e7f60"  # what containerd names the exec'd container in its message

Runner = Callable[[str, str, Sequence[str]], Sequence[str]]


def success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def nonzero_exit(argv: Sequence[str], code: int) -> dict[str, Any]:
    """What the API server writes for a command that exited with `code` (exec.CodeExitError)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
        f"[{' '.join(argv)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error(message: str) -> dict[str, Any]:
    """apierrors.NewInternalError: the runtime could not run the command at all (no exit code)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def not_in_image(binary: str) -> str:
    """containerd's words for an exec of a binary the image does not have."""
    return (
        "error executing command in container: failed to exec in container: failed to start exec "
        f'"{CONTAINER_ID}": OCI runtime exec failed: exec failed: unable to start container '
        f'process: exec: "{binary}": executable file not found in $PATH: unknown'
    )


def api_status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    """A plain (non-websocket) API error response, as the API server words them."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


def pod_security_violations(pod: dict[str, Any]) -> list[str]:
    """The baseline-level checks the agent pod fails, worded as the PodSecurity admission does."""
    spec = pod.get("spec") or {}
    found = []
    privileged = [
        c.get("name", "?")
        for c in spec.get("containers") or []
        if (c.get("securityContext") or {}).get("privileged")
    ]
    if privileged:
        names = ", ".join(f'"{n}"' for n in privileged)
        noun = "container" if len(privileged) == 1 else "containers"
        found.append(f"privileged ({noun} {names} must not set securityContext.privileged=true)")
    if spec.get("hostNetwork"):
        found.append("host namespaces (hostNetwork=true)")
    return found


@dataclass
class ExecRecord:
    """One exec the server served: what ran, over which protocol, and how it ended."""

    namespace: str
    pod: str
    container: str
    argv: list[str]
    protocol: str
    status: dict[str, Any] | None = None
    aborted: bool = False
    client_closed: bool = False
    closed_channels: list[int] = field(default_factory=list)


class ExecApi:
    """The front handler: pods/exec and Pod Security here, every other request to kmock."""

    def __init__(self, kmock_handler: Any, runner: Runner | None = None) -> None:
        self.kmock = kmock_handler
        self.runner: Runner = runner or (lambda _ns, _pod, argv: argv)
        self.upgrade_delay: tuple[float, float] = (0.0, 0.0)
        self.protocols: tuple[str, ...] = (V5, V4)
        self.missing: set[str] = set()
        self.pod_security: dict[str, str] = {}  # namespace -> enforced level ("baseline", ...)
        self.execs: list[ExecRecord] = []
        self._live: dict[int, tuple[web.WebSocketResponse, ExecRecord]] = {}
        self._procs: set[asyncio.subprocess.Process] = set()

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        exec_match = EXEC_PATH.match(request.path)
        if exec_match and request.method in ("GET", "POST"):
            return await self._exec(request, exec_match.group(1), exec_match.group(2))
        pods_match = PODS_PATH.match(request.path)
        if pods_match and request.method == "POST" and pods_match.group(1) in self.pod_security:
            refused = await self._admit(request, pods_match.group(1))
            if refused is not None:
                return refused
        response: web.StreamResponse = await self.kmock(request)
        return response

    # --- Pod Security admission ------------------------------------------------------------

    async def _admit(self, request: web.BaseRequest, namespace: str) -> web.Response | None:
        """403 Forbidden with the PodSecurity message when the pod breaks the namespace's level."""
        level = self.pod_security[namespace]
        pod = json.loads(await request.read() or b"{}")
        violations = pod_security_violations(pod) if level != "privileged" else []
        if not violations:
            return None
        name = (pod.get("metadata") or {}).get("name", "")
        message = (
            f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": '
            + ", ".join(violations)
        )
        return api_status(403, "Forbidden", message, name=name, kind="pods")

    # --- pods/exec ---------------------------------------------------------------------------

    def _stored_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        for (resource, ns, obj_name), obj in list(self.kmock.objects.items()):
            if resource.plural == "pods" and ns == namespace and obj_name == name:
                if not obj.deleted:
                    return dict(obj.raw)
        return None

    def _refusal(self, request: web.BaseRequest, namespace: str, name: str) -> web.Response | None:
        """The API server's answers before any upgrade: no pod, a finished pod, no websocket."""
        pod = self._stored_pod(namespace, name)
        if pod is None:
            return api_status(404, "NotFound", f'pods "{name}" not found', name=name, kind="pods")
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return api_status(
                400,
                "BadRequest",
                f"cannot exec into a container in a completed pod; current phase is {phase}",
            )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return api_status(400, "BadRequest", "Upgrade request required")
        return None

    def _choose_protocol(self, request: web.BaseRequest) -> str | None:
        """The first of the client's subprotocols this server speaks (wsstream's handshake)."""
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        return next((p for p in offered if p in self.protocols), None)

    async def _exec(
        self, request: web.BaseRequest, namespace: str, name: str
    ) -> web.StreamResponse:
        refused = self._refusal(request, namespace, name)
        if refused is not None:
            return refused
        protocol = self._choose_protocol(request)
        if protocol is None:
            return api_status(403, "Forbidden", "requested protocol(s) are not supported")
        low, high = self.upgrade_delay
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))
        ws = web.WebSocketResponse(protocols=(protocol,), autoping=True)
        await ws.prepare(request)
        record = ExecRecord(
            namespace,
            name,
            request.query.get("container", ""),
            list(request.query.getall("command", [])),
            protocol,
        )
        self.execs.append(record)
        self._live[id(ws)] = (ws, record)
        try:
            await ws.send_bytes(bytes([STDOUT]))  # "connection established", as the server does
            await self._serve(ws, record)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass  # the client went away, or abort() cut the connection
        finally:
            self._live.pop(id(ws), None)
        return ws

    async def _serve(self, ws: web.WebSocketResponse, record: ExecRecord) -> None:
        argv = record.argv
        if not argv:
            await self._finish(ws, record, internal_error("you must specify at least 1 command"))
            return
        local = list(self.runner(record.namespace, record.pod, argv))
        if argv[0] in self.missing or shutil.which(local[0]) is None:
            await self._finish(ws, record, internal_error(not_in_image(argv[0])))
            return
        proc = await asyncio.create_subprocess_exec(
            *local,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # one process group: stopping it stops `sh -c`'s children too
        )
        self._procs.add(proc)
        listener = asyncio.ensure_future(self._listen(ws, record, proc))
        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(
            self._pump(ws, proc.stdout, STDOUT), self._pump(ws, proc.stderr, STDERR)
        )
        try:
            await asyncio.shield(pumps)
            code = await proc.wait()
        finally:
            await self._reap(proc, pumps)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if not ws.closed and not record.aborted:
            await self._finish(ws, record, success() if code == 0 else nonzero_exit(argv, code))

    async def _reap(self, proc: asyncio.subprocess.Process, pumps: asyncio.Future[Any]) -> None:
        """Stop the command's process group and read its pipes to the end (no pipe left open)."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        with contextlib.suppress(Exception):
            await pumps
        self._procs.discard(proc)

    async def stop(self) -> None:
        """End every command still running (the server is going away)."""
        for proc in list(self._procs):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()

    async def _pump(
        self, ws: web.WebSocketResponse, pipe: asyncio.StreamReader, channel: int
    ) -> None:
        """A pipe into frames on `channel`; read to its end even once the client is gone."""
        prefix = bytes([channel])
        while chunk := await pipe.read(65536):
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_bytes(prefix + chunk)

    async def _listen(
        self, ws: web.WebSocketResponse, record: ExecRecord, proc: asyncio.subprocess.Process
    ) -> None:
        """The client's frames: v5 close-channel signals are noted; its close stops the command."""
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == bytes([CLOSE]):
                if record.protocol == V5 and len(message.data) > 1:
                    record.closed_channels.append(message.data[1])
        if proc.returncode is None:  # the client closed (or the connection was cut): stop it
            record.client_closed = not record.aborted
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)

    async def _finish(
        self, ws: web.WebSocketResponse, record: ExecRecord, status: dict[str, Any]
    ) -> None:
        """The status on the error channel, then the close frame (the server's `finish`)."""
        record.status = status
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
        await ws.close()

    def abort(self, match: Callable[[ExecRecord], bool] = lambda _r: True) -> int:
        """Drop live exec connections mid-stream, no status and no close frame (call on the
        server's loop); how many were dropped."""
        dropped = 0
        for ws, record in list(self._live.values()):
            if match(record):
                record.aborted = True
                transport = ws._req.transport if ws._req is not None else None  # noqa: SLF001
                if transport is not None:
                    transport.abort()
                    dropped += 1
        return dropped


# --- TLS with client certificates, as a real API server asks for them --------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away CA, the server's certificate (for 127.0.0.1) and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_cert_required: bool = True  # False: a bearer token will do, as for a ServiceAccount

    def server_context(self) -> ssl.SSLContext:
        """TLS that checks client certificates against the CA (and refuses a client without one,
        unless `client_cert_required` is False)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        context.verify_mode = ssl.CERT_REQUIRED if self.client_cert_required else ssl.CERT_OPTIONAL
        return context


def make_tls(directory: Path) -> TlsFiles:
    """Issue the CA and both certificates with the openssl CLI (EC keys: fast)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=kmock-ca")  # fmt: skip
    for name, subject, extension in (
        (
            "server",
            "/CN=kube-apiserver",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        ),
        ("client", "/O=system:masters/CN=tester", "extendedKeyUsage=clientAuth"),
    ):
        (directory / f"{name}.ext").write_text(extension + "\n")
        openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "1",
                "-extfile", f"{name}.ext")  # fmt: skip
    return TlsFiles(
        directory / "ca.crt",
        directory / "server.crt",
        directory / "server.key",
        directory / "client.crt",
        directory / "client.key",
    )


class QuickCloseServer(aiohttp.test_utils.RawTestServer):
    """An HTTP server that drops open watch streams on close instead of draining them for 60 s.

    This is what an API server restart looks like to a client: every connection goes away.
    """

    async def _make_runner(
        self, debug: bool = True, **kwargs: Any
    ) -> aiohttp.web_runner.ServerRunner:
        runner = await super()._make_runner(debug=debug, **kwargs)
        runner._shutdown_timeout = 0.1  # aiohttp's graceful drain; a watch-stream never drains
        return runner
