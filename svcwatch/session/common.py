"""What the lab and cluster sessions share: the sink and its Notices, probing, watch events.

Both sessions stream into one sink from several threads, report progress and trouble as Notices
tagged with their kind, start one ProbeLoop against a target (the node's nodePort or --probe),
turn a watched slice change into the same SliceChanged row, and stop their parts in one order:
probes first, then the watcher, then the capture, so nothing is left running behind what it feeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, Notice, SliceChanged
from svcwatch.model.manifest import parse_ipv4, parse_port
from svcwatch.model.service import Service
from svcwatch.probe.tcp import ProbeLoop
from svcwatch.session.settings import ProbeFlags
from svcwatch.sinks import EventSink

if TYPE_CHECKING:
    from svcwatch.watch.events import WatchEvent

Notify = Callable[[str, str], None]  # (kind, message) -> a Notice


class Stoppable(Protocol):
    def stop(self) -> None: ...


def parse_probe_target(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv4) -> a connect address; InputError naming --probe when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise InputError(f"expected HOST:PORT, got {text!r}", field="--probe")
    return parse_ipv4(host, "--probe address"), parse_port(port, "--probe port")


def one_line(exc: BaseException) -> str:
    """An exception's text on one line, for a Notice."""
    return " ".join(str(exc).split())


def node_port_of(service: Service) -> int | None:
    """The first nodePort of the Service (what the probes aim at), None when it has none."""
    return next((p.node_port for p in service.ports if p.node_port), None)


class StreamingSession:
    """The part of a session that talks to its sink: events, and Notices tagged with `kind`."""

    kind: str
    _sink: EventSink | None = None

    def _emit(self, event: Event) -> None:
        if self._sink is not None:
            self._sink.emit(event)

    def _notice(self, kind: str, message: str) -> None:
        self._emit(Notice(time.time(), kind, message, origin=self.kind))

    def cancel_start(self) -> None:
        """Nothing to call off by default: a lab build is short and finishes (session/guard.py)."""


@dataclass(frozen=True)
class ProbeSettings:
    """The probe flags (--interval, --timeout, --payload, --probe) as both sessions take them."""

    interval: float
    timeout: float
    payload: bytes
    target: tuple[str, int] | None  # --probe; None: the node's nodePort

    @classmethod
    def from_probe_flags(cls, flags: ProbeFlags) -> ProbeSettings:
        """Checked flags; a malformed --probe raises InputError before anything starts."""
        return cls.from_flags(flags.interval, flags.timeout, flags.payload, flags.probe_target)

    @classmethod
    def from_flags(
        cls, interval: float, timeout: float, payload: str | bytes, probe_target: str | None
    ) -> ProbeSettings:
        """Checked flags; a malformed --probe raises InputError before anything starts."""
        data = payload.encode() if isinstance(payload, str) else payload
        target = parse_probe_target(probe_target) if probe_target else None
        return cls(interval, timeout, data, target)

    def start(
        self,
        sink: EventSink,
        target: tuple[str, int],
        *,
        netns: str | None,
        notice: Notify,
    ) -> ProbeLoop:
        """Start probing `target` from `netns` (None: this machine) and say so."""
        probes = ProbeLoop(
            sink,
            target=target,
            netns=netns,
            interval=self.interval,
            timeout=self.timeout,
            payload=self.payload,
        )
        probes.start()
        where = netns or "this machine"
        notice("info", f"probing {target[0]}:{target[1]} from {where} every {self.interval:g}s")
        return probes


def stop_in_order(
    parts: Iterable[Stoppable | None], run: Callable[[Callable[[], None]], Any] | None = None
) -> None:
    """Stop each part that exists, in the order given; `run` wraps each stop (a guard that
    reports a failure and goes on), else a failure propagates."""
    for part in parts:
        if part is None:
            continue
        if run is None:
            part.stop()
        else:
            run(part.stop)


def slice_changed(event: WatchEvent, scenario: str | None, body: Any) -> SliceChanged:
    """The dashboard's row for a watched EndpointSlice change."""
    return SliceChanged(
        event.seen_at,
        event.key,
        event.type,
        event.resource_version,
        event.describe(),
        scenario,
        manifest=dict(body),
    )


def service_change_text(event: WatchEvent) -> str:
    """The Notice text for a Service that changed under the watch."""
    return f"service {event.key} {event.type.lower()}: " + "; ".join(event.describe())
