"""Backend-facing messages: facts that worker threads and the event bridge post to the app.

Each is a past-tense fact (or a `...Requested` request) carrying plain model data, so panes never
reach into a session themselves. Batches replace one message per packet (see bridge.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service


@dataclass
class EventsArrived(Message):
    """A batch of stream events (~10 per second at most); `dropped` packets never reached it.

    In a replay the batch also carries, in stream order, what the live dashboard displayed
    between those events (svcwatch.record.reader.Shown).
    """

    events: list[Any]
    dropped: int = 0


@dataclass
class SessionStarted(Message):
    """The session is up: what it serves and where it starts."""

    service: Service
    slice: EndpointSlice
    scenario: str | None
    title: str


@dataclass
class ChainRead(Message):
    """The Service's chain tree as read back from the kernel just now."""

    tree: ChainTree
    after_sync: bool = False

    def can_replace(self, message: Message) -> bool:
        # Only the newest counters matter; an unread older read is pure waste.
        return isinstance(message, ChainRead) and not message.after_sync


@dataclass
class EndpointsRead(Message):
    """The slice as the session has it now, plus what the backend knows about each endpoint."""

    slice: EndpointSlice
    facts: list[EndpointFacts] = field(default_factory=list)
    scenario: str | None = None


@dataclass
class ScenarioRequested(Message):
    """The user asked for a scenario (a key, the palette or the help screen)."""

    name: str


@dataclass
class SliceEdited(Message):
    """The user saved an edited slice in $EDITOR; it still has to be validated and applied."""

    text: str


@dataclass
class SessionStopped(Message):
    """The session has stopped (the lab is gone unless kept); the app may exit."""
