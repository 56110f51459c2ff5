"""From the client namespace to the node's NodePort: each scenario fails as the blog post shows."""

from __future__ import annotations

import errno
import select
import socket

import pytest

from svcwatch import netns
from svcwatch.kubeproxy.render import ProxyConfig, render
from svcwatch.kubeproxy.restore import saved_form, service_tree
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.lab import LabNode

pytestmark = pytest.mark.lab
NODE_PORT = 31234


def client_socket(lab: LabNode) -> socket.socket:
    return netns.socket_in(lab.spec.client_ns, socket.AF_INET, socket.SOCK_STREAM)


def connect_outcome(lab: LabNode, timeout: float) -> str:
    """'ok' (echo came back), 'refused', 'timeout' or another errno name."""
    with client_socket(lab) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((lab.spec.node_ip, NODE_PORT))
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            return (
                "refused"
                if exc.errno == errno.ECONNREFUSED
                else errno.errorcode.get(exc.errno or 0, "?")
            )
        sock.sendall(b"ping\n")
        return "ok" if sock.recv(16) == b"ping\n" else "bad-echo"


def parallel_connects(lab: LabNode, count: int, wait: float) -> dict[str, int]:
    """Start `count` connections at once; after `wait` seconds, how many completed or not."""
    socks = [client_socket(lab) for _ in range(count)]
    try:
        for sock in socks:
            sock.setblocking(False)
            sock.connect_ex((lab.spec.node_ip, NODE_PORT))
        _, writable, _ = select.select([], socks, [], wait)
        done = set(writable)
        outcome = {"connected": 0, "failed": 0}
        for sock in socks:
            ok = sock in done and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            outcome["connected" if ok else "failed"] += 1
        return outcome
    finally:
        for sock in socks:
            sock.close()


def switch(lab: LabNode, scenario: str) -> None:
    lab.set_scenario(scenario)
    lab.reconcile()


def test_happy_echoes(lab: LabNode) -> None:
    assert connect_outcome(lab, 3) == "ok"


def test_wrong_port_is_refused(lab: LabNode) -> None:
    switch(lab, "wrong-port")
    assert connect_outcome(lab, 1.0) == "refused"


def test_wrong_ip_times_out(lab: LabNode) -> None:
    switch(lab, "wrong-ip")
    assert connect_outcome(lab, 1.0) == "timeout"
    switch(lab, "happy")
    assert connect_outcome(lab, 3) == "ok"


def test_mixed_sends_connections_both_ways(lab: LabNode) -> None:
    switch(lab, "mixed")
    outcome = parallel_connects(lab, 48, wait=1.0)
    assert outcome["connected"] > 0 and outcome["failed"] > 0
    tree = lab.read_chain()
    seps = {
        name: sum(r.packets for r in rules)
        for name, rules in tree.chains.items()
        if name.startswith("KUBE-SEP-")
    }
    assert len(seps) == 2 and all(packets > 0 for packets in seps.values()), seps


def test_rules_round_trip_through_the_kernel(lab: LabNode) -> None:
    for scenario in ("happy", "mixed", "wrong-port", "empty"):
        switch(lab, scenario)
        service = lab.service()
        rendered = render(
            service, [lab.current_slice()], ProxyConfig(cluster_cidr=lab.spec.cluster_cidr)
        )
        want = service_tree(saved_form(rendered), service)
        have = lab.read_chain()
        assert tree_lines(have) == tree_lines(want), scenario
        assert have.chain_names() == want.chain_names()


def tree_lines(tree: ChainTree) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """A chain tree as text; entry and filter rules sorted (iptables-save sorts chains)."""
    return (
        sorted(r.line() for r in tree.entry),
        {chain: [r.line() for r in rules] for chain, rules in tree.chains.items()},
        sorted(r.line() for r in tree.filter_rules),
    )


def test_no_endpoints_is_rejected(lab: LabNode) -> None:
    switch(lab, "not-ready")
    assert connect_outcome(lab, 1.0) == "refused"
    assert any(r.target == "REJECT" for r in lab.read_chain().filter_rules)


def test_pod_down_resets_and_comes_back(lab: LabNode) -> None:
    switch(lab, "pod-down")
    assert connect_outcome(lab, 1.0) == "refused"
    facts = lab.endpoint_facts()
    assert [(f.address, f.pod, f.listening) for f in facts] == [
        ("10.42.0.142", lab.echo_pod.name, False)
    ]
    assert lab.drift() == []  # a stopped listener is what pod-down asks for
    switch(lab, "happy")
    assert connect_outcome(lab, 3) == "ok" and lab.endpoint_facts()[0].listening is True


def test_rollout_race_moves_the_pod_before_the_rules(lab: LabNode) -> None:
    old = lab.echo_pod
    lab.set_scenario("rollout-race")  # new pod, old one gone, slice updated; rules not yet
    new = lab.echo_pod
    assert new.name != old.name and new.ip != old.ip and new.listening
    assert not netns.exists(old.netns)
    assert lab.current_slice().endpoints[0].address == new.ip
    assert connect_outcome(lab, 1.0) == "timeout"  # the rule still DNATs to the old IP
    assert lab.drift()
    lab.reconcile()
    assert connect_outcome(lab, 3) == "ok" and lab.drift() == []
