"""How the node agent's commands reach a node: the Kubernetes exec API, or a local namespace.

The agent runs three stock commands -- `tcpdump -i any -U -w - FILTER` (a pcap byte stream),
`iptables-save -c -t nat` and `ip -o link` -- and only the transport differs between a real node
(`ExecTransport` in podexec.py: a privileged hostNetwork pod, reached through pods/exec over a
websocket) and a test (`LocalTransport` in tests/helpers/local_transport.py: the same argv run for
real inside a network namespace on this machine). Both hand back a binary file object, so the pcap
decoder cannot tell them apart, and both raise `MissingBinary` for a command that is not there.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Protocol

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
