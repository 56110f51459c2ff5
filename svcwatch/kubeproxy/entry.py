"""Where a packet for a Service port enters kube-proxy's chains, or is refused.

Per Service port, in the order `syncProxyRules` writes them:

- cluster IP: nat KUBE-SERVICES `"NAME cluster IP" -d CLUSTER-IP --dport PORT` -> KUBE-SVC- (or
  KUBE-SVL- with internalTrafficPolicy=Local); with no (local) endpoint a filter KUBE-SERVICES
  REJECT ("has no endpoints") or DROP ("has no local endpoints") instead;
- each externalIP: nat KUBE-SERVICES `"NAME external IP"` -> KUBE-EXT-; without endpoints for
  external traffic a filter KUBE-EXTERNAL-SERVICES REJECT/DROP for that IP;
- each LoadBalancer ingress IP: nat KUBE-SERVICES `"NAME loadbalancer IP"` -> KUBE-EXT-, or
  KUBE-FW- when loadBalancerSourceRanges are set, plus a filter KUBE-PROXY-FIREWALL DROP
  (`"NAME traffic not accepted by KUBE-FW-…"`) that catches what KUBE-FW- let fall through;
- the nodePort: nat KUBE-NODEPORTS `NAME --dport NODEPORT` -> KUBE-EXT- (v1.31+ first the same
  for `-d 127.0.0.0/8` with an nfacct counter), or a filter KUBE-EXTERNAL-SERVICES REJECT/DROP
  with `-m addrtype --dst-type LOCAL`;
- the health-check nodePort (LoadBalancer, externalTrafficPolicy=Local): filter KUBE-NODEPORTS
  `"NAME health check node port"` ACCEPT, whether or not there are endpoints.
"""

from __future__ import annotations

from svcwatch.kubeproxy.portplan import Buffers, PortPlan, q
from svcwatch.kubeproxy.proxyconfig import LOCALHOST_NFACCT, ProxyConfig


def entry_rules(buf: Buffers, p: PortPlan, config: ProxyConfig) -> None:
    """All entry rules of one Service port (nat jumps and filter refusals), in kube-proxy order."""
    _cluster_ip(buf, p)
    _external_ips(buf, p)
    _load_balancer_ips(buf, p)
    _node_port(buf, p, config)
    if p.health_check_port:
        buf.filter(
            "KUBE-NODEPORTS",
            f"-m comment --comment {q(p.spn + ' health check node port')}",
            f"-m tcp -p tcp --dport {p.health_check_port} -j ACCEPT",
        )


def _capture(buf: Buffers, p: PortPlan, what: str, ip: str, target: str) -> None:
    """nat KUBE-SERVICES `"NAME <what>" -d IP --dport PORT -j TARGET`."""
    buf.nat(
        "KUBE-SERVICES", f"-m comment --comment {q(f'{p.spn} {what}')}", p.match(ip), f"-j {target}"
    )


def _refuse(buf: Buffers, p: PortPlan, chain: str, ip: str) -> None:
    """A filter REJECT/DROP for traffic to IP:PORT that has no endpoint to go to."""
    why, target = p.refusal()
    buf.filter(chain, f"-m comment --comment {why}", p.match(ip), f"-j {target}")


def _cluster_ip(buf: Buffers, p: PortPlan) -> None:
    if p.has_internal:
        _capture(buf, p, "cluster IP", p.cluster_ip, p.internal_chain)
    else:
        _refuse(buf, p, "KUBE-SERVICES", p.cluster_ip)


def _external_ips(buf: Buffers, p: PortPlan) -> None:
    for ip in p.external_ips:
        if p.has_endpoints:
            _capture(buf, p, "external IP", ip, p.ext)
        if not p.has_external:
            _refuse(buf, p, "KUBE-EXTERNAL-SERVICES", ip)


def _load_balancer_ips(buf: Buffers, p: PortPlan) -> None:
    for ip in p.lb_ips:
        if p.has_endpoints:
            _capture(buf, p, "loadbalancer IP", ip, p.lb_chain)
        if p.uses_fw_chain:
            buf.filter(
                "KUBE-PROXY-FIREWALL",
                f"-m comment --comment {q(f'{p.spn} traffic not accepted by {p.fw}')}",
                p.match(ip),
                "-j DROP",
            )
    if not p.has_external:
        for ip in p.lb_ips:
            _refuse(buf, p, "KUBE-EXTERNAL-SERVICES", ip)


def _node_port(buf: Buffers, p: PortPlan, config: ProxyConfig) -> None:
    if p.node_port is None:
        return
    by_port = f"-m {p.proto} -p {p.proto}"
    if p.has_endpoints:
        if config.localhost_nodeports_on and config.nfacct:
            buf.nat(
                "KUBE-NODEPORTS",
                f"-m comment --comment {p.spn} {by_port} -d 127.0.0.0/8",
                f"--dport {p.node_port} -m nfacct --nfacct-name {LOCALHOST_NFACCT} -j {p.ext}",
            )
        buf.nat(
            "KUBE-NODEPORTS",
            f"-m comment --comment {p.spn} {by_port} --dport {p.node_port} -j {p.ext}",
        )
    if not p.has_external:
        why, target = p.refusal()
        buf.filter(
            "KUBE-EXTERNAL-SERVICES",
            f"-m comment --comment {why}",
            f"-m addrtype --dst-type LOCAL {by_port} --dport {p.node_port} -j {target}",
        )
