"""The events of svcwatch's one merged stream, and their two outputs (blog-post lines and JSON).

Every backend (lab, capture, probe, watcher, cluster agent, replay) emits these and nothing else;
the dashboard, `run --plain`, `run --json` and recordings all read them. `kind` is the word the blog
post prints (`tcp-packet`, `arp-request`, `echo-ok`, `io-error`, `capture-started`...), `source` the
bracketed tag before it (`[pktcap]`, `[tcp-probe]`). Timestamps are wall-clock seconds
(time.time()).
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class PacketEvent:
    """One frame seen on one interface: TCP/UDP with ports and flags, ARP, or ICMP.

    For ARP, `src` is the sender ("tell Y") and `dst` the target ("who-has X"); `detail` holds the
    sender MAC of a reply. For ICMP, `detail` is the type in words ("port unreachable") and the
    ports, when present, are those of the packet quoted inside it. `raw` keeps the frame (Ethernet,
    or the link type named by `linktype`) for pcap export and recordings.
    """

    SOURCE: ClassVar[str] = "pktcap"
    ts: float
    kind: str  # tcp-packet | udp-packet | arp-request | arp-reply | icmp
    iface: str
    direction: str  # in | out | other (AF_PACKET's HOST/OUTGOING/OTHERHOST)
    src: str
    dst: str
    sport: int | None = None
    dport: int | None = None
    flags: str = ""
    length: int = 0  # payload bytes above TCP/UDP
    detail: str = ""
    node: str | None = None
    raw: bytes | None = field(default=None, repr=False, compare=False)
    linktype: int = 1  # DLT_EN10MB; 276 = Linux SLL2 (tcpdump -i any)

    @property
    def source(self) -> str:
        return self.SOURCE

    def text(self) -> str:
        where = f"[{self.node}/{self.iface}]" if self.node else f"[{self.iface}]"
        if self.kind == "arp-request":
            return f"{where} arp who-has {self.dst} tell {self.src}"
        if self.kind == "arp-reply":
            return f"{where} arp reply {self.src} is-at {self.detail}"
        if self.kind == "icmp":
            quoted = f" (for port {self.sport} -> {self.dport})" if self.dport else ""
            return f"{where} {self.src} -> {self.dst} icmp {self.detail}{quoted}"
        line = f"{where} {self.src}:{self.sport} -> {self.dst}:{self.dport}"
        if self.flags:
            line += f" {self.flags}"
        if self.length:
            line += f" ({self.length}B)"
        return line


@dataclass(frozen=True, slots=True)
class ProbeEvent:
    """One TCP echo probe's outcome: `echo-ok` with timings, or `io-error` in the OS's words."""

    SOURCE: ClassVar[str] = "tcp-probe"
    ts: float
    kind: str  # echo-ok | io-error
    src: str
    sport: int | None
    dst: str
    dport: int
    connect_ms: float | None = None
    echo_ms: float | None = None
    nbytes: int = 0
    phase: str | None = None  # connect | write | read, where an io-error happened
    error: str = ""  # e.g. "connection refused", "i/o timeout", "no route to host"
    errno: str | None = None  # e.g. "ECONNREFUSED"
    started: float | None = None  # when the connect began (ts is when the outcome was known)

    @property
    def source(self) -> str:
        return self.SOURCE

    @property
    def ok(self) -> bool:
        return self.kind == "echo-ok"

    def text(self) -> str:
        pair = f"{self.src}:{self.sport or 0} -> {self.dst}:{self.dport}"
        if self.ok:
            return (
                f"{pair} connect={self.connect_ms or 0:.0f}ms echo={self.echo_ms or 0:.0f}ms "
                f"({self.nbytes}B)"
            )
        # Go's net package words it as "read tcp A->B: i/o timeout"; the blog post shows that form.
        phase = self.phase or "connect"
        conn = f"{self.src}:{self.sport or 0}->{self.dst}:{self.dport}"
        return f"{pair} {phase}: {phase} tcp {conn}: {self.error}"


@dataclass(frozen=True, slots=True)
class CaptureStarted:
    """The capture (re)started with a new kernel BPF filter, as the blog post's first line shows."""

    SOURCE: ClassVar[str] = "pktcap"
    ts: float
    service: str
    bpf: str
    link: str = "Ethernet"
    interfaces: tuple[str, ...] = ()
    kind: str = "capture-started"

    @property
    def source(self) -> str:
        return self.SOURCE

    def text(self) -> str:
        return f'{self.service} bpf="{self.bpf}" link={self.link}'


@dataclass(frozen=True, slots=True)
class SliceChanged:
    """The EndpointSlice changed (ADDED/MODIFIED/DELETED), with a field-level diff."""

    SOURCE: ClassVar[str] = "watch"
    ts: float
    slice: str  # namespace/name
    change: str  # ADDED | MODIFIED | DELETED
    resource_version: str | None = None
    diff: tuple[str, ...] = ()
    scenario: str | None = None
    manifest: dict[str, Any] | None = field(default=None, compare=False)
    kind: str = "endpointslice"

    @property
    def source(self) -> str:
        return self.SOURCE

    def text(self) -> str:
        rv = f" rv={self.resource_version}" if self.resource_version else ""
        scen = f" scenario={self.scenario}" if self.scenario else ""
        diff = ("  " + "; ".join(self.diff)) if self.diff else ""
        return f"{self.change.lower()} {self.slice}{rv}{scen}{diff}"


@dataclass(frozen=True, slots=True)
class RulesSynced:
    """kube-proxy-style rules were written to the kernel; which chains came and went."""

    SOURCE: ClassVar[str] = "lab"
    ts: float
    service: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    proxy_backend: str = "iptables"  # iptables-nft | iptables-legacy | nftables (kube-proxy nft)
    took_ms: float = 0.0
    kind: str = "iptables"

    @property
    def source(self) -> str:
        return self.SOURCE

    def text(self) -> str:
        parts = [self.service, "synced"]
        if self.added:
            parts.append("+" + ",".join(self.added))
        if self.removed:
            parts.append("-" + ",".join(self.removed))
        parts.append(f"({self.took_ms:.1f}ms, {self.proxy_backend})")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class SyncTiming:
    """How long one slice change took to reach the kernel and to show up on the wire."""

    SOURCE: ClassVar[str] = "watch"
    ts: float
    slice: str
    resource_version: str | None
    written_at: float
    rules_at: float | None = None
    effect_at: float | None = None
    kind: str = "sync"

    @property
    def source(self) -> str:
        return self.SOURCE

    @property
    def rules_ms(self) -> float | None:
        return None if self.rules_at is None else (self.rules_at - self.written_at) * 1000

    @property
    def effect_ms(self) -> float | None:
        return None if self.effect_at is None else (self.effect_at - self.written_at) * 1000

    def text(self) -> str:
        rules = "n/a" if self.rules_ms is None else f"{self.rules_ms:.1f}ms"
        effect = "pending" if self.effect_ms is None else f"{self.effect_ms:.1f}ms"
        rv = self.resource_version
        return f"{self.slice} rv={rv} write->rules {rules} write->first-packet {effect}"


@dataclass(frozen=True, slots=True)
class Notice:
    """Anything else a user should read in the stream: scenario switches, warnings, errors."""

    ts: float
    kind: str  # scenario | info | warning | error | stale | key | drift | repaired | ended
    message: str
    origin: str = "svcwatch"

    @property
    def source(self) -> str:
        return self.origin

    def text(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class DiagnosisChanged:
    """The one-sentence diagnosis changed: what the dashboard's diagnosis line now says.

    `level` is ok | partial | fail | waiting. Derived from the other events and the session's
    pulled state (svcwatch.explain.diagnosis), so `svcwatch run` can say it too.
    """

    SOURCE: ClassVar[str] = "diagnosis"
    ts: float
    level: str
    sentence: str
    kind: str = "diagnosis"

    @property
    def source(self) -> str:
        return self.SOURCE

    def text(self) -> str:
        return f"{self.level}: {self.sentence}"


Event = (
    PacketEvent
    | ProbeEvent
    | CaptureStarted
    | SliceChanged
    | RulesSynced
    | SyncTiming
    | Notice
    | DiagnosisChanged
)

EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        PacketEvent,
        ProbeEvent,
        CaptureStarted,
        SliceChanged,
        RulesSynced,
        SyncTiming,
        Notice,
        DiagnosisChanged,
    )
}

SOURCE_WIDTH = 19  # "[pktcap]" padded as in the blog post: `+3.519s  [pktcap]           tcp-packet`


def plain_line(event: Event, t0: float) -> str:
    """One line in the blog post's format, relative to the stream's start `t0`."""
    tag = f"[{event.source}]"
    return f"+{event.ts - t0:.3f}s  {tag:<{SOURCE_WIDTH}}{event.kind}  {event.text()}"


def to_dict(event: Event, *, include_raw: bool = False) -> dict[str, Any]:
    """The event as a JSON-ready dict with explicit fields (`type`, `source`, `kind`, ...)."""
    out: dict[str, Any] = {"type": type(event).__name__, "source": event.source}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "raw":
            if include_raw and value is not None:
                out["raw"] = base64.b64encode(value).decode()
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    out["text"] = event.text()
    return out


def from_dict(data: dict[str, Any]) -> Event:
    """Inverse of `to_dict` (with or without raw bytes); raises ValueError on an unknown type."""
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"unknown event type {data.get('type')!r}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "raw" and value is not None:
            value = base64.b64decode(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    event: Event = cls(**kwargs)
    return event
