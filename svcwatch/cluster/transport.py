"""How the node agent's commands reach a node: the Kubernetes exec API, or a local namespace.

The agent runs three stock commands -- `tcpdump -i any -U -w - FILTER` (a pcap byte stream),
`iptables-save -c -t nat` and `ip -o link` -- and only the transport differs between a real node
(`ExecTransport` in podexec.py: a privileged hostNetwork pod, reached through pods/exec over a
websocket) and a test (`LocalTransport`: the same argv run for real inside a network namespace on
this machine). Both hand back a binary file object, so the pcap decoder cannot tell them apart,
and both raise `MissingBinary` for a command that is not there.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from svcwatch.model.errors import SetupError

PACKAGES = {"tcpdump": "tcpdump", "iptables-save": "iptables", "ip": "iproute2", "nft": "nftables"}


class MissingBinary(SetupError):
    """The command's binary is not there (not installed here, not in the agent's image)."""

    def __init__(self, binary: str, image: str | None, where: str) -> None:
        self.binary, self.image, self.where = binary, image, where
        if image is None:  # this host
            package = PACKAGES.get(binary, binary)
            super().__init__(f"{binary} is not installed: apt-get install {package}")
        else:
            super().__init__(
                f"{binary} is not in the agent image {image} on {where}: "
                "pass --agent-image with an image that has it"
            )


class Transport(Protocol):
    """Runs the agent's commands on one node."""

    where: str  # "node k3d-demo-server-0", for messages

    def run(self, argv: Sequence[str], timeout: float = 20.0) -> str:
        """Run to completion; stdout as text, SetupError (with stderr) on a non-zero exit."""

    def open_stream(self, argv: Sequence[str]) -> io.RawIOBase:
        """Start a long-running command; its stdout as a binary file (close() stops it)."""


# --- local: a network namespace on this machine ---------------------------------------------


class LocalTransport:
    """The agent's commands inside network namespace `netns` (None: this namespace) on this host."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.where = f"netns {netns}" if netns else "this host"

    def _popen_kwargs(self) -> dict[str, Any]:
        from svcwatch.netns import preexec_into  # the lab helper: setns in the child before exec

        return {"preexec_fn": preexec_into(self.netns)} if self.netns else {}

    def _check_binary(self, argv: Sequence[str]) -> None:
        if shutil.which(argv[0]) is None:
            raise MissingBinary(argv[0], None, self.where)

    def run(self, argv: Sequence[str], timeout: float = 20.0) -> str:
        self._check_binary(argv)
        proc = subprocess.Popen(  # noqa: PLW1509 - preexec_fn only calls setns
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a timeout ends the command's children too (sh -c ...)
            **self._popen_kwargs(),
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise timed_out(argv, self.where, timeout) from None
        if proc.returncode != 0:
            raise command_failed(argv, self.where, proc.returncode, err.decode(errors="replace"))
        return str(out.decode(errors="replace"))

    def open_stream(self, argv: Sequence[str]) -> io.RawIOBase:
        self._check_binary(argv)
        proc = subprocess.Popen(  # noqa: PLW1509 - preexec_fn only calls setns
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **self._popen_kwargs()
        )
        return ProcessStream(
            proc
        )  # unbuffered: close() from another thread must not wait for a lock


class ProcessStream(io.RawIOBase):
    """A child's stdout as a raw binary stream; close() terminates the child.

    stderr is read by a helper thread, so a chatty child never blocks and `wait_for_stderr` can
    tell when tcpdump says "listening on" (its pcap header stays buffered until the first packet).
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        assert proc.stdout is not None
        self._out: Any = proc.stdout  # a BufferedReader over the pipe: read1 never over-waits
        self._stderr_lines: list[str] = []
        self._stderr_changed = threading.Condition()
        threading.Thread(target=self._drain_stderr, name="agent-stderr", daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._stderr_changed:
                self._stderr_lines.append(raw.decode(errors="replace").rstrip())
                self._stderr_changed.notify_all()
        with self._stderr_changed:
            self._stderr_lines.append("")  # EOF marker: the child closed stderr (exited)
            self._stderr_changed.notify_all()
        self.proc.stderr.close()

    def wait_for_stderr(self, text: str, timeout: float) -> bool:
        """Block until a stderr line contains `text` (True), or the child ends or time runs out."""

        def seen() -> bool:
            return any(text in line for line in self._stderr_lines) or "" in self._stderr_lines

        with self._stderr_changed:
            self._stderr_changed.wait_for(seen, timeout=timeout)
            return any(text in line for line in self._stderr_lines)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._out.read1(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    @property
    def stderr_text(self) -> str:
        with self._stderr_changed:
            return "\n".join(line for line in self._stderr_lines if line)

    def close(self) -> None:
        if not self.closed and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.closed:
            self._out.close()  # after the exit: a reader blocked in read1 has had its EOF
        super().close()


def none_available(transport: Transport, tools: Sequence[str], need: str) -> SetupError:
    """Not one of the alternative tools is there: name them, the image and the node."""
    image = getattr(transport, "image", None)  # an exec transport's agent image
    where = f"the agent image {image} on {transport.where}" if image else transport.where
    fix = "pass --agent-image with an image that has" if image else "install"
    return SetupError(f"none of {', '.join(tools)} is in {where}: {fix} {need}")


def wait_for_stderr(stream: io.RawIOBase, text: str, timeout: float = 10.0) -> bool:
    """Wait until the command behind `stream` printed `text` on stderr ("listening on")."""
    waiter = getattr(stream, "wait_for_stderr", None)
    return bool(waiter(text, timeout)) if waiter is not None else True


def timed_out(argv: Sequence[str], where: str, timeout: float) -> SetupError:
    """A command that outlived its timeout: an error, never its partial output as a result."""
    return SetupError(f"{argv[0]} on {where} did not finish within {timeout:g}s")


def command_failed(argv: Sequence[str], where: str, code: int, stderr: str) -> SetupError:
    """A failed agent command as one line: which command, where, and its last stderr line."""
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    name = argv[0]
    hint = f" (is {name} in the agent image? see --agent-image)" if code in (126, 127) else ""
    return SetupError(f"{name} failed on {where} (exit {code}): {last.strip()}{hint}")
