"""The dashboard's terminal driver: Textual's own, except that a terminal that went away is
survived long enough to shut down cleanly.

When the terminal closes (tmux kill-pane, a closed ssh connection, a killed terminal emulator),
every write to it fails with EIO. Textual's writer thread dies on the first such error; its queue
(30 writes) then fills and the next refresh blocks the event loop forever in `Queue.put`: the
dashboard can no longer quit, tear down its lab, or even act on SIGTERM. Here the output file
swallows writes once the terminal is gone and tells the app, which quits as `q` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver


class TerminalOutput:
    """A file-like over the terminal's stream: after the first failed write it writes nothing,
    and `on_gone` hears about it once."""

    def __init__(self, stream: IO[str], on_gone: Callable[[], None]) -> None:
        self._stream = stream
        self._on_gone = on_gone
        self._gone = threading.Event()

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    def _lost(self) -> None:
        if not self._gone.is_set():
            self._gone.set()
            self._on_gone()

    def write(self, text: str) -> int:
        if not self._gone.is_set():
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # EIO: the terminal is gone; ValueError: closed
                self._lost()
        return len(text)

    def flush(self) -> None:
        if not self._gone.is_set():
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._lost()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class SurvivingLinuxDriver(LinuxDriver):
    """LinuxDriver writing through TerminalOutput; the app's `terminal_gone()` hears of a loss."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        on_gone = getattr(app, "terminal_gone", lambda: None)
        self._file = TerminalOutput(self._file, on_gone)  # type: ignore[assignment,arg-type]
