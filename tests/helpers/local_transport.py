"""LocalTransport: the node agent's commands run in a network namespace on this machine.

The tests (and the rules and pcap-stream benchmarks) run svcwatch's real NodeAgent, pcap reader
and rules parser against a real lab namespace through this transport instead of the exec API;
cluster mode itself always goes through the exec API (svcwatch.cluster.podexec), so this test
double lives here, not in the package.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

from svcwatch.cluster.transport import MissingBinary, command_failed, timed_out


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
