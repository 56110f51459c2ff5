"""The svcwatch recording format, version 2: one JSON object per line, optionally gzip-compressed.

A recording is what the dashboard showed, in the order it happened, so a replay can show it again
anywhere (no root, no lab, no cluster). Line 1 is the header; every later line is one record whose
`rec` field says what it holds:

- `event`: one stream event (`svcwatch.model.events.to_dict` with raw frame bytes as base64);
- `chain`: the Service's iptables chain tree with counters, as the dashboard read it;
- `objects`: the Service and EndpointSlice as Kubernetes manifests;
- `facts`: what the backend knew about each endpoint (a real pod? listening?);
- `start`: the moment the stream started (the +0.000s of the plain output);
- `title`: the live session's title, once it started (e.g. "lab default (node 192.168.97.3)");
- `scenario`: a scenario was requested; `key`: a key was pressed;
- `shown`: what the dashboard displayed (`what`: chain, objects, facts, scenario, clear, view) and
  after how many events (`seen`), so a replay shows it at exactly the same point of the stream;
- `end`: the recording was closed cleanly (a crash leaves no `end`).

Readers skip records of a kind they do not know, so a version may gain kinds; anything an older
reader would misread bumps `FORMAT_VERSION`. Version 2 renamed "backend", which meant two things:
the header's session kind is `session_kind`, and the iptables flavour in chains and RulesSynced
events is `proxy_backend`; it also added `DiagnosisChanged` events. This reader still reads
version 1 (`upgrade_v1_*` below). docs/recording-format.md is the user-facing copy.
"""

from __future__ import annotations

import dataclasses
import json
from base64 import b64encode
from typing import Any

from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.events import Event, PacketEvent, from_dict, to_dict
from svcwatch.model.manifest import parse_service, parse_slice
from svcwatch.model.service import Service

FORMAT_NAME = "svcwatch-recording"
FORMAT_VERSION = 2

# Fields `to_dict` adds that `from_dict` derives again: left out to keep recordings small.
_DERIVED_EVENT_FIELDS = ("text", "source")


def header(
    *, session_kind: str, created: float, version: str, meta: dict[str, Any] | None
) -> dict[str, Any]:
    """The first line: what this file is, which format version, and where it was recorded."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created": created,
        "svcwatch": version,
        "session_kind": session_kind,
        "meta": dict(meta or {}),
    }


def event_record(event: Event) -> dict[str, Any]:
    data = to_dict(event, include_raw=True)
    for name in _DERIVED_EVENT_FIELDS:
        data.pop(name, None)
    return {"rec": "event", "event": data}


_json_strings: dict[str, str] = {}  # interface names, addresses, flag words: a few hundred


def _js(text: str) -> str:
    encoded = _json_strings.get(text)
    if encoded is None:
        if len(_json_strings) > 4096:
            _json_strings.clear()
        encoded = _json_strings[text] = json.dumps(text)
    return encoded


def _num(value: int | None) -> str:
    return "null" if value is None else repr(value)


def packet_line(e: PacketEvent) -> str:
    """`event_record(e)` as one JSON line, formatted directly (about twice as fast).

    Packets are nearly every record, and the capture thread shares the GIL with the writer, so
    the writer's cost per packet is the recording's cost on capture throughput. A unit test
    holds this equal to the generic encoding.
    """
    raw = "" if e.raw is None else ',"raw":"' + b64encode(e.raw).decode() + '"'
    node = "null" if e.node is None else _js(e.node)
    return (
        f'{{"rec":"event","event":{{"type":"PacketEvent","ts":{e.ts!r},"kind":{_js(e.kind)},'
        f'"iface":{_js(e.iface)},"direction":{_js(e.direction)},"src":{_js(e.src)},'
        f'"dst":{_js(e.dst)},"sport":{_num(e.sport)},"dport":{_num(e.dport)},'
        f'"flags":{_js(e.flags)},"length":{e.length!r},"detail":{_js(e.detail)},"node":{node},'
        f'"linktype":{e.linktype!r}{raw}}}}}\n'
    )


def event_from_record(record: dict[str, Any]) -> Event:
    """The event of an `event` record; raises ValueError/TypeError when it is malformed."""
    data = record["event"]
    if not isinstance(data, dict):
        raise ValueError("event is not an object")
    return from_dict(_renamed(data, "backend", "proxy_backend"))


def _renamed(data: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """`data` with key `old` called `new` (a version-1 record read by this version)."""
    if old not in data:
        return data
    out = dict(data)
    out.setdefault(new, out.pop(old))
    return out


def session_kind_of(header: dict[str, Any]) -> str:
    """The recorded session's kind ("lab", "cluster"): `session_kind`, `backend` in version 1."""
    return str(header.get("session_kind") or header.get("backend") or "?")


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """A rule with its default-valued fields left out (most rules have no probability or DNAT)."""
    out: dict[str, Any] = {"chain": rule.chain, "spec": rule.spec}
    for f in dataclasses.fields(rule):
        value = getattr(rule, f.name)
        if f.name not in out and value != f.default:
            out[f.name] = value
    return out


def chain_to_dict(tree: ChainTree) -> dict[str, Any]:
    return {
        "service": tree.service,
        "proxy_backend": tree.proxy_backend,
        "entry": [rule_to_dict(r) for r in tree.entry],
        "chains": {name: [rule_to_dict(r) for r in rules] for name, rules in tree.chains.items()},
        "filter_rules": [rule_to_dict(r) for r in tree.filter_rules],
        **({"affinity_seconds": tree.affinity_seconds} if tree.affinity_seconds else {}),
    }


def chain_from_dict(data: dict[str, Any]) -> ChainTree:
    data = _renamed(data, "backend", "proxy_backend")
    return ChainTree(
        service=str(data["service"]),
        entry=[Rule(**r) for r in data.get("entry", [])],
        chains={
            str(name): [Rule(**r) for r in rules] for name, rules in data.get("chains", {}).items()
        },
        filter_rules=[Rule(**r) for r in data.get("filter_rules", [])],
        proxy_backend=str(data.get("proxy_backend", "")),
        affinity_seconds=data.get("affinity_seconds"),
    )


def objects_record(service: Service, slice_: EndpointSlice, ts: float) -> dict[str, Any]:
    return {
        "rec": "objects",
        "ts": ts,
        "service": service.to_manifest(),
        "slice": slice_.to_manifest(),
    }


def objects_from_record(record: dict[str, Any]) -> tuple[Service, EndpointSlice]:
    """The Service and slice of an `objects` record; raises InputError when a manifest is bad."""
    return (
        parse_service(record["service"], "recording"),
        parse_slice(record["slice"], "recording"),
    )
