"""The dashboard's one way out: `q`, ctrl+q, a signal or a lost terminal all stop the session first.

Stopping tears a lab down (or leaves it running), closes recordings and agent pods, so it blocks
and runs in a thread worker while a `StoppingScreen` says what is happening; the app exits when
the worker posts `SessionStopped`. A signal handler or another thread may only ask to quit (a
flag, read by a timer on the app's own loop), so nothing runs inside interrupted code. Why
stopping failed is kept for the CLI's one line and exit status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svcwatch.session.base import Session
from svcwatch.ui import messages
from svcwatch.ui.bridge import UiSink
from svcwatch.ui.screens.main import StoppingScreen
from svcwatch.ui.workers import in_thread

if TYPE_CHECKING:
    from textual.app import App


class Shutdown:
    """Whether the dashboard is stopping, and the stop itself (module docstring)."""

    def __init__(self, app: App[None], session: Session, sink: UiSink, *, keep: bool) -> None:
        self.app, self.session, self.sink, self.keep = app, session, sink, keep
        self.stopping = False
        self.quit_requested = False  # a signal or a lost terminal: quit as `q` does
        self.stop_error: BaseException | None = None  # why stopping failed, for the exit status

    def request(self) -> None:
        """Quit as `q` does, soon; safe from a signal handler or any thread (only sets a flag)."""
        self.quit_requested = True

    def quit_if_requested(self) -> None:
        """The timer that acts on `request()` from the app's own loop."""
        if self.quit_requested and not self.stopping:
            self.begin()

    def stopping_text(self) -> str:
        """What the stopping screen says: a lab is torn down or kept; anything else stops."""
        if self.session.kind != "lab":
            return "stopping…"
        if self.keep:
            return "leaving the lab running (--keep)…"
        return "leaving the lab (torn down unless kept or still in use)…"

    def begin(self) -> None:
        """Stop once: show the stopping screen and stop the session off the event loop."""
        if self.stopping:
            return
        self.stopping = True
        self.app.push_screen(StoppingScreen(self.stopping_text()))
        in_thread(self.app, self._stop_session, group="stop", description="Stopping")

    def _stop_session(self) -> None:
        try:
            self.session.stop()
        except Exception as exc:  # noqa: BLE001 - kept for the CLI's one line and exit status
            self.stop_error = exc  # before SessionStopped: the app exits on that message
        finally:
            self.sink.close()
            self.app.post_message(messages.SessionStopped())
