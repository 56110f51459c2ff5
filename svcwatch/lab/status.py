"""What `lab status` shows: the lab as the kernel has it, next to what the store says it should be.

Interfaces and addresses are read over netlink inside each namespace, the chain with
`iptables-save -c` inside the node, and the problems are svcwatch.lab.health's checks of the whole
data plane (links, addresses, routes, rules against their rendering, the echo listener). The same
dictionary is printed as text or as JSON; `lab status` exits 1 when there are problems.
"""

from __future__ import annotations

from typing import Any

from svcwatch import netns
from svcwatch.lab import health
from svcwatch.lab.health import interfaces as interfaces
from svcwatch.lab.node import LabNode
from svcwatch.model.errors import InputError, SetupError


def describe(node: LabNode) -> dict[str, Any]:
    """Everything `lab status` prints, as plain data; `problems` empty means healthy.

    A lab whose node namespace is gone has nothing left to describe, and one removed while it is
    being read (a concurrent `lab down`) cannot be described: each is a one-line SetupError.
    """
    try:
        return _describe(node)
    except FileNotFoundError as exc:
        name = node.spec.name
        raise SetupError(
            f"lab {name} changed while it was read ({exc.filename} went away): it is being "
            f"removed or rebuilt; run `svcwatch lab status --name {name}` again"
        ) from None


def _describe(node: LabNode) -> dict[str, Any]:
    spec = node.spec
    faults = node.faults()
    if any(f.fix == health.REBUILD for f in faults):
        raise SetupError(
            f"lab {spec.name} is broken: {faults[0].text} (run `svcwatch lab down --name "
            f"{spec.name}`, or `svcwatch lab up --name {spec.name}` to rebuild it)"
        )
    namespaces = [spec.node_ns, spec.client_ns, *(p.netns for p in node.record.pods)]
    data: dict[str, Any] = {
        "name": spec.name,
        "scenario": node.current_scenario(),
        "namespaces": {
            ns: {"exists": netns.exists(ns), "interfaces": interfaces(ns)} for ns in namespaces
        },
        "pods": [vars(p) | {"echo": p.name == node.record.echo_pod} for p in _pods(node)],
        "problems": [f.text for f in faults],
        "drift": [f.text for f in faults if f.fix == health.RULES],
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
    except (InputError, SetupError) as exc:
        data["chain"] = []
        data["problems"].append(str(exc))
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
    problems = data["problems"]
    lines.append("problems: none" if not problems else "problems (`svcwatch lab up` repairs them):")
    lines.extend(f"  {p}" for p in problems)
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
