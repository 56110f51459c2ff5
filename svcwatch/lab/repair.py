"""Put back what `health.check` found missing, in place, without rebuilding the lab.

The node namespace stays, so a running session's capture socket (bound to no interface) keeps
seeing every frame, and its probes keep their client namespace unless that is what broke. Each
repair is idempotent and reports what it did in a few words ("recreated cni0", "restarted the
echo process of pod socat-…"), which `lab up` prints and a session shows as a Notice. A missing
node namespace is not repairable here: that lab needs `lab down` / `lab up`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from svcwatch import netns
from svcwatch.kubeproxy.mode import IPTABLES
from svcwatch.lab import build, iptables, pods
from svcwatch.lab.health import BRIDGE, CLIENT, ECHO, FORWARD, POD, REBUILD, RULES, Fault
from svcwatch.lab.instances import LabRecord, PodRecord
from svcwatch.lab.topology import LabSpec
from svcwatch.model.errors import SetupError

if TYPE_CHECKING:
    from svcwatch.lab.node import LabNode


def repair(node: LabNode, faults: list[Fault], *, rules: bool = True) -> list[str]:
    """Fix `faults` on `node` (the caller holds the lab lock and saves the record); what was done.

    `rules=False` leaves the iptables rules to the svcwatch that syncs them.
    """
    if any(f.fix == REBUILD for f in faults):
        raise SetupError(f"lab {node.spec.name} cannot be repaired in place: {faults[0].text}")
    spec, record = node.spec, node.record
    fixes = {f.fix for f in faults}
    done: list[str] = []
    node_ipr = pods.iproute_in(spec.node_ns)
    try:
        if CLIENT in fixes:
            done.append(_rewire_client(node_ipr, spec))
        if BRIDGE in fixes or POD in fixes:
            done += _ensure_bridge(node_ipr, spec, record)
        bridge = node_ipr.link_lookup(ifname="cni0")[0]
        for name in dict.fromkeys(f.pod for f in faults if f.fix == POD):
            pod = record.pod(name)
            if pod is not None:
                done.append(_repair_pod(node_ipr, bridge, spec, pod))
    finally:
        node_ipr.close()
    if FORWARD in fixes:
        pods.write_sysctl(spec.node_ns, "net.ipv4.ip_forward", "1")
        done.append("turned ip_forward back on")
    done += _restart_echoes(node, faults)
    if rules and RULES in fixes:
        if node.proxy.mode == IPTABLES:  # nftables mode rewrites its whole table on a full sync
            iptables.install_hooks(spec.node_ns, spec.cluster_cidr)  # empties KUBE-*: resync
        node.forget_written_rules()
        node.reconcile()
        done.append("reinstalled kube-proxy's rules")
    return done


def _rewire_client(node_ipr: Any, spec: LabSpec) -> str:
    """A fresh client <-> node eth0 pair (and the client namespace, if it went)."""
    for index in node_ipr.link_lookup(ifname="eth0"):
        node_ipr.link("del", index=index)
    if not netns.exists(spec.client_ns):
        pods.create_netns(spec.client_ns)
        pods.quiet_ipv6(spec.client_ns)
    build.wire_client(node_ipr, spec)
    return "recreated the client's eth0 link"


def _ensure_bridge(node_ipr: Any, spec: LabSpec, record: LabRecord) -> list[str]:
    """cni0 present, addressed and up, and every pod veth that is still there enslaved to it."""
    done = []
    found = node_ipr.link_lookup(ifname="cni0")
    if not found:
        build.add_bridge(node_ipr, spec)
        done.append("recreated cni0")
    else:
        index = found[0]
        have = {a.get_attr("IFA_ADDRESS") for a in node_ipr.get_addr(family=2, index=index)}
        if spec.bridge_ip not in have:
            node_ipr.addr("add", index=index, address=spec.bridge_ip, prefixlen=spec.pod_prefix)
            done.append(f"gave cni0 back {spec.bridge_ip}")
        node_ipr.link("set", index=index, state="up")
    bridge = node_ipr.link_lookup(ifname="cni0")[0]
    moved = 0
    for pod in record.pods:
        for index in node_ipr.link_lookup(ifname=pod.veth):
            link = node_ipr.get_links(index)[0]
            if link.get_attr("IFLA_MASTER") != bridge:
                node_ipr.link("set", index=index, master=bridge, state="up")
                moved += 1
    if moved:
        done.append(f"put {moved} veth(s) back on cni0")
    return done


def _repair_pod(node_ipr: Any, bridge: int, spec: LabSpec, pod: PodRecord) -> str:
    """The pod's namespace, veth pair, address and route, recreated where missing."""
    if not netns.exists(pod.netns):
        if pod.echo is not None:
            pods.kill_process(pod.echo)  # it holds the unmounted namespace (and the old veth)
            pod.echo = None
        for index in node_ipr.link_lookup(ifname=pod.veth):
            node_ipr.link("del", index=index)
        pods.add_pod(node_ipr, bridge, spec, pod)
        return f"recreated pod {pod.name} ({pod.netns})"
    if not node_ipr.link_lookup(ifname=pod.veth):
        pods.add_veth(node_ipr, bridge, spec, pod)
        return f"recreated {pod.veth} of pod {pod.name}"
    index = node_ipr.link_lookup(ifname=pod.veth)[0]
    node_ipr.link("set", index=index, master=bridge, state="up")
    pods.configure_inside(pod.netns, pod.ip, spec.pod_prefix, spec.bridge_ip)
    return f"reconnected pod {pod.name}"


def _restart_echoes(node: LabNode, faults: list[Fault]) -> list[str]:
    """Start the echo process of every pod whose process died or whose namespace was remade."""
    if node.current_scenario() == "pod-down":
        return []
    wanted = {f.pod for f in faults if f.fix in (ECHO, POD)}
    done = []
    for pod in node.record.pods:
        if pod.name in wanted and pod.port is not None:
            if pod.echo is not None and pod.echo.alive() and _listening(pod):
                continue
            if pod.echo is not None:
                pods.kill_process(pod.echo)
            pod.echo = pods.wait_ready(pods.start_echo(node.spec, pod), pod.name)
            done.append(f"restarted the echo process of pod {pod.name}")
    return done


def _listening(pod: PodRecord) -> bool:
    """Does the pod's echo process listen (in the pod's current namespace)?"""
    return pod.port in pods.listening_ports(pod.netns)
