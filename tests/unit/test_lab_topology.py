"""The lab's shape is pure data: names and addresses follow the manifests and the lab's name."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.lab.iptables import tree_differences
from svcwatch.lab.sources import load_manifests
from svcwatch.lab.topology import LabSpec, lab_of_netns, netns_pattern
from svcwatch.model.errors import InputError
from svcwatch.model.scenario import ScenarioContext, apply_scenario


@pytest.fixture(scope="module")
def spec() -> LabSpec:
    return LabSpec.from_manifests(load_manifests(), "demo")


def test_spec_from_the_seed_manifests(spec: LabSpec) -> None:
    assert (spec.node_ip, spec.client_ip, spec.bridge_ip) == (
        "192.168.97.3",
        "192.168.97.2",
        "10.42.0.1",
    )
    assert (spec.echo_ip, spec.echo_port, spec.pod_cidr, spec.cluster_cidr) == (
        "10.42.0.142",
        12345,
        "10.42.0.0/24",
        "10.42.0.0/16",
    )
    assert (spec.node_ns, spec.client_ns, spec.pod_ns(3)) == (
        "svcwatch-demo-node",
        "svcwatch-demo-client",
        "svcwatch-demo-pod3",
    )


def test_pods_look_like_a_k3s_node(spec: LabSpec) -> None:
    plans = spec.pod_plans()
    assert len(plans) == 8 and plans[0].port == 12345 and all(p.port is None for p in plans[1:])
    assert re.fullmatch(
        r"socat-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}", plans[0].name
    )
    assert plans[1].name.startswith("coredns-")
    assert all(re.fullmatch(r"veth[0-9a-f]{8}", p.veth) for p in plans)
    assert len({p.veth for p in plans}) == len({p.ip for p in plans}) == 8
    assert "10.42.0.143" not in {p.ip for p in plans}  # kept free for the wrong-ip break
    assert plans == LabSpec.from_manifests(load_manifests(), "demo").pod_plans()  # deterministic
    assert plans[0].name != LabSpec("other").pod_plans()[0].name


def test_rollout_gets_a_new_name_and_address(spec: LabSpec) -> None:
    used = {p.ip for p in spec.pod_plans()}
    new = spec.echo_pod(generation=1, index=8, ip=spec.next_free_ip(used))
    assert new.name != spec.echo_pod().name and new.name.startswith("socat-")
    assert new.ip not in used | {"10.42.0.143"} and new.netns == "svcwatch-demo-pod8"


def test_scenarios_use_the_free_address(spec: LabSpec) -> None:
    baseline = load_manifests().slices[0]
    ctx = ScenarioContext(baseline, unused_ip=spec.unused_ip({p.ip for p in spec.pod_plans()}))
    assert [e.address for e in apply_scenario("mixed", ctx).endpoints] == [
        "10.42.0.143",
        "10.42.0.142",
    ]


def test_namespace_patterns_keep_labs_apart() -> None:
    assert netns_pattern("a").match("svcwatch-a-pod12")
    assert not netns_pattern("a").match("svcwatch-a-pod1-node")  # lab "a-pod1"'s node
    assert lab_of_netns("svcwatch-a-pod1-node") == "a-pod1" and lab_of_netns("other-ns") is None


@pytest.mark.parametrize("name", ["", "Bad", "-x", "x-", "a_b", "x" * 40])
def test_bad_lab_names(name: str) -> None:
    with pytest.raises(InputError, match="bad lab name"):
        LabSpec(name)


def test_pod_count_and_addresses_are_checked() -> None:
    with pytest.raises(InputError, match="--pods"):
        LabSpec("x", idle_pods=65)
    with pytest.raises(InputError, match="outside the pod CIDR"):
        LabSpec("x", echo_ip="10.99.0.5")


def test_tree_differences_ignore_spelling_but_not_meaning() -> None:
    dnat = Rule(
        "KUBE-SEP-A",
        "-p tcp -j DNAT --to-destination 10.42.0.142:12345",
        target="DNAT",
        dnat_to="10.42.0.142:12345",
    )
    want = ChainTree("default/socat", chains={"KUBE-SEP-A": [dnat]})
    respelled = ChainTree(
        "default/socat",
        chains={"KUBE-SEP-A": [replace(dnat, spec="-p tcp -m tcp -j DNAT", packets=3)]},
    )
    assert tree_differences(want, respelled) == []
    moved = ChainTree(
        "default/socat", chains={"KUBE-SEP-A": [replace(dnat, dnat_to="10.42.0.142:12346")]}
    )
    assert tree_differences(want, moved) == [
        "rule missing: KUBE-SEP-A -j DNAT --to-destination 10.42.0.142:12345",
        "unexpected rule: KUBE-SEP-A -j DNAT --to-destination 10.42.0.142:12346",
    ]
    assert tree_differences(want, ChainTree("default/socat")) == [
        "chain KUBE-SEP-A is missing from the kernel"
    ]
