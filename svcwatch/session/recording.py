"""RecordingSession: any Session, with everything the dashboard gets from it written to a file.

The wrapper sits where the dashboard meets the backend, so it records exactly what was shown:
the event stream (the recorder is one more sink), and each value the dashboard pulled (chain
snapshots with counters, Service and slice, endpoint facts), plus scenario requests and key
presses. Pulled values are recorded only when they changed, so polling costs nothing on disk;
when nothing pulls (a headless `svcwatch run --record`), the session pulls once a second itself.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, OutputError
from svcwatch.model.events import Event, RulesSynced, SliceChanged
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.service import Service
from svcwatch.record.writer import Recorder
from svcwatch.session.base import ForwardingSession, Session
from svcwatch.session.capabilities import Capabilities
from svcwatch.sinks import EventSink, FanoutSink, report_write_error

POLL_INTERVAL = 1.0  # seconds; the dashboard reads the chain this often too


class _ChangeTap:
    """A sink that wakes the poller when the slice or the rules changed."""

    def __init__(self, changed: threading.Event) -> None:
        self.changed = changed

    def emit(self, event: Event) -> None:
        if isinstance(event, (SliceChanged, RulesSynced)):
            self.changed.set()

    def emit_many(self, events: Sequence[Event]) -> None:
        if any(isinstance(e, (SliceChanged, RulesSynced)) for e in events):
            self.changed.set()


class RecordingSession(ForwardingSession):
    """Proxies the Session protocol and the capabilities it wraps, and records what they return.

    Scenario switches and slice edits pass through this wrapper (so they are recorded), key
    recording and the stream's start are its own; every other capability is the inner session's.
    """

    def __init__(
        self,
        inner: Session,
        path: Path,
        *,
        meta: dict[str, Any] | None = None,
        t0: float | None = None,
    ) -> None:
        """`t0` is the stream's +0.000s (default: now, as `svcwatch run` takes it just before)."""
        super().__init__(inner)
        # The title is recorded once started: before that a lab does not know its node IP yet.
        self.recorder = Recorder(Path(path), session_kind=inner.kind, meta=meta)
        self._lock = threading.Lock()
        self._last_objects: tuple[Service, EndpointSlice] | None = None
        self._last_facts: list[dict[str, Any]] | None = None
        self._last_service: Service | None = None
        self._last_chain_read = 0.0  # monotonic time the dashboard last called read_chain
        self._display = False  # a dashboard records what it displays (record_shown)
        self._changed = threading.Event()  # set by slice and rule changes: pull at once
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="svcwatch-record-poll", daemon=True)
        self.t0 = time.time() if t0 is None else t0  # the dashboard starts its stream here too
        self.recorder.record_start(self.t0)

    @property
    def title(self) -> str:
        name = self.recorder.path.name
        if self.recorder.error is not None:  # the header must not claim a recording that stopped
            return f"{self.inner.title} [recording to {name} FAILED]"
        return f"{self.inner.title} [recording to {name}]"

    def capabilities(self) -> Capabilities:
        inner = self.inner.capabilities()
        return replace(
            inner,
            scenarios=self if inner.scenarios is not None else None,
            slice_editing=self if inner.slice_editing is not None else None,
            key_recording=self,
            display_recording=self,
            stream_start=self.t0,
        )

    def start(self, sink: EventSink) -> None:
        self.recorder.on_error = partial(report_write_error, sink, "recorder")
        self.inner.start(FanoutSink([sink, self.recorder, _ChangeTap(self._changed)]))
        self.recorder.record_title(self.inner.title, time.time())
        scenario = self.inner.current_scenario()
        if scenario:
            self.recorder.record_scenario(scenario, time.time())
        self.current_slice()  # the objects at the start, even if the dashboard never asks
        self._poller.start()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()
        if self._poller.is_alive():
            self._poller.join()
        failures: list[str] = []
        try:
            self.inner.stop()
        except OutputError as exc:  # the pcap beside the recording failed too: say both
            failures.append(str(exc))
        finally:
            self.recorder.close()
        if self.recorder.error is not None:
            failures.insert(0, self.recorder.error)
        if failures:  # torn down as usual; the exit status says what failed
            raise OutputError("; ".join(failures))

    def record_shown(self, what: str, seen: int, fields: dict[str, Any]) -> None:
        """The dashboard displayed `what` after `seen` events: from now on it alone records the
        chain, objects and facts, at the moment they reached the screen (ui/display_log.py)."""
        self._display = True
        self.recorder.record_shown(what, seen, time.time(), fields)

    def _poll(self) -> None:
        """Pull chain, objects and facts when nobody did for a second, or right after a change.

        Headless runs (`svcwatch run --record`) have no dashboard pulling, and a recording without
        chain snapshots would replay an empty chain pane.
        """
        while not self._stopping.is_set():
            self._changed.wait(POLL_INTERVAL)
            self._changed.clear()
            if self._stopping.is_set():
                return
            if self._display:
                continue  # the dashboard records what it shows
            try:
                if time.monotonic() - self._last_chain_read >= POLL_INTERVAL / 2:
                    self._read_and_record_chain()  # else the dashboard pulls it: already recorded
                self.current_slice()  # cheap, and recorded only when it changed
                self.endpoint_facts()
            except Exception:  # noqa: BLE001 - a failed pull (lab going down) must not end recording
                continue

    def service(self) -> Service:
        service = self.inner.service()
        with self._lock:
            self._last_service = service
        return service

    def current_slice(self) -> EndpointSlice:
        slice_ = self.inner.current_slice()
        if self._display:
            return slice_
        service = self._last_service or self.service()
        with self._lock:
            changed = self._last_objects != (service, slice_)
            self._last_objects = (service, slice_)
        if changed:
            self.recorder.record_objects(service, slice_, time.time())
        return slice_

    def scenarios_offered(self) -> Sequence[str]:
        scenarios = self.inner.capabilities().scenarios
        return [] if scenarios is None else scenarios.scenarios_offered()

    def request_scenario(self, name: str) -> None:
        scenarios = self.inner.capabilities().scenarios
        if scenarios is None:
            raise InputError(f"this {self.inner.kind} session cannot switch scenarios")
        self.recorder.record_scenario(name, time.time())
        scenarios.request_scenario(name)

    def apply_slice_text(self, text: str) -> None:
        editing = self.inner.capabilities().slice_editing
        if editing is None:
            raise InputError(f"this {self.inner.kind} session cannot change the slice")
        editing.apply_slice_text(text)
        self.current_slice()

    def read_chain(self) -> ChainTree:
        self._last_chain_read = time.monotonic()  # the dashboard pulls: the poller can rest
        return self._read_and_record_chain()

    def _read_and_record_chain(self) -> ChainTree:
        tree = self.inner.read_chain()
        if not self._display:
            self.recorder.record_chain(tree, time.time())
        return tree

    def endpoint_facts(self) -> list[EndpointFacts]:
        facts = self.inner.endpoint_facts()
        if self._display:
            return facts
        as_dicts = [dataclasses.asdict(f) for f in facts]
        with self._lock:
            changed = as_dicts != self._last_facts
            self._last_facts = as_dicts
        if changed:
            self.recorder.record_facts(as_dicts, time.time())
        return facts

    def record_key(self, key: str) -> None:
        """The dashboard calls this for each key press it handles (recorded, never replayed)."""
        self.recorder.record_key(key, time.time())
