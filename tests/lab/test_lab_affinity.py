"""A LoadBalancer Service with an externalIP and ClientIP affinity, in the lab node's real kernel.

The stored Service is replaced by one using the features a NodePort lacks, synced with
`iptables-restore` into the lab's node namespace like any scenario, and then driven from the
client namespace: the kernel accepts the rules, the externalIP entry point carries traffic, and
affinity pins every new connection of one client to one endpoint (with "mixed", a coin toss each
time without it). The chain pane's shares still read 50 % / 50 %: they are about new clients.
"""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import yaml

from svcwatch import netns
from svcwatch.kubeproxy.restore import share_of
from svcwatch.lab import LabNode

pytestmark = pytest.mark.lab
CONNECTIONS = 12


def connect_once(lab: LabNode, port: int, wait: float) -> None:
    """One connection from the client to the node's IP, given up on after `wait` seconds."""
    with netns.socket_in(lab.spec.client_ns, socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(wait)
        try:
            sock.connect((lab.spec.node_ip, port))
        except OSError:
            pass  # the dead endpoint of "mixed" never answers; the DNAT counter still counts it


def test_affinity_pins_a_client_to_one_endpoint_through_an_external_ip(lab: LabNode) -> None:
    sticky = replace(
        lab.service(),
        type="LoadBalancer",
        external_ips=(lab.spec.node_ip,),  # the node's own address, as externalIPs usually are
        load_balancer_ips=("192.168.97.240",),
        source_ranges=("192.168.97.0/24",),
        session_affinity="ClientIP",
        affinity_seconds=300,
    )
    lab.store.write_service(yaml.safe_dump(sticky.to_manifest(), sort_keys=False))
    assert lab.service() == sticky  # the lab reads it back through parse_service unchanged
    lab.set_scenario("mixed")  # two endpoints: the echo pod and an address nobody answers on
    lab.reconcile()  # iptables-restore into the node namespace: a real kernel takes the rules
    port = sticky.ports[0].port
    for _ in range(CONNECTIONS):
        connect_once(lab, port, wait=0.3)  # to externalIP:port, not the nodePort
    tree = lab.read_chain()
    assert any("external IP" in (r.comment or "") and r.packets for r in tree.entry)
    landed = {
        rule.dnat_to: rule.packets
        for chain, rules in tree.chains.items()
        if chain.startswith("KUBE-SEP-")
        for rule in rules
        if rule.dnat_to
    }
    assert sorted(landed.values()) == [0, CONNECTIONS], landed  # every one to the same endpoint
    checks = [r for rules in tree.chains.values() for r in rules if r.recent == "rcheck"]
    assert sum(r.packets for r in checks) == CONNECTIONS - 1  # all but the first were recognised
    assert sorted(share_of(tree).values()) == [0.5, 0.5]  # a new client still gets a coin toss
