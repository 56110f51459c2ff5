"""FakeSession: a deterministic Session that replays each scenario's packets through the sink.

It speaks the same interface as the lab (start/stop, request_scenario, read_chain, ...) and emits
the blog post's traces with fixed timestamps, so UI tests and snapshots see exactly what a real
lab would send, minus the kernel. Its chain tree comes from the real renderer, read back through
the real iptables-save parser, with counters from the probes it "sent".
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from svcwatch.kubeproxy.chains import SEP_PREFIX
from svcwatch.kubeproxy.render import render
from svcwatch.kubeproxy.restore import parse_save, service_tree, to_restore_text
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import (
    CaptureStarted,
    Event,
    Notice,
    PacketEvent,
    ProbeEvent,
    RulesSynced,
    SliceChanged,
    SyncTiming,
)
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.scenario import SCENARIOS, ScenarioContext, apply_scenario, get_scenario
from svcwatch.model.service import Service
from svcwatch.session.capabilities import Capabilities
from svcwatch.sinks import EventSink

T0 = 1_000.0
POD = "socat-5c97445bc5-vw5dz"
POD_IP = "10.42.0.142"
CLUSTER_IP = "10.43.161.224"
NODE, CLIENT = "192.168.97.3", "192.168.97.2"
VETHS = ("veth0829e839", "veth261c8b4a", "vethb5026255")
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "socat.yaml"


def _tcp(ts: float, iface: str, src: str, dst: str, flags: str) -> PacketEvent:
    (s, sp), (d, dp) = src.split(":"), dst.split(":")
    return PacketEvent(ts, "tcp-packet", iface, "out", s, d, int(sp), int(dp), flags)


class FakeSession:
    """A lab-shaped session with no kernel: everything it emits is fixed by the scenario."""

    kind = "lab"
    title = f"lab test (node {NODE})"

    def __init__(self, scenario: str = "happy", fail_start: str | None = None) -> None:
        objects = collect(parse_documents(MANIFESTS.read_text(), str(MANIFESTS)))
        self._service = replace(objects.services[0], cluster_ip=CLUSTER_IP)
        self.baseline = objects.slices[0]
        self.slice = self.baseline
        self.scenario: str | None = scenario
        self.fail_start = fail_start
        self.sink: EventSink | None = None
        self.now = T0
        self.port = 40000
        self.landed: dict[str, int] = {}  # ip:port -> connections DNATed there
        self.stopped = threading.Event()
        self.requests: list[str] = []
        self.applied_texts: list[str] = []
        self.version = 1

    # --- Session protocol ---------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        if self.fail_start:
            raise RuntimeError(self.fail_start)
        self.sink = sink
        self._switch(self.scenario or "happy", change="ADDED")

    def stop(self) -> None:
        self.stopped.set()

    def cancel_start(self) -> None:
        """Nothing to call off: start() here never waits."""

    def service(self) -> Service:
        return self._service

    def current_slice(self) -> EndpointSlice:
        return self.slice

    def current_scenario(self) -> str | None:
        return self.scenario

    def capabilities(self) -> Capabilities:
        return Capabilities(scenarios=self, slice_editing=self)

    def scenarios_offered(self) -> list[str]:
        return list(SCENARIOS)

    def request_scenario(self, name: str) -> None:
        get_scenario(name)
        self.requests.append(name)
        self._switch(name)

    def apply_slice_text(self, text: str) -> None:
        objects = collect(parse_documents(text, "edited EndpointSlice"))
        if len(objects.slices) != 1 or objects.services or objects.deployments:
            raise InputError(
                "the edited text must be exactly one EndpointSlice", source="edited EndpointSlice"
            )
        self.applied_texts.append(text)
        self.scenario = None
        self._set_slice(objects.slices[0], None, "MODIFIED")

    def read_chain(self) -> ChainTree:
        dump = to_restore_text(render(self._service, [self.slice]))
        tree = service_tree(parse_save(dump), self._service, proxy_backend="iptables-nft")
        return _with_counters(tree, self.landed)

    def endpoint_facts(self) -> list[EndpointFacts]:
        port = next((p.port for p in self.slice.ports if p.port), None)
        out = []
        for endpoint in self.slice.endpoints:
            real = endpoint.address == POD_IP
            listening = (port == 12345 and self.scenario != "pod-down") if real else None
            out.append(
                EndpointFacts(endpoint.address or "", port, POD if real else None, listening)
            )
        return out

    # --- the traces -----------------------------------------------------------------------------

    def _switch(self, name: str, change: str = "MODIFIED") -> None:
        self.scenario = name
        wanted = apply_scenario(name, ScenarioContext(self.baseline))
        self._set_slice(wanted, name, change)

    def _set_slice(self, slice_: EndpointSlice, scenario: str | None, change: str) -> None:
        self.version += 1
        self.slice = replace(slice_, resource_version=str(self.version))
        self.now = T0 + 0.4 if change == "ADDED" else self.now + 1.0
        written_at = self.now
        events: list[Event] = [
            SliceChanged(
                self._tick(), self.slice.key, change, self.slice.resource_version, scenario=scenario
            ),
            RulesSynced(self._tick(), self._service.key, proxy_backend="iptables-nft", took_ms=3.2),
            CaptureStarted(self._tick(), self._service.key, self._bpf(), link="Ethernet"),
        ]
        ready: list[str | None] = [
            e.address for e in self.slice.endpoints if e.address and e.conditions.is_ready
        ]
        port = next((p.port for p in self.slice.ports if p.port), 12345)
        for address in ready or [None]:
            events.extend(self.connection(address, port))
        # The lab's sync record: written, rules in the kernel 31 ms later, first packet after.
        first_packet = next(e.ts for e in events if isinstance(e, PacketEvent))
        events.append(
            SyncTiming(
                self._tick(),
                self.slice.key,
                self.slice.resource_version,
                written_at,
                rules_at=written_at + 0.031,
                effect_at=first_packet,
            )
        )
        self._emit(events)

    def connection(self, address: str | None, port: int) -> list[Event]:
        """One probe's packets and outcome, as the lab would see them for this endpoint."""
        self.now += 0.5
        self.port += 1
        client = f"{CLIENT}:{self.port}"
        svc = f"{NODE}:31234"
        started = self._tick()
        if address is None:
            return [
                _tcp(self._tick(), "eth0", client, svc, "SYN"),
                self._probe(started, "connection refused", "ECONNREFUSED"),
            ]
        self.landed[f"{address}:{port}"] = self.landed.get(f"{address}:{port}", 0) + 1
        pod_side = f"{address}:{port}"
        snat = f"10.42.0.1:{self.port % 30000 + 1024}"
        syn = [
            _tcp(self._tick(), "eth0", client, svc, "SYN"),
            _tcp(self._tick(), "cni0", snat, pod_side, "SYN"),
        ]
        if address != POD_IP:
            arps = [
                PacketEvent(self._tick(), "arp-request", i, "out", "10.42.0.1", address)
                for i in ("cni0", *VETHS)
            ]
            return [*syn, *arps, self._probe(started, "i/o timeout", None, phase="read")]
        syn.append(_tcp(self._tick(), VETHS[0], snat, pod_side, "SYN"))
        if port != 12345 or self.scenario == "pod-down":
            rst = [
                _tcp(self._tick(), VETHS[0], pod_side, snat, "ACK,RST"),
                _tcp(self._tick(), "cni0", pod_side, client, "ACK,RST"),
                _tcp(self._tick(), "eth0", svc, client, "ACK,RST"),
            ]
            return [*syn, *rst, self._probe(started, "connection refused", "ECONNREFUSED")]
        answer = [
            _tcp(self._tick(), VETHS[0], pod_side, snat, "SYN,ACK"),
            _tcp(self._tick(), "cni0", pod_side, client, "SYN,ACK"),
            _tcp(self._tick(), "eth0", svc, client, "SYN,ACK"),
            _tcp(self._tick(), "eth0", client, svc, "ACK"),
        ]
        ok = ProbeEvent(
            self._tick(),
            "echo-ok",
            "127.0.0.1",
            self.port,
            "127.0.0.1",
            31234,
            connect_ms=0.4,
            echo_ms=3.6,
            nbytes=5,
            started=started,
        )
        return [*syn, *answer, ok]

    def _probe(
        self, started: float, error: str, errno: str | None, phase: str = "connect"
    ) -> ProbeEvent:
        took = 2.0 if "timeout" in error else 0.001
        return ProbeEvent(
            started + took,
            "io-error",
            "127.0.0.1",
            self.port,
            "127.0.0.1",
            31234,
            phase=phase,
            error=error,
            errno=errno,
            started=started,
        )

    def flood(self, count: int) -> None:
        """`count` packets at once (a SYN flood), for the not-drawn accounting."""
        self._emit(
            [
                _tcp(self._tick(), "eth0", f"{CLIENT}:{1024 + i % 60000}", f"{NODE}:31234", "SYN")
                for i in range(count)
            ]
        )

    def notice(self, message: str) -> None:
        self._emit([Notice(self._tick(), "info", message)])

    def _bpf(self) -> str:
        addresses = (
            " or ".join(f"host {e.address}" for e in self.slice.endpoints if e.address) or "none"
        )
        return (
            f"(ip and ((host {CLUSTER_IP} and port 12345) or (host {NODE} and port 31234))) "
            f"or (arp and ({addresses}))"
        )

    def _tick(self) -> float:
        self.now += 0.001
        return round(self.now, 3)

    def _emit(self, events: list[Event]) -> None:
        assert self.sink is not None
        self.sink.emit_many(events)


def _with_counters(tree: ChainTree, landed: dict[str, int]) -> ChainTree:
    """The tree with packet counters as the kernel would count these connections."""
    total = sum(landed.values())
    for chain, rules in tree.chains.items():
        counted = []
        for rule in rules:
            if chain.startswith(SEP_PREFIX) or (rule.target or "").startswith(SEP_PREFIX):
                key = rule.dnat_to or _sep_destination(tree, rule.target)
                counted.append(replace(rule, packets=landed.get(key or "", 0)))
            else:
                counted.append(replace(rule, packets=total))
        tree.chains[chain] = counted
    tree.entry = [replace(r, packets=total) for r in tree.entry]
    return tree


def _sep_destination(tree: ChainTree, chain: str | None) -> str | None:
    return next((r.dnat_to for r in tree.chains.get(chain or "", []) if r.dnat_to), None)
