"""The diagnosis line: the current failure mode, in one sentence, from evidence only.

`Evidence` accumulates what the stream showed since the slice last changed (recent probe outcomes,
RSTs coming back from endpoints, ARP requests nobody answered, ICMP "host unreachable") and what
the session knows (the slice, which pod has which IP, who listens). `diagnose` turns that into one
sentence a learner can follow, naming the packet that proves it and what a client sees. It is pure
(no Textual), so every case is a plain unit test.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median

from svcwatch.kubeproxy.mode import affinity_seconds, is_nft, rejects
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.events import Event, Notice, PacketEvent, ProbeEvent, SliceChanged
from svcwatch.model.facts import EndpointFacts

PROBE_WINDOW = 10  # recent probes that count: enough for "~50%", short enough to show recovery


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One sentence and how bad it is: ok | partial | fail | waiting."""

    text: str
    level: str


@dataclass(slots=True)
class Evidence:
    """What the stream and the session showed since the slice last changed."""

    service: str = "the Service"
    slice: EndpointSlice | None = None
    facts: list[EndpointFacts] = field(default_factory=list)
    chain: ChainTree | None = None
    probes: deque[ProbeEvent] = field(default_factory=lambda: deque(maxlen=PROBE_WINDOW))
    rst_from: set[tuple[str, int]] = field(default_factory=set)
    arp_asked: dict[str, str] = field(default_factory=dict)  # target IP -> interface seen on
    arp_answered: set[str] = field(default_factory=set)
    host_unreachable: int = 0
    syn_to: set[str] = field(default_factory=set)  # pod addresses SYNs were DNATed to (on cni0)
    # "ip:port" -> the client (address, port) of each new connection seen going there on cni0
    connections_to: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    # the client (address, port) of each new connection seen arriving at the node, before DNAT
    arriving: set[tuple[str, int]] = field(default_factory=set)
    lab_fault: str | None = None  # the lab's own data plane is broken (a `drift` Notice)

    def observe(self, event: Event) -> None:
        """Fold one stream event in; a slice change starts a fresh window."""
        if isinstance(event, SliceChanged):
            self.reset_stream()
        elif isinstance(event, ProbeEvent):
            self.probes.append(event)
        elif isinstance(event, PacketEvent):
            self._observe_packet(event)
        elif isinstance(event, Notice):
            self._observe_notice(event)

    def _observe_notice(self, notice: Notice) -> None:
        """The lab broke (drift), was removed (ended) or was repaired: a repair starts a fresh
        window, so probes lost to the lab's outage are not blamed on the pod afterwards."""
        if notice.kind in ("drift", "ended"):
            self.lab_fault = notice.message
        elif notice.kind == "repaired":
            self.lab_fault = None
            self.reset_stream()

    def _observe_packet(self, packet: PacketEvent) -> None:
        if packet.kind == "tcp-packet" and "RST" in packet.flags and packet.sport is not None:
            self.rst_from.add((packet.src, packet.sport))
        elif packet.kind == "tcp-packet" and packet.flags == "SYN" and packet.iface == "cni0":
            self.syn_to.add(packet.dst)
            target = f"{packet.dst}:{packet.dport}"
            self.connections_to.setdefault(target, set()).add((packet.src, packet.sport or 0))
        elif packet.kind == "tcp-packet" and packet.flags == "SYN" and self._before_dnat(packet):
            self.arriving.add((packet.src, packet.sport or 0))
        elif packet.kind == "arp-request":
            # Prefer naming the bridge: that is where the node asks.
            if packet.dst not in self.arp_asked or packet.iface == "cni0":
                self.arp_asked[packet.dst] = packet.iface
        elif packet.kind == "arp-reply":
            self.arp_answered.add(packet.src)
        elif packet.kind == "icmp" and "host unreachable" in packet.detail:
            self.host_unreachable += 1

    def reset_stream(self) -> None:
        self.probes.clear()
        self.rst_from.clear()
        self.arp_asked.clear()
        self.arp_answered.clear()
        self.host_unreachable = 0
        self.syn_to.clear()
        self.connections_to.clear()
        self.arriving.clear()

    def _before_dnat(self, packet: PacketEvent) -> bool:
        """A SYN on the node's own link (not the bridge, not a pod's veth) to an address that is
        no endpoint: a client's new connection to the Service, before kube-proxy's DNAT."""
        if packet.iface == "cni0" or packet.iface.startswith("veth"):
            return False
        endpoints = self.slice.endpoints if self.slice else ()
        return all(packet.dst != e.address for e in endpoints)

    def landed_from_capture(self) -> dict[str, int]:
        """New connections per endpoint `ip:port`, counted from the capture, for rules that have
        no counters (nftables mode): distinct SYNs the node sent onto cni0 after DNAT (a
        retransmitted SYN counts once). A SYN DNATed to an address nobody answers ARP for never
        reaches cni0: it waits for the neighbour. So connections that arrived but never reached
        cni0 are counted for the one endpoint whose ARP who-has on cni0 went unanswered."""
        landed = {target: len(clients) for target, clients in self.connections_to.items()}
        unanswered = [
            address
            for address, iface in self.arp_asked.items()
            if iface == "cni0" and address not in self.arp_answered
        ]
        port = _port(self)
        if len(unanswered) == 1 and port is not None and unanswered[0] in _ready_addresses(self):
            held = len(self.arriving) - sum(landed.values())
            if held > 0:
                target = f"{unanswered[0]}:{port}"
                landed[target] = landed.get(target, 0) + held
        return landed


def _port(evidence: Evidence) -> int | None:
    ports = evidence.slice.ports if evidence.slice else ()
    return next((p.port for p in ports if p.port), None)


def _ready_addresses(evidence: Evidence) -> list[str]:
    if evidence.slice is None:
        return []
    return [e.address for e in evidence.slice.endpoints if e.address and e.conditions.is_ready]


def _fact(evidence: Evidence, address: str) -> EndpointFacts | None:
    return next((f for f in evidence.facts if f.address == address), None)


def _saw_unreachable(evidence: Evidence) -> bool:
    return evidence.host_unreachable > 0 or any(
        p.errno == "EHOSTUNREACH" or "no route to host" in p.error for p in evidence.probes
    )


def endpoint_problem(evidence: Evidence, address: str) -> tuple[str, str] | None:
    """Why one endpoint fails, from evidence: (what the packets show, what clients see), or None."""
    port = _port(evidence)
    fact = _fact(evidence, address)
    pod = f"pod {fact.pod}" if fact and fact.pod else "the pod"
    if port is not None and (address, port) in evidence.rst_from:
        return (
            f"SYN DNATed to {address}:{port} answered with RST: nothing listens on port "
            f"{port} in {pod}",
            "clients see 'connection refused'",
        )
    asked = address in evidence.arp_asked and address not in evidence.arp_answered
    if asked or (fact is not None and fact.pod is None):
        where = evidence.arp_asked.get(address, "cni0")
        seen = (
            "clients time out, then get 'no route to host' once ARP gives up"
            if _saw_unreachable(evidence)
            else "clients time out"
        )
        verb = "unanswered" if asked else "would go unanswered"
        return f"ARP who-has {address} {verb} on {where}: no pod has that IP", seen
    if fact is not None and fact.listening is False:
        return (
            f"nothing listens on port {port} in {pod} at {address}",
            "clients see 'connection refused'",
        )
    return None


def _reject_rule(evidence: Evidence) -> str:
    """What rejects a Service with no endpoints, in the words of the mode that wrote the rules."""
    if is_nft(evidence.chain):
        return "kube-proxy's no-endpoint-services element (goto reject-chain)"
    return 'kube-proxy\'s REJECT rule "has no endpoints"'


def _affinity_note(evidence: Evidence) -> str:
    """With ClientIP affinity every probe from this one client lands on the same endpoint, so
    all-ok (or all-failed) says nothing about the other endpoints: say so."""
    if evidence.chain is None or len(_ready_addresses(evidence)) < 2:
        return ""
    seconds = affinity_seconds(evidence.chain)
    if seconds is None:
        return ""
    return (
        f"; ClientIP affinity pins this client to one endpoint for {seconds}s, "
        "so the others go untested"
    )


def _healthy(evidence: Evidence, ok: list[ProbeEvent]) -> Diagnosis:
    """All recent probes echoed. Only an endpoint a pod is known to serve is named as a path they
    took: one already known to be bad (no pod has its IP, nothing listens) may still have its
    probes waiting on ARP, and one with no facts yet (the slice just changed) is unverified."""
    ready = _ready_addresses(evidence)
    found = {address: endpoint_problem(evidence, address) for address in ready}
    problems = [problem for problem in found.values() if problem is not None]
    targets = []
    for address in (a for a in ready if found[a] is None):
        fact = _fact(evidence, address)
        if fact is None or not fact.pod:
            continue
        targets.append(f"{address}:{_port(evidence)} (pod {fact.pod})")
    via = f" via {', '.join(targets)}" if targets else ""
    connect = median(p.connect_ms or 0.0 for p in ok)
    if problems:
        noun = "endpoints is" if len(problems) == 1 else "endpoints are"
        return Diagnosis(
            f"{len(ok)} of {len(ok)} recent probes echoed{via} so far, but "
            f"{len(problems)} of {len(ready)} {noun} bad: {problems[0][0]}; {problems[0][1]}",
            "partial",
        )
    return Diagnosis(
        f"Healthy: {len(ok)} of {len(ok)} recent probes echoed{via}; "
        f"median connect {connect:.0f} ms{_affinity_note(evidence)}",
        "ok",
    )


def _mixed(evidence: Evidence, failed: int, total: int, ready: list[str]) -> Diagnosis:
    problems = [(a, p) for a in ready if (p := endpoint_problem(evidence, a)) is not None]
    if not problems:
        return Diagnosis(
            f"{failed} of {total} recent probes failed ({evidence.probes[-1].error or 'error'}) "
            "though no endpoint shows a fault yet",
            "partial",
        )
    share = round(100 * len(problems) / len(ready)) if ready else 0
    noun = "endpoints is" if len(problems) == 1 else "endpoints are"  # "1 of 2 endpoints is bad"
    first = problems[0][1][0]
    return Diagnosis(
        f"{len(problems)} of {len(ready)} {noun} bad: ~{share}% of connections fail "
        f"({failed} of {total} recent probes); {first}",
        "partial",
    )


def _all_failed(evidence: Evidence, ready: list[str]) -> Diagnosis:
    for address in ready:
        problem = endpoint_problem(evidence, address)
        if problem is not None:
            return Diagnosis(f"{problem[0]}; {problem[1]}{_affinity_note(evidence)}", "fail")
    last = evidence.probes[-1]
    return Diagnosis(
        f"All {len(evidence.probes)} recent probes failed at {last.phase or 'connect'}: "
        f"{last.error or last.errno or 'error'}",
        "fail",
    )


def stale_target(evidence: Evidence) -> str | None:
    """An address SYNs still go to though the slice no longer lists it: rules not synced yet."""
    if evidence.slice is None:
        return None
    listed = {a for e in evidence.slice.endpoints for a in e.addresses}
    answered = {address for address, _ in evidence.rst_from} | evidence.arp_answered
    unanswered = set(evidence.arp_asked) - evidence.arp_answered
    return next(iter(sorted((evidence.syn_to | unanswered) - listed - answered)), None)


def _stale_rules(evidence: Evidence, stale: str, failed: int) -> Diagnosis:
    return Diagnosis(
        f"Rules behind the slice: kube-proxy still DNATs to {stale}, which the slice no longer "
        f"lists (the old pod is gone); {failed} of {len(evidence.probes)} recent probes lost "
        "until the rules sync",
        "partial" if failed < len(evidence.probes) else "fail",
    )


def diagnose(evidence: Evidence) -> Diagnosis:
    """The one-sentence diagnosis for what the evidence shows now."""
    if evidence.lab_fault is not None:
        return Diagnosis(f"{evidence.lab_fault}: the lab is at fault, not the Service", "fail")
    ready = _ready_addresses(evidence)
    no_endpoints = evidence.slice is not None and not ready
    if no_endpoints and (rejects(evidence.chain) or any(not p.ok for p in evidence.probes)):
        return Diagnosis(
            f"{evidence.service} has no ready endpoints: {_reject_rule(evidence)} "
            "answers the SYN at once; clients see 'connection refused'",
            "fail",
        )
    if not evidence.probes:
        return Diagnosis("Waiting for the first probe of this scenario…", "waiting")
    ok = [p for p in evidence.probes if p.ok]
    failed = len(evidence.probes) - len(ok)
    if failed == 0:
        return _healthy(evidence, ok)
    stale = stale_target(evidence)
    if stale is not None:
        return _stale_rules(evidence, stale, failed)
    if ok:
        return _mixed(evidence, failed, len(evidence.probes), ready)
    return _all_failed(evidence, ready)


def with_stale_watch(diagnosis: Diagnosis, stale_for: float | None) -> Diagnosis:
    """The diagnosis, prefixed with how long the cluster watch has been broken (None: live).

    While the watch is down the slice and rules shown may be old, so the sentence says so first.
    """
    if stale_for is None:
        return diagnosis
    level = "partial" if diagnosis.level in ("ok", "waiting") else diagnosis.level
    return Diagnosis(
        f"Watch stale for {stale_for:.0f}s (API server unreachable?): the slice and rules shown "
        f"may be old. {diagnosis.text}",
        level,
    )
