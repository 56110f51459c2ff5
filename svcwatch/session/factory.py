"""make_session: the one place that turns the CLI's settings into a running backend.

The dashboard and `svcwatch run` share it, so the same flags mean the same thing in both: the lab
by default, a real cluster with `--cluster`, a recording of either with `--record FILE`, and every
captured packet also written to a pcapng file with `--pcap FILE`. Backends are imported only when
chosen, so the lab's netlink code never loads for a cluster session and vice versa.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from svcwatch.model.errors import OutputError
from svcwatch.session.base import ForwardingSession, Session
from svcwatch.session.settings import ClusterSettings, SessionSettings
from svcwatch.sinks import EventSink, FanoutSink, report_write_error


class PcapTapSession(ForwardingSession):
    """Any Session, with its packet events also written to a pcapng file (closed on stop).

    It forwards the Session protocol and hands out the inner session's capabilities unchanged:
    writing packets adds no control.
    """

    def __init__(self, inner: Session, path: Path) -> None:
        from svcwatch.record.pcap import PcapngSink  # opens the file now: a bad path fails early

        super().__init__(inner)
        self.pcap = PcapngSink(path)

    @property
    def title(self) -> str:
        failed = " FAILED" if self.pcap.error is not None else ""
        return f"{self.inner.title} [pcap {self.pcap.path.name}{failed}]"

    def start(self, sink: EventSink) -> None:
        self.pcap.on_error = partial(report_write_error, sink, "pcap")
        self.inner.start(FanoutSink([sink, self.pcap]))

    def stop(self) -> None:
        try:
            self.inner.stop()
        finally:
            self.pcap.close()
        if self.pcap.error is not None:  # torn down as usual; the exit status says it failed
            raise OutputError(self.pcap.error)


def make_session(settings: SessionSettings) -> Session:
    """The session the settings ask for: a ClusterSession or a LabSession, wrapped as asked.

    `pcap` adds a pcapng writer; `diagnosis` adds DiagnosisChanged events to the stream (below
    the recorder, so they are recorded too); `record` wraps it all in a RecordingSession. Bad
    flags, no root or no kubeconfig raise here, before anything is built or drawn.
    """
    session: Session
    if isinstance(settings.backend, ClusterSettings):
        if settings.backend.service:
            from svcwatch.session.cluster_existing import ExistingServiceSession

            session = ExistingServiceSession(settings.backend)
        else:
            from svcwatch.session.cluster import ClusterSession

            session = ClusterSession(settings.backend)
    else:
        from svcwatch.session.lab import LabSession

        session = LabSession(settings.backend)
    if settings.pcap is not None:
        session = PcapTapSession(session, settings.pcap)
    if settings.diagnosis:
        from svcwatch.session.diagnosing import DiagnosingSession

        session = DiagnosingSession(session)
    if settings.record is not None:
        from svcwatch.session.recording import RecordingSession

        session = RecordingSession(session, settings.record)
    return session
