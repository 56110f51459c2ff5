"""Every call the dashboard makes into its session, each in a thread worker that answers by message.

Session calls block (kernel, cluster, files), so none may run on Textual's event loop. `SessionIO`
owns that rule: each method starts an exclusive thread worker in its own group (a newer read
replaces an older one), the worker posts its answer (`SessionStarted`, `ChainRead`,
`EndpointsRead`) or raises, and the app's one `Worker.StateChanged` handler turns a raise into a
notification. Whether the app pulls state at all is `pushes_state`: a replay pushes what the live
dashboard displayed, and pulling too would show other moments.

A read that fails the same way again (every second, on the chain's refresh) is reported once, until
a read succeeds; once the session's source is gone (`lab down` under the dashboard: an `ended`
notice, which the diagnosis already reads out) the reads stop and say nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from svcwatch.model.errors import InputError
from svcwatch.session.base import Session
from svcwatch.sinks import EventSink
from svcwatch.ui import messages
from svcwatch.ui.workers import in_thread

if TYPE_CHECKING:
    from textual.app import App
    from textual.message import Message


class SessionIO:
    """The session's blocking calls, off the event loop (module docstring)."""

    def __init__(self, app: App[None], session: Session) -> None:
        self.app, self.session = app, session
        self.capabilities = session.capabilities()
        self.pushes_state = self.capabilities.replayed_display
        self.ended = False  # the session's source is gone: nothing left to read
        self._read_errors: dict[str, str] = {}  # group -> the error last reported for its reads

    def read_only(self) -> str:
        """Why this session changes nothing, in a few words."""
        return self.capabilities.read_only or f"a {self.session.kind} session"

    def _run(self, work: Callable[[], object], group: str, description: str) -> None:
        in_thread(self.app, work, group=group, description=description)

    def start(self, sink: EventSink) -> None:
        """Start the session; then, unless it pushes its state, read the chain and endpoints."""
        self._run(lambda: self._start(sink), "session", "Starting the session")

    def _start(self, sink: EventSink) -> None:
        self.session.start(sink)
        self.app.post_message(
            messages.SessionStarted(
                self.session.service(),
                self.session.current_slice(),
                self.session.current_scenario(),
                self.session.title,
            )
        )
        if not self.pushes_state:
            self.read_chain(after_sync=True)
            self.read_endpoints()

    def session_ended(self) -> None:
        """The session's source is gone (module docstring): stop reading it."""
        self.ended = True

    def reports(self, group: str, error: BaseException) -> bool:
        """Whether a failed worker of `group` is worth a notification (module docstring)."""
        if group not in ("chain", "endpoints"):
            return True
        if self.ended or self._read_errors.get(group) == str(error):
            return False
        self._read_errors[group] = str(error)
        return True

    def _read(self, read: Callable[[], Message], group: str, description: str) -> None:
        def work() -> None:
            self.app.post_message(read())
            self._read_errors.pop(group, None)  # a success: the next failure is news again

        if not self.ended:
            self._run(work, group, description)

    def read_chain(self, after_sync: bool = False) -> None:
        """Post the node's kube-proxy chain (`after_sync`: right after the rules changed)."""
        self._read(
            lambda: messages.ChainRead(self.session.read_chain(), after_sync),
            "chain",
            "Reading the iptables chain",
        )

    def read_endpoints(self) -> None:
        """Post the EndpointSlice, what is known of each endpoint, and the scenario."""
        self._read(
            lambda: messages.EndpointsRead(
                self.session.current_slice(),
                self.session.endpoint_facts(),
                self.session.current_scenario(),
            ),
            "endpoints",
            "Reading the EndpointSlice",
        )

    def switch_scenario(self, name: str) -> None:
        self._run(lambda: self._switch_scenario(name), "lab", "Switching scenario")

    def _switch_scenario(self, name: str) -> None:
        scenarios = self.capabilities.scenarios
        if scenarios is None:
            raise InputError(f"this session cannot switch scenarios ({self.read_only()})")
        scenarios.request_scenario(name)
        if not self.pushes_state:
            self.read_endpoints()

    def apply_edit(self, text: str) -> None:
        self._run(lambda: self._apply_edit(text), "lab", "Edit not applied")

    def _apply_edit(self, text: str) -> None:
        editing = self.capabilities.slice_editing
        if editing is None:
            raise InputError(f"this session cannot change the slice ({self.read_only()})")
        editing.apply_slice_text(text)
        self.app.call_from_thread(self.app.notify, "EndpointSlice edited and applied", title="Edit")
        self.read_endpoints()

    def switch_proxy_mode(self) -> None:
        modes = self.capabilities.proxy_modes
        if modes is not None:
            self._run(lambda: modes.switch_proxy_mode(), "lab", "Proxy mode")
