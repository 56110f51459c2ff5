"""Reading a recording back, tolerating the damage a crash or a bad copy leaves behind.

A recording that stops mid-line (the process died) or holds a garbled line still replays: the
reader keeps every record before the first damaged line and says where the damage is, in one line
("demo.svcrec: line 812: truncated JSON; replayed 811 events"). What cannot be replayed at all (a
missing file, a file that is not a recording, a newer format version) is an InputError naming the
file and the fix. gzip is detected by its magic bytes, whatever the file is called.
"""

from __future__ import annotations

import bisect
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, SliceChanged
from svcwatch.model.manifest import parse_slice
from svcwatch.model.service import Service
from svcwatch.record import format as fmt
from svcwatch.textfile import require_regular_file

_CHUNK = 1 << 16
_MAX_LINE = 64 << 20  # a longer "line" is not a recording line (a binary file with no newline)
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Damage:
    """Where a recording stops being readable, and how many events came before."""

    line: int
    reason: str  # "truncated JSON" | "corrupt JSON" | "bad record: ..." | "corrupt gzip data"
    events_before: int

    def warning(self, name: str) -> str:
        return f"{name}: line {self.line}: {self.reason}; replayed {self.events_before} events"


@dataclass(frozen=True, slots=True)
class Shown:
    """A value the dashboard displayed, and after how many stream events it displayed it.

    `what` is `started` (the session started: a (Service, EndpointSlice) pair), `chain` (a
    ChainTree), `slice` (an EndpointSlice), `facts` (a list of endpoint-fact dicts), `scenario` (a
    name), `clear` (the user pressed `c`: None), `view` (a digest of what the panes showed, to
    verify a replay against: a dict), `objects` (a pulled pair, in recordings without `shown`
    records) or `reset` (a replay jump starts over: never recorded). A replay shows each one
    after exactly `seen` events, which is what makes it show what the live dashboard showed, not
    a guess from timestamps.
    """

    seen: int
    ts: float
    what: str
    value: Any = None


RESET = Shown(seen=-1, ts=0.0, what="reset")


@dataclass(slots=True)
class Recording:
    """A loaded recording: the header and every record, each kind on its own timeline."""

    path: Path
    header: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    chains: list[tuple[float, ChainTree]] = field(default_factory=list)
    objects: list[tuple[float, Service, EndpointSlice]] = field(default_factory=list)
    facts: list[tuple[float, list[dict[str, Any]]]] = field(default_factory=list)
    scenarios: list[tuple[float, str]] = field(default_factory=list)
    keys: list[tuple[float, str]] = field(default_factory=list)
    shown: list[Shown] = field(default_factory=list)  # `shown` records, or derived (legacy)
    pulled: list[Shown] = field(default_factory=list)  # chain/objects/facts/scenario, file order
    damage: Damage | None = None
    title: str | None = None  # the `title` record: the live session's header line
    started: float | None = None  # the `start` record: the stream's +0.000s
    complete: bool = False  # an `end` record was read: the recorder closed the file
    skipped: int = 0  # records of kinds this version does not know

    @property
    def session_kind(self) -> str:
        return fmt.session_kind_of(self.header)

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.header.get("meta")
        return meta if isinstance(meta, dict) else {}

    @property
    def start_ts(self) -> float:
        """When the stream began: the plain output's +0.000s."""
        if self.started is not None:
            return self.started
        return float(self.header.get("created") or 0.0)

    def warning(self) -> str | None:
        return self.damage.warning(self.path.name) if self.damage else None

    def scenario_starts(self) -> list[tuple[float, str]]:
        """When each scenario began: requests, and slice changes naming one (another process's).

        A request and the slice change it causes name the same scenario; the request counts.
        """
        changes = [
            (e.ts, e.scenario) for e in self.events if isinstance(e, SliceChanged) and e.scenario
        ]
        starts: list[tuple[float, str]] = []
        for ts, name in sorted([*self.scenarios, *changes], key=lambda entry: entry[0]):
            if not starts or starts[-1][1] != name:
                starts.append((ts, name))
        return starts


EntryT = TypeVar("EntryT", bound=tuple[Any, ...])


def latest_at(timeline: Sequence[EntryT], ts: float) -> EntryT | None:
    """The last (ts, ...) entry of a ts-sorted timeline at or before `ts` (else the first)."""
    if not timeline:
        return None
    i = bisect.bisect_right(timeline, ts, key=lambda entry: float(entry[0]))
    return timeline[max(i - 1, 0)]


def load_recording(path: Path) -> Recording:
    """Read `path` fully. Raises InputError when it is missing, not a recording, or too new."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            "no such recording file (record one with `svcwatch --record FILE`)", source=str(path)
        )
    require_regular_file(path, what="a recording file")  # a FIFO or /dev/zero: never read on
    lines = _numbered_lines(path)
    recording = Recording(path=path, header=_read_header(path, lines))
    last_line = 1
    try:
        for last_line, raw, complete_line in lines:
            if not raw.strip():
                continue
            damage = _add_line(recording, raw, complete_line)
            if damage:
                recording.damage = Damage(last_line, damage, len(recording.events))
                break
    except _StreamDamage as exc:
        recording.damage = Damage(exc.line, exc.reason, len(recording.events))
    if recording.damage is None and not recording.complete:
        # Cut on a line boundary: nothing is garbled, but the recorder never closed the file.
        recording.damage = Damage(
            last_line + 1, "recording ends early (never closed)", len(recording.events)
        )
    _sort_timelines(recording)
    if not recording.shown:
        recording.shown = _derived_shown(recording)
    return recording


def _derived_shown(recording: Recording) -> list[Shown]:
    """For a recording without `shown` records (headless, or older): what was pulled, placed after
    the events that preceded it in the file (its line order is the order things happened)."""
    return list(recording.pulled)  # `seen` never decreases along the file


def _read_header(path: Path, lines: Iterator[tuple[int, bytes, bool]]) -> dict[str, Any]:
    not_recording = InputError(
        "not a svcwatch recording (no recording header on line 1)", source=str(path)
    )
    try:
        _, first, _ = next(lines)
        head = json.loads(first)
    except (StopIteration, _StreamDamage, ValueError, UnicodeDecodeError) as exc:
        raise not_recording from exc
    if not isinstance(head, dict) or head.get("format") != fmt.FORMAT_NAME:
        raise not_recording
    version = head.get("version")
    if not isinstance(version, int):
        raise not_recording
    if version > fmt.FORMAT_VERSION:
        raise InputError(
            f"recording format version {version} is newer than this svcwatch reads "
            f"(version {fmt.FORMAT_VERSION}); upgrade svcwatch to replay it",
            source=str(path),
        )
    return head


def _add_line(recording: Recording, raw: bytes, complete_line: bool) -> str | None:
    """Parse one line into `recording`; returns the damage reason when it cannot be read."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "corrupt JSON" if complete_line else "truncated JSON"
    if not isinstance(record, dict):
        return "corrupt JSON"
    try:
        _dispatch(recording, record)
    except (KeyError, TypeError, ValueError) as exc:  # InputError is a ValueError
        return f"bad {record.get('rec', 'untyped')} record ({' '.join(str(exc).split())})"
    return None


def _dispatch(recording: Recording, record: dict[str, Any]) -> None:
    kind = record.get("rec")
    if kind == "event":
        event = fmt.event_from_record(record)
        recording.events.append(event)
        if isinstance(event, SliceChanged) and event.scenario:  # the dashboard's header follows
            recording.pulled.append(
                Shown(len(recording.events), event.ts, "scenario", event.scenario)
            )
        return
    if kind == "end":
        recording.complete = True
        return
    ts = float(record["ts"])
    seen = len(recording.events)
    if kind == "shown":
        _add_shown(recording, record, ts)
    elif kind == "chain":
        recording.chains.append((ts, fmt.chain_from_dict(record["chain"])))
        recording.pulled.append(Shown(seen, ts, "chain", recording.chains[-1][1]))
    elif kind == "objects":
        recording.objects.append((ts, *fmt.objects_from_record(record)))
        recording.pulled.append(Shown(seen, ts, "objects", recording.objects[-1][1:]))
    elif kind == "facts":
        recording.facts.append((ts, [dict(f) for f in record["facts"]]))
        recording.pulled.append(Shown(seen, ts, "facts", recording.facts[-1][1]))
    elif kind == "scenario":
        recording.scenarios.append((ts, str(record["name"])))
        recording.pulled.append(Shown(seen, ts, "scenario", recording.scenarios[-1][1]))
    elif kind == "title":
        recording.title = str(record["title"])
    elif kind == "start":
        recording.started = recording.started if recording.started is not None else ts
    elif kind == "key":
        recording.keys.append((ts, str(record["key"])))
    else:
        recording.skipped += 1  # a kind added after this reader was written


def _add_shown(recording: Recording, record: dict[str, Any], ts: float) -> None:
    """A `shown` record: the value joins its own timeline too (export, plain replay use those)."""
    seen, what = int(record["seen"]), str(record["what"])
    value: Any = None
    if what == "chain":
        value = fmt.chain_from_dict(record["chain"])
        recording.chains.append((ts, value))
    elif what == "started":
        value = fmt.objects_from_record(record)
        recording.objects.append((ts, *value))
    elif what == "slice":
        value = parse_slice(record["slice"], "recording")
        if recording.objects:
            recording.objects.append((ts, recording.objects[-1][1], value))
    elif what == "facts":
        value = [dict(f) for f in record["facts"]]
        recording.facts.append((ts, value))
    elif what == "scenario":
        value = str(record["name"])
    elif what == "view":
        value = {str(k): str(v) for k, v in dict(record["view"]).items()}
    elif what != "clear":
        recording.skipped += 1  # a kind of display added after this reader was written
        return
    recording.shown.append(Shown(seen, ts, what, value))


def _sort_timelines(recording: Recording) -> None:
    # Records are written in call order from several threads; their clocks agree to the ms.
    for timeline in (
        recording.chains,
        recording.objects,
        recording.facts,
        recording.scenarios,
        recording.keys,
    ):
        timeline.sort(key=lambda entry: entry[0])


class _StreamDamage(Exception):
    """The byte stream itself is broken (gzip data corrupt or cut) at `line`."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes, ended by a newline) for each line, decompressing gzip as it goes."""
    buffer = b""
    lineno = 0

    def current_line() -> int:
        return lineno + 1

    for chunk in _decoded_chunks(path, current_line):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            lineno += 1
            yield lineno, line, True
        if len(buffer) > _MAX_LINE:
            raise _StreamDamage(lineno + 1, "line too long")
    if buffer:
        yield lineno + 1, buffer, False


def _decoded_chunks(path: Path, current_line: Callable[[], int]) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        first = fh.read(_CHUNK)
        if not first.startswith(_GZIP_MAGIC):
            chunk = first
            while chunk:
                yield chunk
                chunk = fh.read(_CHUNK)
            return
        yield from _gunzip(first, fh, current_line)


def _gunzip(first: bytes, fh: BinaryIO, current_line: Callable[[], int]) -> Iterator[bytes]:
    """Decompress gzip members one after another; a cut or garbled stream ends with damage."""
    inflater = zlib.decompressobj(wbits=31)
    data = first
    while data:
        try:
            out = inflater.decompress(data)
        except zlib.error as exc:
            raise _StreamDamage(current_line(), "corrupt gzip data") from exc
        if out:
            yield out
        if inflater.eof and inflater.unused_data:  # another gzip member follows
            data, inflater = inflater.unused_data, zlib.decompressobj(wbits=31)
            continue
        data = fh.read(_CHUNK)
    if not inflater.eof:
        tail = inflater.flush()
        if tail:
            yield tail
        # A cut gzip file: what was flushed is intact, the last line may be partial (the caller
        # reports that line as truncated), so this is not itself damage.
