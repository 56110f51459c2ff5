"""Services + EndpointSlices -> the iptables-restore input kube-proxy (iptables mode) writes.

This follows `syncProxyRules` in kubernetes `pkg/proxy/iptables/proxier.go` rule for rule and
token for token, for a full sync: `*filter` then `*nat`, the fixed chains first, then per Service
port its entry rules (`entry.py`) and its own chains (`service_chains.py`), and last the `-X` of
stale chains and the "must be the last rule" jump to KUBE-NODEPORTS. `ProxyConfig.version`
picks v1.30 (k3s' embedded kube-proxy, the default) or v1.31+ (nfacct counters). Which endpoints
count and which policy chain holds them is `endpoints.py`; the per-port decisions are
`portplan.py`.

Feature by feature, the rule shapes:

- ClusterIP: KUBE-SERVICES `-d CLUSTER-IP --dport PORT -j KUBE-SVC-` (KUBE-SVL- with
  internalTrafficPolicy=Local), and in that chain `! -s CLUSTER-CIDR -j KUBE-MARK-MASQ`;
- NodePort: KUBE-NODEPORTS `--dport NODEPORT -j KUBE-EXT-`; KUBE-EXT- masquerades, then jumps to
  KUBE-SVC-; the last KUBE-SERVICES rule sends local destinations to KUBE-NODEPORTS, 127.0.0.1
  included unless localhost NodePorts are off (then `! -d 127.0.0.0/8`, and no KUBE-FIREWALL
  guard against martian localnet packets);
- externalIPs and LoadBalancer ingress IPs: KUBE-SERVICES `-d IP --dport PORT -j KUBE-EXT-`
  (`-j KUBE-FW-` for LB IPs with loadBalancerSourceRanges, whose stragglers KUBE-PROXY-FIREWALL
  drops); ExternalName and headless Services get no rules at all;
- externalTrafficPolicy=Local: KUBE-EXT- keeps the client IP and jumps to KUBE-SVL- (this
  node's endpoints), short-circuiting pod and node traffic to KUBE-SVC-; with no local endpoint
  external traffic is DROPped in the filter table. It needs no nodePort: a LoadBalancer with
  `allocateLoadBalancerNodePorts: false` enters KUBE-EXT- through its LB IPs only; the
  health-check nodePort is ACCEPTed in filter KUBE-NODEPORTS;
- session affinity ClientIP: `-m recent --rcheck --seconds N --reap` rules before the probability
  chain, `-m recent --set` in each KUBE-SEP- DNAT rule;
- no usable endpoint: no nat chains for the port, only filter REJECT rules ("connection refused").

The probability chain. KUBE-SVC- holds one rule per endpoint, sorted as "ip:port" strings. Rule
i (0-based) of n matches with probability 1/(n-i), written `%0.10f`; the last rule has no
statistic match and catches whatever is left. A new connection falls through the rules in order,
so endpoint i is chosen with probability (1/(n-i)) * prod_{j<i} (1 - 1/(n-j)) = 1/n: every
endpoint gets an equal share although the written numbers differ (0.3333333333, 0.5000000000,
then the catch-all for n=3). The kernel stores each probability as round(p * 2^31) in a u32,
which is why `iptables-save` prints 0.33333333349 (see `syntax.saved_probability`). Affinity
rules come first and only match clients seen before, so they take no share of new clients.

Topology-aware routing follows the EndpointSlice's zone hints when `ProxyConfig.node_zone` is
set (see `endpoints.py`); `--nodeport-addresses` turns the last KUBE-SERVICES rule into one
`-d NODE-IP` jump per matching node address. Not modeled: same-node hints (`PreferSameNode`,
behind a newer feature gate) and the IPv6 proxier.

The one-time jump rules from the built-in chains are `hook_rules` (see `hooks.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from svcwatch.kubeproxy import chains as names
from svcwatch.kubeproxy.endpoints import port_endpoints
from svcwatch.kubeproxy.entry import entry_rules
from svcwatch.kubeproxy.hooks import jump_rules
from svcwatch.kubeproxy.portplan import Buffers, comment, plan
from svcwatch.kubeproxy.proxyconfig import INVALID_NFACCT, LARGE_CLUSTER_ENDPOINTS, ProxyConfig
from svcwatch.kubeproxy.rules import RuleSet, Table
from svcwatch.kubeproxy.service_chains import service_chains
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.service import Service

__all__ = ["ProxyConfig", "hook_rules", "render", "render_services"]

NODEPORTS_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
FILTER_CHAINS = (
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
)
NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")


def is_proxied(service: Service) -> bool:
    """kube-proxy skips ExternalName and headless Services (ClusterIP None, empty or not IPv4)."""
    ip = service.cluster_ip
    return service.type != "ExternalName" and bool(ip) and ip != "None" and ":" not in str(ip)


def _fixed_rules(buf: Buffers, config: ProxyConfig) -> None:
    """KUBE-POSTROUTING / KUBE-MARK-MASQ, and the localnet guard in KUBE-FIREWALL."""
    buf.filter_chains.extend(FILTER_CHAINS)
    buf.nat_chains.extend(NAT_CHAINS)
    mark = config.masquerade_mark
    buf.nat("KUBE-POSTROUTING", f"-m mark ! --mark {mark}/{mark} -j RETURN")
    buf.nat("KUBE-POSTROUTING", f"-j MARK --xor-mark {mark}")
    buf.nat(
        "KUBE-POSTROUTING",
        comment("kubernetes service traffic requiring SNAT"),
        "-j MASQUERADE" + (" --random-fully" if config.random_fully else ""),
    )
    buf.nat("KUBE-MARK-MASQ", f"-j MARK --or-mark {mark}")
    if config.localhost_nodeports_on:
        buf.filter_chains.append("KUBE-FIREWALL")
        buf.filter(
            "KUBE-FIREWALL",
            comment("block incoming localnet connections"),
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8",
            "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        )


def _nodeports_jump(buf: Buffers, config: ProxyConfig) -> None:
    """To KUBE-NODEPORTS for any local address, or (--nodeport-addresses) one rule per address,
    127.0.0.1 only while localhost NodePorts are on."""
    if config.nodeports_everywhere:
        not_localhost = "" if config.localhost_nodeports_on else " ! -d 127.0.0.0/8"
        destinations = [f"-m addrtype --dst-type LOCAL{not_localhost}"]
    else:
        destinations = [
            f"-d {ip}"
            for ip in config.nodeport_ips()
            if config.localhost_nodeports_on or not ip.startswith("127.")
        ]
    for destination in destinations:
        buf.nat(
            "KUBE-SERVICES",
            f"-m comment --comment {NODEPORTS_COMMENT} {destination} -j KUBE-NODEPORTS",
        )


def _closing_rules(buf: Buffers, config: ProxyConfig) -> None:
    """The last KUBE-SERVICES rule(s) (to KUBE-NODEPORTS) and the KUBE-FORWARD accept rules."""
    _nodeports_jump(buf, config)
    if not config.conntrack_tcp_liberal:
        counted = f" -m nfacct --nfacct-name {INVALID_NFACCT}" if config.nfacct else ""
        buf.filter("KUBE-FORWARD", f"-m conntrack --ctstate INVALID{counted} -j DROP")
    mark = config.masquerade_mark
    buf.filter(
        "KUBE-FORWARD",
        comment("kubernetes forwarding rules"),
        f"-m mark --mark {mark}/{mark} -j ACCEPT",
    )
    buf.filter(
        "KUBE-FORWARD",
        comment("kubernetes forwarding conntrack rule"),
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    )


def _endpoint_count(
    services: Sequence[Service], slices: Sequence[EndpointSlice], config: ProxyConfig
) -> int:
    """Every endpoint of every proxied Service port (kube-proxy's large-cluster measure)."""
    return sum(
        len(port_endpoints(s, port, slices, config.node_name))
        for s in services
        if is_proxied(s)
        for port in s.ports
    )


def render_services(
    services: Sequence[Service],
    slices: Sequence[EndpointSlice],
    config: ProxyConfig = ProxyConfig(),  # noqa: B008 (frozen, so one shared default is safe)
    stale_chains: Iterable[str] = (),
) -> RuleSet:
    """The restore input of a full kube-proxy sync for a node with these Services.

    Args:
        services: the Services, in the order to write them (kube-proxy's is a map's: random);
            ExternalName and headless ones get no rules, as in kube-proxy.
        slices: their EndpointSlices (each Service picks its own by namespace and label).
        config: kube-proxy settings (k3s defaults).
        stale_chains: chains now in the kernel; the service chains among them that this sync
            does not write are flushed and deleted (`:NAME` then `-X NAME`), as kube-proxy does.

    Returns:
        `*filter` then `*nat`, chains and rules in kube-proxy's order.
    """
    buf = Buffers(comments=_endpoint_count(services, slices, config) <= LARGE_CLUSTER_ENDPOINTS)
    _fixed_rules(buf, config)
    for service in services:
        if not is_proxied(service):
            continue
        for port in service.ports:
            planned = plan(service, port, slices, config)
            entry_rules(buf, planned, config)
            service_chains(buf, planned, config)
    stale = [
        c for c in dict.fromkeys(stale_chains) if names.is_service_chain(c) and c not in buf.active
    ]
    buf.nat_chains.extend(stale)
    deletions_at = len(buf.nat_rules)
    _closing_rules(buf, config)
    return RuleSet(
        [
            Table("filter", buf.filter_chains, buf.filter_rules),
            Table("nat", buf.nat_chains, buf.nat_rules, deleted=stale, deleted_after=deletions_at),
        ]
    )


def render(
    service: Service,
    slices: Sequence[EndpointSlice],
    config: ProxyConfig = ProxyConfig(),  # noqa: B008 (frozen, so one shared default is safe)
    stale_chains: Iterable[str] = (),
) -> RuleSet:
    """`render_services` for a node whose only Service is `service` (the lab's node)."""
    return render_services([service], slices, config, stale_chains)


def hook_rules(config: ProxyConfig = ProxyConfig()) -> RuleSet:  # noqa: B008 (frozen default)
    """The jump rules kube-proxy installs once (PREROUTING/OUTPUT -> KUBE-SERVICES, ...).

    Restore input for a fresh node. It declares, and so under --noflush empties, every KUBE-
    chain it jumps to: apply it once, before the first `render`, not after. The jumps do not
    depend on `config`; it is accepted so callers pass the same settings everywhere.
    """
    del config
    return jump_rules()
