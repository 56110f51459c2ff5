"""Build a lab node in network namespaces with pyroute2, and tear every piece of it down again.

The build follows the blog post's k3d picture: a client namespace (the laptop, 192.168.97.2) and a
node namespace joined by a veth pair named `eth0` at both ends; in the node a `cni0` bridge carrying
the pod CIDR's first address, ip_forward on (the node namespace's own sysctl), and one veth per pod.
Every link is created from inside a lab namespace with its peer placed directly in another lab
namespace, so the host namespace never sees a lab interface. Teardown does not trust the state
alone: it also finds the lab's namespaces by name and its processes by namespace and command line,
so `lab down` cleans up after a builder that was killed half-way.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from svcwatch import netns
from svcwatch.lab import iptables, pods
from svcwatch.lab.instances import LabRecord, PodRecord, ProcessRef, is_orphan, unindex_lab
from svcwatch.lab.topology import LabSpec, PodPlan, lab_of_netns, netns_pattern

Progress = Callable[[str], None]
ECHO_MARK = b"svcwatch.lab.echo"
SVCWATCH_MARK = b"svcwatch"  # in every svcwatch command line: the script, `-m svcwatch`, tests


def _no_progress(_: str) -> None:
    return None


def build(spec: LabSpec, record: LabRecord, progress: Progress | None = None) -> LabRecord:
    """Create the namespaces, links, addresses, routes, pods, echo process and hook rules."""
    say = progress or _no_progress
    for name in (spec.node_ns, spec.client_ns):
        pods.create_netns(name)
        pods.quiet_ipv6(name)
    pods.write_sysctl(spec.node_ns, "net.ipv4.ip_forward", "1")
    say(f"namespaces {spec.node_ns}, {spec.client_ns}")
    node_ipr = pods.iproute_in(spec.node_ns)
    try:
        wire_client(node_ipr, spec)
        say(
            f"eth0 {spec.node_ip}/{spec.prefix} (node) <-> "
            f"eth0 {spec.client_ip}/{spec.prefix} (client)"
        )
        bridge = add_bridge(node_ipr, spec)
        say(f"bridge cni0 {spec.bridge_ip}/{spec.pod_prefix}")
        starting = _add_pods(node_ipr, bridge, spec, record, say)
    finally:
        node_ipr.close()
    for pod, proc in starting:
        pod.echo = pods.wait_ready(proc, pod.name)
        say(f"echo listener up in pod {pod.name} on {pod.ip}:{pod.port}")
    record.backend = iptables.backend(spec.node_ns)
    if record.proxy_mode == "iptables":
        iptables.install_hooks(spec.node_ns, spec.cluster_cidr)
        say(f"kube-proxy hook rules installed ({record.backend})")
    else:
        say("kube-proxy in nftables mode: table ip kube-proxy is written by the first sync")
    return record


def wire_client(node_ipr: Any, spec: LabSpec) -> None:
    node_ipr.link(
        "add", ifname="eth0", kind="veth", peer={"ifname": "eth0", "net_ns_fd": spec.client_ns}
    )
    lo, eth0 = node_ipr.link_lookup(ifname="lo")[0], node_ipr.link_lookup(ifname="eth0")[0]
    node_ipr.link("set", index=lo, state="up")
    node_ipr.addr("add", index=eth0, address=spec.node_ip, prefixlen=spec.prefix)
    node_ipr.link("set", index=eth0, state="up")
    # The laptop reaches the cluster through the node (k3d's port forward, flattened).
    pods.configure_inside(spec.client_ns, spec.client_ip, spec.prefix, spec.node_ip)


def add_bridge(node_ipr: Any, spec: LabSpec) -> int:
    node_ipr.link("add", ifname="cni0", kind="bridge")
    index: int = node_ipr.link_lookup(ifname="cni0")[0]
    node_ipr.addr("add", index=index, address=spec.bridge_ip, prefixlen=spec.pod_prefix)
    node_ipr.link("set", index=index, state="up")
    return index


def _add_pods(
    node_ipr: Any, bridge: int, spec: LabSpec, record: LabRecord, say: Progress
) -> list[tuple[PodRecord, subprocess.Popen[bytes]]]:
    """Add every pod; echo processes start at once and are awaited later (Python takes ~50 ms)."""
    starting = []
    for plan in spec.pod_plans():
        pods.add_pod(node_ipr, bridge, spec, plan)
        pod = record_of(plan)
        record.pods.append(pod)
        if plan.port is not None:
            record.echo_pod = plan.name
            starting.append((pod, pods.start_echo(spec, plan)))
        say(f"pod {plan.name} {plan.ip} via {plan.veth}")
    return starting


def record_of(plan: PodPlan, generation: int = 0) -> PodRecord:
    return PodRecord(plan.name, plan.ip, plan.netns, plan.veth, plan.port, None, generation)


# --- teardown -----------------------------------------------------------------------------------


def lab_namespaces(name: str) -> list[str]:
    pattern = netns_pattern(name)
    return [n for n in netns.list_names() if pattern.match(n)]


def orphan_labs(state_root: Path) -> list[str]:
    """Labs whose namespaces exist though their state directory is gone (deleted by hand)."""
    found = {lab for n in netns.list_names() if (lab := lab_of_netns(n)) is not None}
    return sorted(name for name in found if is_orphan(name, state_root))


def teardown(name: str, record: LabRecord | None) -> bool:
    """Kill the lab's processes and remove its namespaces; True if anything was there."""
    found = False
    if record is not None:
        for pod in record.pods:
            if pod.echo is not None:
                found |= pods.kill_process(pod.echo)
    namespaces = lab_namespaces(name)
    found |= _kill_lab_processes(name, namespaces) > 0
    for ns in namespaces:
        found |= pods.remove_netns(ns)
    unindex_lab(name)
    return found


def _kill_lab_processes(name: str, namespaces: list[str]) -> int:
    """SIGKILL the lab's echo servers, and what `lab exec` left running in its namespaces.

    Never another svcwatch: a `lab status`, `lab up` or dashboard whose main thread is inside a
    lab namespace for a moment (setns reading links or rules) shows that namespace in
    /proc/PID/ns/net, and killing it there was `lab down` SIGKILLing a concurrent command.
    """
    inodes = set()
    for ns in namespaces:
        try:
            st = os.stat(netns.netns_path(ns))
            inodes.add((st.st_dev, st.st_ino))
        except FileNotFoundError:
            continue
    tag = b"\0--lab\0" + name.encode() + b"\0"
    victims = [pid for pid in _pids() if _belongs(pid, inodes, tag)]
    for pid in victims:
        ref = ProcessRef.of(pid)
        if ref is not None:
            pods.kill_process(ref)
    return len(victims)


def _pids() -> list[int]:
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]


def _belongs(pid: int, inodes: set[tuple[int, int]], tag: bytes) -> bool:
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() + b"\0"
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    inside = (st.st_dev, st.st_ino) in inodes
    if ECHO_MARK in cmdline:
        return inside or tag in cmdline
    return inside and SVCWATCH_MARK not in cmdline
