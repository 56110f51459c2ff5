"""The diagnosis sentence for each failure mode, from evidence alone (pure, no Textual)."""

from __future__ import annotations

from svcwatch.explain.diagnosis import Evidence, diagnose
from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.model.endpointslice import EndpointPort, EndpointSlice
from svcwatch.model.events import Notice, PacketEvent, ProbeEvent, SliceChanged
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.scenario import endpoint

POD = "socat-5c97445bc5-vw5dz"


def slice_of(*addresses: str, port: int = 12345, ready: bool = True) -> EndpointSlice:
    return EndpointSlice(
        "default",
        "socat",
        tuple(endpoint(a, ready=ready) for a in addresses),
        (EndpointPort(port),),
    )


def probe(ok: bool, error: str = "", errno: str | None = None, ts: float = 1.0) -> ProbeEvent:
    if ok:
        return ProbeEvent(
            ts, "echo-ok", "127.0.0.1", 5000, "127.0.0.1", 31234, connect_ms=0.4, echo_ms=3.0
        )
    return ProbeEvent(
        ts, "io-error", "127.0.0.1", 5000, "127.0.0.1", 31234, error=error, errno=errno
    )


def arp(target: str, iface: str = "cni0") -> PacketEvent:
    return PacketEvent(1.0, "arp-request", iface, "out", "10.42.0.1", target)


def evidence(
    slice_: EndpointSlice, *events: object, facts: list[EndpointFacts] | None = None
) -> Evidence:
    ev = Evidence(service="default/socat", slice=slice_, facts=facts or [])
    for event in events:
        ev.observe(event)  # type: ignore[arg-type]
    return ev


REAL = EndpointFacts("10.42.0.142", 12345, POD, True)


def test_waiting_before_any_probe() -> None:
    assert diagnose(evidence(slice_of("10.42.0.142"))).level == "waiting"


def test_healthy_names_the_endpoint_and_pod() -> None:
    d = diagnose(evidence(slice_of("10.42.0.142"), probe(True), probe(True), facts=[REAL]))
    assert d.text == (
        f"Healthy: 2 of 2 recent probes echoed via 10.42.0.142:12345 (pod {POD}); "
        "median connect 0 ms"
    )
    assert d.level == "ok"


def test_echoes_name_only_endpoints_a_pod_is_known_to_serve() -> None:
    """Just after a switch to the mixed scenario the facts cover only the real pod: the new,
    unverified address is not claimed as a path the echoes took."""
    ev = evidence(slice_of("10.42.0.143", "10.42.0.142"), probe(True), probe(True), facts=[REAL])
    assert diagnose(ev).text == (
        f"Healthy: 2 of 2 recent probes echoed via 10.42.0.142:12345 (pod {POD}); "
        "median connect 0 ms"
    )


def test_echoes_before_the_bad_endpoints_timeouts_are_not_healthy() -> None:
    """Good + bad IP: the good endpoint's echoes come back before the bad one's probes time out;
    the line must not call the Service healthy, nor say probes echoed via the IP no pod has."""
    no_pod = EndpointFacts("10.42.0.143", 12345, None, None)
    d = diagnose(
        evidence(slice_of("10.42.0.142", "10.42.0.143"), probe(True), facts=[REAL, no_pod])
    )
    assert d.text == (
        f"1 of 1 recent probes echoed via 10.42.0.142:12345 (pod {POD}) so far, but 1 of 2 "
        "endpoints is bad: ARP who-has 10.42.0.143 would go unanswered on cni0: no pod has "
        "that IP; clients time out"
    )
    assert d.level == "partial"


def test_wrong_port_rst_is_connection_refused() -> None:
    rst = PacketEvent(
        1.0, "tcp-packet", "veth0", "in", "10.42.0.142", "10.42.0.1", 12346, 7000, "ACK,RST"
    )
    facts = [EndpointFacts("10.42.0.142", 12346, POD, False)]
    d = diagnose(
        evidence(
            slice_of("10.42.0.142", port=12346),
            rst,
            probe(False, "connection refused", "ECONNREFUSED"),
            facts=facts,
        )
    )
    assert d.text == (
        f"SYN DNATed to 10.42.0.142:12346 answered with RST: nothing listens on port 12346 "
        f"in pod {POD}; clients see 'connection refused'"
    )


def test_wrong_ip_unanswered_arp_is_a_timeout() -> None:
    d = diagnose(
        evidence(
            slice_of("10.42.0.143"),
            arp("10.42.0.143", "veth1"),
            arp("10.42.0.143"),
            probe(False, "i/o timeout"),
        )
    )
    assert (
        d.text == "ARP who-has 10.42.0.143 unanswered on cni0: no pod has that IP; clients time out"
    )


def test_wrong_ip_after_arp_gives_up_is_no_route_to_host() -> None:
    icmp = PacketEvent(
        2.0, "icmp", "eth0", "out", "192.168.97.3", "192.168.97.2", detail="host unreachable"
    )
    d = diagnose(
        evidence(
            slice_of("10.42.0.143"),
            arp("10.42.0.143"),
            probe(False, "i/o timeout"),
            icmp,
            probe(False, "no route to host", "EHOSTUNREACH"),
        )
    )
    assert d.text.endswith("clients time out, then get 'no route to host' once ARP gives up")


def test_answered_arp_is_not_blamed() -> None:
    reply = PacketEvent(1.0, "arp-reply", "cni0", "in", "10.42.0.142", "10.42.0.1", detail="aa:bb")
    d = diagnose(
        evidence(slice_of("10.42.0.142"), arp("10.42.0.142"), reply, probe(False, "i/o timeout"))
    )
    assert d.text.startswith("All 1 recent probes failed at connect: i/o timeout")


def test_mix_says_which_share_fails() -> None:
    d = diagnose(
        evidence(
            slice_of("10.42.0.143", "10.42.0.142"),
            arp("10.42.0.143"),
            probe(False, "i/o timeout"),
            probe(True),
            facts=[REAL],
        )
    )
    assert d.text.startswith(
        "1 of 2 endpoints is bad: ~50% of connections fail (1 of 2 recent probes); "
        "ARP who-has 10.42.0.143 unanswered on cni0"
    )
    assert d.level == "partial"


def test_no_endpoints_blames_the_reject_rule() -> None:
    reject = Rule(
        "KUBE-SERVICES", "-j REJECT", target="REJECT", comment="default/socat has no endpoints"
    )
    ev = evidence(slice_of())
    ev.chain = ChainTree("default/socat", filter_rules=[reject])
    assert diagnose(ev).text.startswith(
        "default/socat has no ready endpoints: kube-proxy's REJECT rule"
    )


def test_no_endpoints_in_nftables_mode_blames_the_no_endpoint_element() -> None:
    """The same diagnosis, in nftables mode's words: the reject is a verdict-map element."""
    element = Rule(
        "no-endpoint-services",
        '10.43.161.224 . tcp . 12345 comment "default/socat" : goto reject-chain',
        target="reject-chain",
        comment="default/socat",
    )
    ev = evidence(slice_of())
    ev.chain = ChainTree("default/socat", filter_rules=[element], proxy_backend="nftables")
    assert diagnose(ev).text == (
        "default/socat has no ready endpoints: kube-proxy's no-endpoint-services element "
        "(goto reject-chain) answers the SYN at once; clients see 'connection refused'"
    )


def test_not_ready_endpoints_count_as_none() -> None:
    d = diagnose(
        evidence(
            slice_of("10.42.0.142", ready=False), probe(False, "connection refused", "ECONNREFUSED")
        )
    )
    assert "has no ready endpoints" in d.text and d.text.endswith(
        "clients see 'connection refused'"
    )


def test_a_slice_change_starts_a_fresh_window() -> None:
    ev = evidence(slice_of("10.42.0.143"), arp("10.42.0.143"), probe(False, "i/o timeout"))
    ev.observe(SliceChanged(3.0, "default/socat", "MODIFIED"))
    ev.observe(probe(True, ts=4.0))
    assert diagnose(ev).level == "ok"


def sticky_chain(seconds: int = 600) -> ChainTree:
    """The KUBE-SVC- chain of a two-endpoint Service with ClientIP affinity."""
    check = Rule(
        "KUBE-SVC-6GHM6NOKDRAB634Q",
        f"-m recent --rcheck --seconds {seconds} --reap --name KUBE-SEP-STAYFALK6DPGANUO "
        "-j KUBE-SEP-STAYFALK6DPGANUO",
        target="KUBE-SEP-STAYFALK6DPGANUO",
    )
    return ChainTree("default/socat", chains={"KUBE-SVC-6GHM6NOKDRAB634Q": [check]})


def test_affinity_warns_that_one_client_tests_one_endpoint() -> None:
    """With ClientIP affinity the probes all land on one endpoint: all-ok is not the whole truth."""
    ev = evidence(slice_of("10.42.0.142", "10.42.0.143"), probe(True), probe(True), facts=[REAL])
    ev.chain = sticky_chain()
    assert diagnose(ev).text.endswith(
        "; ClientIP affinity pins this client to one endpoint for 600s, so the others go untested"
    )
    ev.chain = ChainTree("default/socat")  # no affinity: no such note
    assert "affinity" not in diagnose(ev).text
    single = evidence(slice_of("10.42.0.142"), probe(True), facts=[REAL])
    single.chain = sticky_chain()
    assert "affinity" not in diagnose(single).text  # one endpoint: nothing goes untested


def test_a_broken_lab_is_blamed_not_the_pod_and_a_repair_starts_a_fresh_window() -> None:
    refused = probe(False, "connect: connection refused", "ECONNREFUSED")
    broken = Notice(2.0, "drift", "lab demo is broken: node namespace svcwatch-demo-node is gone")
    seen = evidence(slice_of("10.42.0.142"), refused, broken, refused)
    said = diagnose(seen)
    assert said.level == "fail" and said.text.startswith("lab demo is broken: node namespace")
    assert "the lab is at fault, not the Service" in said.text and POD not in said.text
    seen.observe(Notice(3.0, "repaired", "lab demo was broken (cni0 is missing); recreated cni0"))
    assert seen.lab_fault is None and not seen.probes  # the outage's probes are not the pod's
    assert diagnose(seen).text == "Waiting for the first probe of this scenario…"


def syn(iface: str, src: str, sport: int, dst: str, dport: int) -> PacketEvent:
    return PacketEvent(1.0, "tcp-packet", iface, "in", src, dst, sport, dport, flags="SYN")


def test_nftables_counts_connections_held_on_an_unanswered_arp_for_that_endpoint() -> None:
    """No counters in nftables mode: a SYN DNATed to .143 waits on ARP and never reaches cni0, so
    the connections that arrived but never reached cni0 are .143's (a retransmit counts once)."""
    arriving = [syn("eth0", "192.168.97.2", port, "192.168.97.3", 31234) for port in (1, 2, 3, 3)]
    delivered = syn("cni0", "10.42.0.1", 40001, "10.42.0.142", 12345)
    ev = evidence(slice_of("10.42.0.142", "10.42.0.143"), *arriving, delivered)
    assert ev.landed_from_capture() == {"10.42.0.142:12345": 1}  # no ARP yet: nobody to blame
    ev.observe(arp("10.42.0.143"))
    assert ev.landed_from_capture() == {"10.42.0.142:12345": 1, "10.42.0.143:12345": 2}


def test_nftables_happy_path_counts_no_phantom_connections() -> None:
    arriving = [syn("eth0", "192.168.97.2", port, "192.168.97.3", 31234) for port in (1, 2)]
    delivered = [syn("cni0", "10.42.0.1", 40000 + p, "10.42.0.142", 12345) for p in (1, 2)]
    into_pod = syn("veth1a2b", "10.42.0.1", 40001, "10.42.0.142", 12345)
    ev = evidence(slice_of("10.42.0.142"), *arriving, *delivered, into_pod, arp("10.42.0.99"))
    assert ev.landed_from_capture() == {"10.42.0.142:12345": 2}
