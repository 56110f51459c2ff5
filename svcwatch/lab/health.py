"""Is the lab's data plane what was built? Every link, address, route, rule and listener, checked.

A user (or a test, or a stray script) can delete `cni0` or a veth, flush the nat table or kill the
echo pod's process behind svcwatch's back; the Service is then unreachable for reasons that have
nothing to do with the EndpointSlice. `check` reads the kernel inside each of the lab's namespaces
and returns what differs from the lab record, each `Fault` naming the repair that fixes it (see
svcwatch.lab.repair). `lab status` prints them and exits non-zero, `lab up` repairs them, and a
running session checks every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svcwatch import netns
from svcwatch.lab import iptables, pods
from svcwatch.lab.instances import PodRecord

if TYPE_CHECKING:
    from svcwatch.lab.node import LabNode
    from svcwatch.model.endpointslice import EndpointSlice

IFF_UP = 0x1
SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFNETMASK = 0x8913, 0x8915, 0x891B
IF_OPER = {"UP": "up", "DOWN": "down", "UNKNOWN": "up", "LOWERLAYERDOWN": "down"}
REBUILD, CLIENT, BRIDGE, POD, FORWARD, RULES, ECHO = (
    "rebuild",
    "client",
    "bridge",
    "pod",
    "forward",
    "rules",
    "echo",
)


@dataclass(frozen=True)
class Fault:
    """One thing wrong with the lab, and which repair fixes it (`pod`: the pod it concerns)."""

    text: str
    fix: str
    pod: str = ""


def interfaces(namespace: str) -> list[dict[str, Any]]:
    """Links in `namespace` with their state, bridge master and IPv4 addresses."""
    if not netns.exists(namespace):
        return []
    ipr = pods.iproute_in(namespace)
    try:
        links = ipr.get_links()
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in links}
        addrs: dict[int, list[str]] = {}
        for addr in ipr.get_addr(family=2):
            addrs.setdefault(addr["index"], []).append(
                f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}"
            )
        return [
            {
                "name": names[link["index"]],
                "state": IF_OPER.get(link.get_attr("IFLA_OPERSTATE") or "", "down"),
                "admin_up": bool(link["flags"] & IFF_UP),  # operstate lags a fresh link
                "master": names.get(link.get_attr("IFLA_MASTER") or -1),
                "addresses": addrs.get(link["index"], []),
            }
            for link in links
        ]
    finally:
        ipr.close()


def eth0_inside(namespace: str) -> dict[str, dict[str, Any]]:
    """`eth0` of a pod or client namespace as `interfaces` would give it ({} when it is gone),
    read with two ioctls instead of a netlink dump: a session checks every pod every 2 s."""
    import fcntl
    import socket
    import struct

    sock = netns.socket_in(namespace, socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        request = struct.pack("16s16x", b"eth0")
        try:
            flags = struct.unpack_from("H", fcntl.ioctl(sock, SIOCGIFFLAGS, request), 16)[0]
        except OSError:
            return {}  # no such device
        try:
            address = socket.inet_ntoa(fcntl.ioctl(sock, SIOCGIFADDR, request)[20:24])
            mask = fcntl.ioctl(sock, SIOCGIFNETMASK, request)[20:24]
        except OSError:
            return {"eth0": {"admin_up": bool(flags & IFF_UP), "addresses": []}}
    prefix = bin(int.from_bytes(mask, "big")).count("1")
    return {"eth0": {"admin_up": bool(flags & IFF_UP), "addresses": [f"{address}/{prefix}"]}}


def default_gateway(namespace: str) -> str | None:
    """The IPv4 default route's gateway inside `namespace` (None: no default route), from the
    namespace's own /proc/net/route."""
    import socket

    with netns.entered(namespace):
        lines = Path("/proc/thread-self/net/route").read_text().splitlines()[1:]
    for line in lines:
        fields = line.split()
        if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
            return socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    return None


def check(
    node: LabNode, rules_for: EndpointSlice | None = None, *, rules: bool = True
) -> list[Fault]:
    """Everything wrong with the lab's data plane (empty: it is as built).

    The rules are compared with the rendering of `rules_for` (default: the stored slice); with
    `rules=False` they are not checked (a session that does not sync the rules leaves that to the
    one that does, whose sync may lag the slice on purpose).
    """
    spec, record = node.spec, node.record
    if not netns.exists(spec.node_ns):
        return [Fault(f"node namespace {spec.node_ns} is gone", REBUILD)]
    if record.status != "ready":
        return [Fault("the build did not finish", REBUILD)]
    links = {link["name"]: link for link in interfaces(spec.node_ns)}
    faults = _link_faults(links, "eth0", f"{spec.node_ip}/{spec.prefix}", "node", CLIENT)
    faults += _client_faults(node)
    faults += _link_faults(links, "cni0", f"{spec.bridge_ip}/{spec.pod_prefix}", "node", BRIDGE)
    for pod in record.pods:
        faults += _pod_faults(node, pod, links)
    if pods.read_sysctl(spec.node_ns, "net.ipv4.ip_forward") != "1":
        faults.append(Fault("ip_forward is off in the node", FORWARD))
    if rules:
        faults += _rule_faults(node, rules_for)
    return faults + _echo_faults(node)


def _link_faults(
    links: dict[str, dict[str, Any]], name: str, address: str, where: str, fix: str, pod: str = ""
) -> list[Fault]:
    link = links.get(name)
    if link is None:
        return [Fault(f"{name} is missing in the {where}", fix, pod)]
    out = []
    if not link["admin_up"]:
        out.append(Fault(f"{name} is down in the {where}", fix, pod))
    if address not in link["addresses"]:
        out.append(Fault(f"{name} in the {where} has lost its address {address}", fix, pod))
    return out


def _client_faults(node: LabNode) -> list[Fault]:
    spec = node.spec
    if not netns.exists(spec.client_ns):
        return [Fault(f"client namespace {spec.client_ns} is gone", CLIENT)]
    links = eth0_inside(spec.client_ns)
    faults = _link_faults(links, "eth0", f"{spec.client_ip}/{spec.prefix}", "client", CLIENT)
    if not faults and default_gateway(spec.client_ns) != spec.node_ip:
        faults.append(Fault(f"the client has no default route via {spec.node_ip}", CLIENT))
    return faults


def _pod_faults(node: LabNode, pod: PodRecord, links: dict[str, dict[str, Any]]) -> list[Fault]:
    spec = node.spec
    if not netns.exists(pod.netns):
        return [Fault(f"namespace {pod.netns} of pod {pod.name} is gone", POD, pod.name)]
    veth = links.get(pod.veth)
    if veth is None:
        return [Fault(f"{pod.veth} of pod {pod.name} is missing in the node", POD, pod.name)]
    faults = []
    if veth["master"] != "cni0":
        faults.append(Fault(f"{pod.veth} of pod {pod.name} is not on cni0", POD, pod.name))
    inside = eth0_inside(pod.netns)
    where = f"pod {pod.name}"
    faults += _link_faults(inside, "eth0", f"{pod.ip}/{spec.pod_prefix}", where, POD, pod.name)
    if not faults and not veth["admin_up"]:
        faults.append(Fault(f"{pod.veth} of pod {pod.name} is down", POD, pod.name))
    if not faults and default_gateway(pod.netns) != spec.bridge_ip:
        text = f"pod {pod.name} has no default route via {spec.bridge_ip}"
        faults.append(Fault(text, POD, pod.name))
    return faults


def _rule_faults(node: LabNode, rules_for: EndpointSlice | None) -> list[Fault]:
    """kube-proxy's hook rules (iptables mode) and the Service's rules, against the rendering."""
    from svcwatch.kubeproxy.mode import IPTABLES

    spec = node.spec
    faults = []
    if node.proxy.mode == IPTABLES:
        missing = iptables.missing_hooks(spec.node_ns, spec.cluster_cidr)
        faults = [Fault(f"kube-proxy hook rule missing: {rule}", RULES) for rule in missing]
    desired = node.proxy.desired_tree(node.service(), rules_for or node.current_slice())
    differences = iptables.tree_differences(desired, node.read_chain())
    return faults + [Fault(f"rules: {d}", RULES) for d in differences]


def _echo_faults(node: LabNode) -> list[Fault]:
    if node.current_scenario() == "pod-down":
        return []  # the scenario stopped the process on purpose
    echo = node.echo_record()
    if not netns.exists(echo.netns) or echo.port in pods.listening_ports(echo.netns):
        return []
    return [Fault(f"nothing listens on {echo.ip}:{echo.port} in pod {echo.name}", ECHO, echo.name)]
