"""make_session: the one place that turns CLI flags into a running backend.

The dashboard and `svcwatch run` share it, so the same flags mean the same thing in both: the lab
by default, a real cluster with `--cluster`, a recording of either with `--record FILE`, and every
captured packet also written to a pcapng file with `--pcap FILE`. Backends are imported only when
chosen, so the lab's netlink code never loads for a cluster session and vice versa.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service
from svcwatch.session.base import Session
from svcwatch.session.capabilities import Capabilities
from svcwatch.sinks import EventSink, FanoutSink


class PcapTapSession:
    """Any Session, with its packet events also written to a pcapng file (closed on stop).

    It forwards the Session protocol and hands out the inner session's capabilities unchanged:
    writing packets adds no control.
    """

    def __init__(self, inner: Session, path: Path) -> None:
        from svcwatch.record.pcap import PcapngSink  # opens the file now: a bad path fails early

        self.inner = inner
        self.pcap = PcapngSink(path)

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def title(self) -> str:
        return f"{self.inner.title} [pcap {self.pcap.path.name}]"

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

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

    def start(self, sink: EventSink) -> None:
        self.inner.start(FanoutSink([sink, self.pcap]))

    def stop(self) -> None:
        try:
            self.inner.stop()
        finally:
            self.pcap.close()


def make_session(**cli_kwargs: Any) -> Session:
    """The session the flags ask for: ClusterSession with `cluster=True`, else LabSession.

    `record` wraps it in a RecordingSession; `pcap` adds a pcapng writer. Other keys are the
    shared flags of svcwatch.cli.options, passed through to the backend. Bad flags, no root or no
    kubeconfig raise here, before anything is built or drawn.
    """
    record, pcap = cli_kwargs.pop("record", None), cli_kwargs.pop("pcap", None)
    session: Session
    if cli_kwargs.get("cluster"):
        from svcwatch.session.cluster import ClusterSession

        session = ClusterSession(**cli_kwargs)
    else:
        from svcwatch.session.lab import LabSession

        session = LabSession(**cli_kwargs)
    if pcap:
        session = PcapTapSession(session, Path(pcap))
    if record:
        from svcwatch.session.recording import RecordingSession

        session = RecordingSession(session, Path(record))
    return session
