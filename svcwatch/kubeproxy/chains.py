"""kube-proxy's chain names: a hash of the service-port name, protocol and endpoint.

iptables chain names are limited to 28 characters, so kube-proxy names each Service port's chains
`KUBE-SVC-`/`KUBE-SVL-`/`KUBE-EXT-`/`KUBE-FW-` + the first 16 characters of
base32(sha256(name + proto)), and each endpoint's chain `KUBE-SEP-` + the same hash of
name + proto + "ip:port". The inputs are plain concatenations, so `default/socat` + `tcp` +
`10.42.0.142:12345` gives the blog post's `KUBE-SEP-STAYFALK6DPGANUO`. Because large clusters
drop rule comments, these hashes are also how a dump is searched for one Service.
"""

from __future__ import annotations

import base64
import hashlib

from svcwatch.model.service import Service, ServicePort

SVC_PREFIX = "KUBE-SVC-"
SVL_PREFIX = "KUBE-SVL-"
EXT_PREFIX = "KUBE-EXT-"
FW_PREFIX = "KUBE-FW-"
SEP_PREFIX = "KUBE-SEP-"
SERVICE_CHAIN_PREFIXES = (SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX)


def port_proto_hash(name: str, proto: str) -> str:
    """The first 16 characters of base32(sha256(name + proto)), as kube-proxy's portProtoHash."""
    digest = hashlib.sha256((name + proto).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_port_name(service: Service, port: ServicePort) -> str:
    """`ns/svc`, or `ns/svc:portname` when the port is named (ServicePortName.String())."""
    return f"{service.key}:{port.name}" if port.name else service.key


def proto_of(port: ServicePort) -> str:
    """The protocol as it enters the hash and the rules: lower case (`tcp`)."""
    return port.protocol.lower()


def svc_chain(spn: str, proto: str) -> str:
    """KUBE-SVC-: the Cluster-policy chain that load-balances over all usable endpoints."""
    return SVC_PREFIX + port_proto_hash(spn, proto.lower())


def svl_chain(spn: str, proto: str) -> str:
    """KUBE-SVL-: the Local-policy chain holding only this node's endpoints."""
    return SVL_PREFIX + port_proto_hash(spn, proto.lower())


def ext_chain(spn: str, proto: str) -> str:
    """KUBE-EXT-: where NodePort / external traffic enters (masquerade, then the policy chain)."""
    return EXT_PREFIX + port_proto_hash(spn, proto.lower())


def fw_chain(spn: str, proto: str) -> str:
    """KUBE-FW-: the loadBalancerSourceRanges filter chain."""
    return FW_PREFIX + port_proto_hash(spn, proto.lower())


def sep_chain(spn: str, proto: str, endpoint: str) -> str:
    """KUBE-SEP-: one endpoint's chain (hairpin masquerade + DNAT); `endpoint` is "ip:port"."""
    return SEP_PREFIX + port_proto_hash(spn, proto.lower() + endpoint)


def is_service_chain(chain: str) -> bool:
    """Whether kube-proxy owns this chain per service (and may delete it when stale)."""
    return chain.startswith(SERVICE_CHAIN_PREFIXES)


def join_host_port(ip: str, port: int) -> str:
    """Go's net.JoinHostPort: IPv6 addresses get brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
