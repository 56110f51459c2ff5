"""A Service port's own chains: KUBE-EXT-, KUBE-FW-, KUBE-SVC-/KUBE-SVL- and KUBE-SEP-.

In the order `syncProxyRules` writes them:

- the masquerade rule for off-cluster ClusterIP traffic, first in the internal policy chain:
  the cluster-IP match `! -s CLUSTER-CIDR -j KUBE-MARK-MASQ` (with --masquerade-all, no `! -s`);
- KUBE-EXT- (external destinations): Cluster policy masquerades everything
  (`"masquerade traffic for NAME external destinations"`); Local policy keeps client source IPs
  but sends pod traffic (`-s CLUSTER-CIDR`) and the node's own (`--src-type LOCAL`, masqueraded)
  to KUBE-SVC-; then, if there are endpoints for it, `-j` the policy chain;
- KUBE-FW- (loadBalancerSourceRanges): `"NAME loadbalancer IP" -s RANGE -j KUBE-EXT-` per range
  (plus `-s LB-IP` per LB IP when a range holds the node IP), then a comment-only rule; what
  falls through is dropped by KUBE-PROXY-FIREWALL in the filter table;
- KUBE-SVC- (Cluster) / KUBE-SVL- (Local): with ClientIP affinity first one `-m recent --name
  KUBE-SEP-… --rcheck --seconds N --reap` rule per endpoint (a client seen within N s goes back to
  its endpoint), then the probability chain (see `render`);
- KUBE-SEP- per endpoint: `-s POD-IP -j KUBE-MARK-MASQ` (hairpin), then the DNAT, which with
  affinity also records the client (`-m recent --name KUBE-SEP-… --set`).
"""

from __future__ import annotations

from collections.abc import Sequence

from svcwatch.kubeproxy.endpoints import ProxyEndpoint
from svcwatch.kubeproxy.portplan import Buffers, PortPlan, comment, q
from svcwatch.kubeproxy.proxyconfig import ProxyConfig


def service_chains(buf: Buffers, p: PortPlan, config: ProxyConfig) -> None:
    """Everything after the entry rules for one Service port."""
    if p.has_internal:
        _masquerade_off_cluster(buf, p, config)
    if p.uses_ext_chain:
        _external_chain(buf, p, config)
    if p.uses_fw_chain:
        _firewall_chain(buf, p, config)
    if p.endpoints.cluster:
        _endpoint_rules(buf, p, p.svc, p.endpoints.cluster)
    if p.endpoints.local:
        _endpoint_rules(buf, p, p.svl, p.endpoints.local)
    for ep in p.endpoints.reachable:
        _endpoint_chain(buf, p, ep)


def _masquerade_off_cluster(buf: Buffers, p: PortPlan, config: ProxyConfig) -> None:
    match = f"-m comment --comment {q(p.spn + ' cluster IP')} {p.match(p.cluster_ip)}"
    if config.masquerade_all:
        buf.nat(p.internal_chain, match, "-j KUBE-MARK-MASQ")
    elif config.cluster_cidr:
        buf.nat(p.internal_chain, match, f"! -s {config.cluster_cidr} -j KUBE-MARK-MASQ")


def _external_chain(buf: Buffers, p: PortPlan, config: ProxyConfig) -> None:
    """KUBE-EXT-: masquerade (Cluster) or keep the source IP (Local), then the policy chain."""
    buf.declare(p.ext)
    if not p.external_local:
        buf.nat(
            p.ext,
            comment(f"masquerade traffic for {p.spn} external destinations"),
            "-j KUBE-MARK-MASQ",
        )
    else:
        if config.cluster_cidr:
            buf.nat(
                p.ext,
                comment(f"pod traffic for {p.spn} external destinations"),
                f"-s {config.cluster_cidr} -j {p.svc}",
            )
        buf.nat(
            p.ext,
            comment(f"masquerade LOCAL traffic for {p.spn} external destinations"),
            "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        )
        buf.nat(
            p.ext,
            comment(f"route LOCAL traffic for {p.spn} external destinations"),
            f"-m addrtype --src-type LOCAL -j {p.svc}",
        )
    if p.has_external:
        buf.nat(p.ext, f"-j {p.external_policy_chain}")


def _node_ip_allowed(ranges: Sequence[str], node_ip: str | None) -> bool:
    import ipaddress  # only firewall chains need it

    if not node_ip:
        return False
    ip = ipaddress.ip_address(node_ip)
    return any(ip in ipaddress.ip_network(r) for r in ranges)


def _firewall_chain(buf: Buffers, p: PortPlan, config: ProxyConfig) -> None:
    """KUBE-FW-: admit the source ranges to KUBE-EXT-; the rest falls to KUBE-PROXY-FIREWALL."""
    buf.declare(p.fw)
    head = comment(f"{p.spn} loadbalancer IP")
    for cidr in p.source_ranges:
        buf.nat(p.fw, head, f"-s {cidr} -j {p.ext}")
    if _node_ip_allowed(p.source_ranges, config.node_ip):
        for ip in p.lb_ips:
            buf.nat(p.fw, head, f"-s {ip} -j {p.ext}")
    buf.nat(p.fw, comment(f"other traffic to {p.spn} will be dropped by KUBE-PROXY-FIREWALL"))


def _endpoint_rules(
    buf: Buffers, p: PortPlan, chain: str, endpoints: Sequence[ProxyEndpoint]
) -> None:
    """Affinity checks, then the probability chain: rule i of n matches 1/(n-i)."""
    buf.declare(chain)
    if p.sticky_seconds is not None:
        for ep in endpoints:
            buf.nat(
                chain,
                buf.endpoint_comment(q(f"{p.spn} -> {ep.key}")),
                f"-m recent --name {p.sep(ep)} --rcheck --seconds {p.sticky_seconds} --reap",
                f"-j {p.sep(ep)}",
            )
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        statistic = (
            f"-m statistic --mode random --probability {1.0 / (n - i):0.10f}" if i < n - 1 else ""
        )
        buf.nat(
            chain, buf.endpoint_comment(q(f"{p.spn} -> {ep.key}")), statistic, f"-j {p.sep(ep)}"
        )


def _endpoint_chain(buf: Buffers, p: PortPlan, ep: ProxyEndpoint) -> None:
    """KUBE-SEP-: hairpin masquerade, then DNAT (recording the client with affinity)."""
    chain = p.sep(ep)
    buf.declare(chain)
    head = buf.endpoint_comment(p.spn)
    buf.nat(chain, head, f"-s {ep.ip} -j KUBE-MARK-MASQ")
    remember = "" if p.sticky_seconds is None else f"-m recent --name {chain} --set"
    buf.nat(
        chain,
        head,
        remember,
        f"-m {p.proto} -p {p.proto} -j DNAT --to-destination {ep.key}",
    )
