"""The rollout race's diagnosis: SYNs still DNATed to an address the slice no longer lists."""

from __future__ import annotations

from svcwatch.explain.diagnosis import Evidence, diagnose
from svcwatch.model.endpointslice import EndpointPort, EndpointSlice
from svcwatch.model.events import PacketEvent, ProbeEvent, SliceChanged
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.scenario import endpoint

OLD, NEW = "10.42.0.142", "10.42.0.144"
NEW_POD = EndpointFacts(NEW, 12345, "socat-6d7f8-abcde", True)


def syn(dst: str, iface: str = "cni0") -> PacketEvent:
    return PacketEvent(1.0, "tcp-packet", iface, "out", "10.42.0.1", dst, 40000, 12345, "SYN")


def timeout() -> ProbeEvent:
    return ProbeEvent(
        2.0, "io-error", "192.168.97.2", 5000, "192.168.97.3", 31234, error="i/o timeout"
    )


def ok() -> ProbeEvent:
    return ProbeEvent(3.0, "echo-ok", "192.168.97.2", 5001, "192.168.97.3", 31234, connect_ms=0.3)


def after_rollout(*events: object) -> Evidence:
    ev = Evidence(
        service="default/socat",
        slice=EndpointSlice("default", "socat", (endpoint(NEW),), (EndpointPort(12345),)),
        facts=[NEW_POD],
    )
    ev.observe(SliceChanged(0.5, "default/socat", "MODIFIED"))
    for event in events:
        ev.observe(event)  # type: ignore[arg-type]
    return ev


def test_syns_to_the_old_ip_blame_rules_behind_the_slice() -> None:
    d = diagnose(after_rollout(syn(OLD), syn(OLD, "veth1"), timeout(), timeout()))
    assert d.text == (
        f"Rules behind the slice: kube-proxy still DNATs to {OLD}, which the slice no longer "
        "lists (the old pod is gone); 2 of 2 recent probes lost until the rules sync"
    )
    assert d.level == "fail"


def test_an_unanswered_arp_for_the_old_ip_says_the_same() -> None:
    who_has = PacketEvent(1.0, "arp-request", "cni0", "out", "10.42.0.1", OLD)
    d = diagnose(after_rollout(who_has, timeout(), ok()))
    assert d.text.startswith(f"Rules behind the slice: kube-proxy still DNATs to {OLD}")
    assert d.level == "partial"


def test_after_the_sync_the_new_pod_is_healthy() -> None:
    ev = after_rollout(syn(OLD), timeout())
    ev.observe(SliceChanged(2.5, "default/socat", "MODIFIED"))
    ev.observe(syn(NEW))
    ev.observe(ok())
    assert diagnose(ev).text.startswith(f"Healthy: 1 of 1 recent probes echoed via {NEW}:12345")


def test_syns_to_a_listed_address_are_not_blamed_on_the_sync() -> None:
    d = diagnose(after_rollout(syn(NEW), timeout()))
    assert not d.text.startswith("Rules behind the slice")
