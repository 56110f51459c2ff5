"""What `lab status` shows: the lab as the kernel has it, next to what the store says it should be.

Interfaces and addresses are read over netlink inside each namespace, the chain with
`iptables-save -c` inside the node, and drift is the difference between the rendered desired rules
and the kernel's. The same dictionary is printed as text or as JSON.
"""

from __future__ import annotations

from typing import Any

from svcwatch import netns
from svcwatch.lab import pods
from svcwatch.lab.node import LabNode
from svcwatch.model.errors import InputError, SetupError

IF_OPER = {"UP": "up", "DOWN": "down", "UNKNOWN": "up", "LOWERLAYERDOWN": "down"}


def interfaces(namespace: str) -> list[dict[str, Any]]:
    """Links in `namespace` with their state, bridge master and IPv4 addresses."""
    if not netns.exists(namespace):
        return []
    ipr = pods.iproute_in(namespace)
    try:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        addrs: dict[int, list[str]] = {}
        for addr in ipr.get_addr(family=2):
            addrs.setdefault(addr["index"], []).append(
                f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}"
            )
        return [
            {
                "name": names[link["index"]],
                "state": IF_OPER.get(link.get_attr("IFLA_OPERSTATE") or "", "down"),
                "master": names.get(link.get_attr("IFLA_MASTER") or -1),
                "addresses": addrs.get(link["index"], []),
            }
            for link in ipr.get_links()
        ]
    finally:
        ipr.close()


def describe(node: LabNode) -> dict[str, Any]:
    """Everything `lab status` prints, as plain data."""
    spec = node.spec
    namespaces = [spec.node_ns, spec.client_ns, *(p.netns for p in node.record.pods)]
    data: dict[str, Any] = {
        "name": spec.name,
        "scenario": node.current_scenario(),
        "namespaces": {
            ns: {"exists": netns.exists(ns), "interfaces": interfaces(ns)} for ns in namespaces
        },
        "pods": [vars(p) | {"echo": p.name == node.record.echo_pod} for p in _pods(node)],
        "problems": node.problems(),
        "proxy_mode": node.proxy.mode,
    }
    try:
        tree = node.read_chain()
        data["backend"] = tree.proxy_backend
        nft = node.proxy.mode == "nftables"  # a rule there is `chain: statement`, not `-A …`
        data["chain"] = [
            {"line": f"{r.chain}: {r.spec}" if nft else r.line(), "packets": r.packets,
             "bytes": r.bytes}
            for r in tree.all_rules()
        ]  # fmt: skip
        data["drift"] = node.drift()
    except (InputError, SetupError) as exc:
        data["chain"], data["drift"] = [], [str(exc)]
    return data


def _pods(node: LabNode) -> list[Any]:
    try:
        return node.pods
    except (InputError, OSError):
        return []


def render_text(data: dict[str, Any]) -> str:
    lines = [
        f"lab {data['name']}  scenario: {data['scenario'] or '-'}  "
        f"kube-proxy mode: {data.get('proxy_mode', 'iptables')}  "
        f"rules: {data.get('backend') or '-'}"
    ]
    for ns, info in data["namespaces"].items():
        lines.append(f"  {ns}{'' if info['exists'] else '  (MISSING)'}")
        for link in info["interfaces"]:
            master = f" master {link['master']}" if link["master"] else ""
            lines.append(
                f"    {link['name']:<14} {link['state']:<5} {' '.join(link['addresses'])}{master}"
            )
    lines.append("pods:")
    for pod in data["pods"]:
        port = (
            f":{pod['port']} {'listening' if pod['listening'] else 'NOT listening'}"
            if pod["port"]
            else ""
        )
        lines.append(f"  {pod['name']:<44} {pod['ip']}{port}  {pod['veth']}  {pod['netns']}")
    if data.get("proxy_mode") == "nftables":
        lines.append("chain (table ip kube-proxy from the kernel; kube-proxy adds no counters):")
        lines.extend(f"  {r['line']}" for r in data["chain"])
    else:
        lines.append("chain (from the kernel, [packets:bytes]):")
        lines.extend(f"  [{r['packets']}:{r['bytes']}] {r['line']}" for r in data["chain"])
    drift = data["drift"]
    lines.append("drift: none" if not drift else "drift:")
    lines.extend(f"  {d}" for d in drift)
    return "\n".join(lines)


def resolve_target(node: LabNode, target: str) -> str:
    """`node`, `client` or `pod/NAME` (a pod name or a unique prefix of one) -> a namespace name."""
    if target == "node":
        return node.spec.node_ns
    if target == "client":
        return node.spec.client_ns
    if target.startswith("pod/"):
        wanted = target[4:]
        matches = [p for p in node.record.pods if p.name == wanted] or [
            p for p in node.record.pods if p.name.startswith(wanted)
        ]
        if len(matches) == 1:
            return matches[0].netns
        known = ", ".join(p.name for p in node.record.pods)
        raise InputError(
            f"pod {wanted!r} {'is ambiguous' if matches else 'not found'} in lab "
            f"{node.spec.name} (pods: {known})"
        )
    raise InputError(f"bad target {target!r}: use node, client or pod/NAME")
