"""DiagnosingSession: any Session, with a `diagnosis` event in its stream whenever it changes.

The dashboard computes its diagnosis line from the stream plus what it pulls (slice, endpoint
facts, chain). `svcwatch run` has no diagnosis line, so this wrapper does the same for it: it folds
every event into an `Evidence`, pulls the session's state once a second (and right after a slice
change or a rules sync), and emits `DiagnosisChanged` when the sentence differs from the last one
by more than its running tallies (probe counts, median connect time).
Inside a RecordingSession the diagnosis is recorded too, so a replay prints what `run` printed.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence

from svcwatch.explain.diagnosis import Diagnosis, Evidence, diagnose
from svcwatch.model.events import DiagnosisChanged, Event, RulesSynced, SliceChanged
from svcwatch.session.base import ForwardingSession, Session
from svcwatch.sinks import EventSink

PULL_INTERVAL = 1.0  # seconds, as the dashboard re-reads the chain

# The running tallies in a sentence ("3 of 10 recent probes", "median connect 4 ms") move with
# every probe; a stream line each time would drown what changed. Lines differ by the rest.
_TALLIES = re.compile(r"\b\d+ of \d+ recent probes|median connect \d+ ms")


def _meaning(diagnosis: Diagnosis) -> tuple[str, str]:
    """What a diagnosis says, without its running tallies: the stream reports a change of this."""
    return diagnosis.level, _TALLIES.sub("#", diagnosis.text)


class DiagnosingSession(ForwardingSession):
    """Forwards the Session protocol and capabilities; adds DiagnosisChanged events."""

    def __init__(self, inner: Session) -> None:
        super().__init__(inner)
        self.evidence = Evidence()
        self._shown: Diagnosis | None = None
        self._lock = threading.Lock()
        self._sink: EventSink | None = None
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._puller = threading.Thread(target=self._pull, name="svcwatch-diagnosis", daemon=True)

    def start(self, sink: EventSink) -> None:
        self._sink = sink
        self.inner.start(_EvidenceTap(self))
        self._puller.start()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()
        if self._puller.is_alive():
            self._puller.join()
        self.inner.stop()

    # --- the stream and the pulls feed one Evidence --------------------------------------------

    def observe(self, events: Sequence[Event]) -> None:
        """Pass the events on, fold them in, and say so if the diagnosis changed."""
        assert self._sink is not None
        self._sink.emit_many(events)
        with self._lock:
            for event in events:
                self.evidence.observe(event)
        if any(isinstance(e, (SliceChanged, RulesSynced)) for e in events):
            self._changed.set()  # pull the new slice, facts and rules now
        self._rediagnose()

    def _pull(self) -> None:
        while not self._stopping.is_set():
            self._changed.wait(PULL_INTERVAL)
            self._changed.clear()
            if self._stopping.is_set():
                return
            try:
                service, slice_ = self.inner.service(), self.inner.current_slice()
                facts, chain = self.inner.endpoint_facts(), self.inner.read_chain()
            except Exception:  # noqa: BLE001 - not started yet or going down: try next time
                continue
            with self._lock:
                self.evidence.service = service.key
                self.evidence.slice, self.evidence.facts = slice_, facts
                self.evidence.chain = chain
            self._rediagnose()

    def _rediagnose(self) -> None:
        # No "watch stale for Ns" prefix here: the stream has the "stale" Notices already, and a
        # sentence that changed every second would be a line every second.
        with self._lock:
            diagnosis = diagnose(self.evidence)
            if self._shown is not None and _meaning(diagnosis) == _meaning(self._shown):
                return
            self._shown = diagnosis
        assert self._sink is not None
        self._sink.emit(DiagnosisChanged(time.time(), diagnosis.level, diagnosis.text))


class _EvidenceTap:
    """The sink the inner session streams into: everything goes through `observe`."""

    def __init__(self, session: DiagnosingSession) -> None:
        self.session = session

    def emit(self, event: Event) -> None:
        self.session.observe((event,))

    def emit_many(self, events: Sequence[Event]) -> None:
        self.session.observe(events)
