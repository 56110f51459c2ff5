"""The one error type the pure core raises for bad input.

The CLI prints `str(error)` as a single line and exits 2, so the message must name where the
problem is (file, field) and what the bad value was.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a malformed manifest, a bad address or port, an unknown name."""

    def __init__(
        self, message: str, *, source: str | None = None, field: str | None = None
    ) -> None:
        self.source = source
        self.field = field
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class SetupError(RuntimeError):
    """The machine cannot do what was asked: no root, a missing binary, no kubeconfig, RBAC denied.

    The message is one line that names the fix (`sudo`, the Debian package, the flag to pass).
    """


class WaitCancelled(SetupError):
    """A start-up wait called off (a stop signal, the end of `run --duration`) before what it
    awaited was ready; the message says what that was and its last state."""


class OutputError(RuntimeError):
    """Something svcwatch writes failed (disk full, device gone, writer process killed).

    Not bad input (exit 2) and not a bug: one line naming what could not be written and why, and
    exit 1 at the end, so a recording or a pcap that stopped early is never taken for a good one.
    """
