"""The kube-proxy settings that change the iptables rules it writes; defaults are k3s's.

`version` is the kube-proxy minor version whose rules to write. From v1.31 kube-proxy counts two
kinds of packets with nfacct (when the kernel has the counters): INVALID packets it drops in
KUBE-FORWARD (`-m nfacct --nfacct-name ct_state_invalid_dropped_pkts`) and NodePort connections
to 127.0.0.0/8 (an extra KUBE-NODEPORTS rule with `--nfacct-name localhost_nps_accepted_pkts`).
k3s 1.30 embeds a kube-proxy without them, hence the default.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

INVALID_NFACCT = "ct_state_invalid_dropped_pkts"
LOCALHOST_NFACCT = "localhost_nps_accepted_pkts"
NFACCT_SINCE = (1, 31)
LARGE_CLUSTER_ENDPOINTS = 1000  # above this many endpoints kube-proxy drops per-endpoint comments


@dataclass(frozen=True)
class ProxyConfig:
    """kube-proxy's flags and environment, as far as they reach the iptables rules."""

    cluster_cidr: str = "10.42.0.0/16"  # k3s passes it: KUBE-SVC gets `! -s`, KUBE-EXT `-s`
    masquerade_bit: int = 14
    random_fully: bool = True  # iptables >= 1.6.2 supports --random-fully
    localhost_nodeports: bool = True  # kube-proxy's default: NodePorts answer on 127.0.0.1 too
    node_name: str | None = None  # decides which endpoints are local (the Local policies)
    node_zone: str | None = None  # the node's topology.kubernetes.io/zone (zone hints)
    node_ip: str | None = None  # a source range holding it also admits the LB IPs themselves
    version: str = "1.30"  # kube-proxy's minor version: 1.31+ adds the nfacct counters
    conntrack_tcp_liberal: bool = False  # nf_conntrack_tcp_be_liberal=1 drops the INVALID rule
    masquerade_all: bool = False  # --masquerade-all: masquerade every ClusterIP connection
    mark_text: str | None = None  # the mark exactly as held (upstream's test fake: "0x4000")
    nodeport_addresses: tuple[str, ...] = ()  # --nodeport-addresses CIDRs; none: every address
    node_addresses: tuple[str, ...] = ()  # the node's interface addresses (127.0.0.1 included)

    @property
    def masquerade_mark(self) -> str:
        """`1 << bit` formatted like Go's `%#08x`: 0x00004000."""
        return self.mark_text or f"0x{1 << self.masquerade_bit:08x}"

    @property
    def nfacct(self) -> bool:
        """Whether this kube-proxy version writes the nfacct-counted rules."""
        major, _, minor = self.version.partition(".")
        return (int(major), int(minor or 0)) >= NFACCT_SINCE

    def _nodeport_cidrs(self) -> list[ipaddress.IPv4Network]:
        """--nodeport-addresses for the IPv4 proxier (other families' CIDRs are dropped)."""
        cidrs = [ipaddress.ip_network(c.strip(), strict=False) for c in self.nodeport_addresses]
        return [c for c in cidrs if isinstance(c, ipaddress.IPv4Network)]

    @property
    def nodeports_everywhere(self) -> bool:
        """NodePorts on every local address (no IPv4 --nodeport-addresses, or 0.0.0.0/0)."""
        cidrs = self._nodeport_cidrs()
        return not cidrs or any(c.prefixlen == 0 for c in cidrs)

    @property
    def localhost_nodeports_on(self) -> bool:
        """NewProxier turns localhost NodePorts off when --nodeport-addresses leaves out 127/8."""
        loopback = ipaddress.ip_address("127.0.0.1")
        reaches = self.nodeports_everywhere or any(
            loopback in c or c.network_address.is_loopback for c in self._nodeport_cidrs()
        )
        return self.localhost_nodeports and reaches

    def nodeport_ips(self) -> list[str]:
        """The node addresses inside --nodeport-addresses (kube-proxy's order is a map's)."""
        cidrs = self._nodeport_cidrs()
        found = {a for a in self.node_addresses if any(ipaddress.ip_address(a) in c for c in cidrs)}
        return sorted(found, key=ipaddress.ip_address)
