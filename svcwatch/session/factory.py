"""make_session: the one place that turns CLI flags into a running backend.

The dashboard and `svcwatch run` share it, so the same flags mean the same thing in both: the lab
by default, a real cluster with `--cluster`, a recording of either with `--record FILE`, and every
captured packet also written to a pcapng file with `--pcap FILE`. Backends are imported only when
chosen, so the lab's netlink code never loads for a cluster session and vice versa.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from svcwatch.model.errors import OutputError
from svcwatch.session.base import ForwardingSession, Session
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


def make_session(**cli_kwargs: Any) -> Session:
    """The session the flags ask for: ClusterSession with `cluster=True`, else LabSession.

    `record` wraps it in a RecordingSession; `pcap` adds a pcapng writer; `diagnosis` adds
    DiagnosisChanged events to the stream (below the recorder, so they are recorded too). Other
    keys are the shared flags of svcwatch.cli.options, passed through to the backend. Bad flags,
    no root or no kubeconfig raise here, before anything is built or drawn.
    """
    record, pcap = cli_kwargs.pop("record", None), cli_kwargs.pop("pcap", None)
    diagnosis = bool(cli_kwargs.pop("diagnosis", False))
    session: Session
    if cli_kwargs.get("cluster"):
        from svcwatch.session.cluster import ClusterSession

        if cli_kwargs.get("proxy_mode"):
            from svcwatch.model.errors import InputError

            raise InputError(
                "--proxy-mode is for the lab; on a cluster svcwatch reads the mode its "
                "kube-proxy runs in from the nodes"
            )

        session = ClusterSession(**cli_kwargs)
    else:
        from svcwatch.session.lab import LabSession

        session = LabSession(**cli_kwargs)
    if pcap:
        session = PcapTapSession(session, Path(pcap))
    if diagnosis:
        from svcwatch.session.diagnosing import DiagnosingSession

        session = DiagnosingSession(session)
    if record:
        from svcwatch.session.recording import RecordingSession

        session = RecordingSession(session, Path(record))
    return session
