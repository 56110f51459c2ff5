"""The interface every session offers to the dashboard and to `svcwatch run`.

All methods may block (they touch the kernel, a cluster or a file), so the dashboard calls them
from thread workers, never on its event loop. Events flow the other way, through the sink given to
`start`, from whatever threads the session runs. What a session can do beyond showing (switch
scenarios, edit the slice, replay controls, ...) differs by kind; it says so with `capabilities()`
(session/capabilities.py), never by a method that happens to exist.
"""

from __future__ import annotations

from typing import Protocol

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service
from svcwatch.session.capabilities import Capabilities
from svcwatch.sinks import EventSink


class Session(Protocol):
    """A running backend: build/attach on `start`, tear down on `stop`."""

    @property
    def kind(self) -> str:
        """ "lab", "cluster" or "replay"."""

    @property
    def title(self) -> str:
        """What the header shows, e.g. "lab default (node 192.168.97.3)"."""

    def start(self, sink: EventSink) -> None:
        """Build or attach (may take a second; emits Notice progress), then start streaming."""

    def stop(self) -> None:
        """Stop streaming and release everything this session made (the lab unless kept)."""

    def cancel_start(self) -> None:
        """Call off a `start` in progress on another thread (a stop is coming): its waits for
        things that may never come (a Pending agent pod) end soon. Never blocks; harmless when
        nothing starts."""

    def service(self) -> Service: ...

    def current_slice(self) -> EndpointSlice: ...

    def current_scenario(self) -> str | None: ...

    def read_chain(self) -> ChainTree:
        """The Service's chain tree as the kernel has it now, with counters."""

    def endpoint_facts(self) -> list[EndpointFacts]: ...

    def capabilities(self) -> Capabilities:
        """What this session can do beyond showing; cheap, and the same for its whole life."""
        ...


class ForwardingSession:
    """A wrapper around one Session that forwards the whole protocol to it, method by method.

    Wrappers (pcap tap, recording, diagnosis) subclass it and override only what they change, so
    what a wrapper passes on is declared here, not reached through `__getattr__`.
    """

    def __init__(self, inner: Session) -> None:
        self.inner = inner

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def title(self) -> str:
        return self.inner.title

    def start(self, sink: EventSink) -> None:
        self.inner.start(sink)

    def stop(self) -> None:
        self.inner.stop()

    def cancel_start(self) -> None:
        self.inner.cancel_start()

    def service(self) -> Service:
        return self.inner.service()

    def current_slice(self) -> EndpointSlice:
        return self.inner.current_slice()

    def current_scenario(self) -> str | None:
        return self.inner.current_scenario()

    def read_chain(self) -> ChainTree:
        return self.inner.read_chain()

    def endpoint_facts(self) -> list[EndpointFacts]:
        return self.inner.endpoint_facts()

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()
