"""The capture filter: which packets of the node belong to one Service, as a BPF expression.

The text has the blog post's shape, derived from the Service and its current EndpointSlice:

    (ip and ((host CLUSTER_IP and port PORT) or ((net POD_CIDR) and port EP_PORT)
             or ((host NODE_IP) and port NODE_PORT)))
    or (arp and (host EP1 or host EP2))

followed by one clause the blog post lacks: ICMP "destination unreachable", because when an
endpoint's IP belongs to no pod the node's ARP gives up after ~3 s and answers the client with ICMP
host unreachable (docs/design.md). The kernel runs the compiled program on every frame, so the
capture thread only ever wakes up for packets the user wants to see; the text is re-derived and
re-attached on every slice change.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterable

from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.service import Service

DLT_EN10MB = 1
BPF_INSN_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


def _ports(ports: Iterable[int]) -> str | None:
    """`port P`, or `(port A or port B)` for several; None when there is none."""
    unique = list(dict.fromkeys(ports))
    if not unique:
        return None
    if len(unique) == 1:
        return f"port {unique[0]}"
    return "(" + " or ".join(f"port {p}" for p in unique) + ")"


def _hosts(addresses: Iterable[str]) -> str:
    return " or ".join(f"host {a}" for a in dict.fromkeys(addresses))


def filter_for(
    service: Service,
    slice_: EndpointSlice,
    *,
    node_ip: str,
    pod_cidr: str,
    client_ip: str | None = None,
) -> str:
    """The BPF filter text for this Service and slice, in the blog post's shape plus ICMP errors.

    Args:
        node_ip: the node's address (where NodePorts listen).
        pod_cidr: the node's pod network, e.g. 10.42.0.0/24.
        client_ip: when given, only ICMP errors to or from the client are kept.
    """
    ip_parts: list[str] = []
    service_ports = _ports(p.port for p in service.ports)
    if service.cluster_ip and service.cluster_ip != "None" and service_ports:
        ip_parts.append(f"(host {service.cluster_ip} and {service_ports})")
    endpoint_ports = _ports(p.port for p in slice_.ports if p.port is not None)
    if endpoint_ports:
        ip_parts.append(f"((net {pod_cidr}) and {endpoint_ports})")
    node_ports = _ports(p.node_port for p in service.ports if p.node_port)
    if node_ports:
        ip_parts.append(f"((host {node_ip}) and {node_ports})")
    clauses: list[str] = []
    if ip_parts:
        clauses.append("(ip and (" + " or ".join(ip_parts) + "))")
    addresses = [e.address for e in slice_.endpoints if e.address]
    if addresses:
        clauses.append(f"(arp and ({_hosts(addresses)}))")
    icmp = "icmp[icmptype] == icmp-unreach"
    clauses.append(f"(icmp and {icmp} and host {client_ip})" if client_ip else f"(icmp and {icmp})")
    return " or ".join(clauses)


def compile_filter(text: str, linktype: int = DLT_EN10MB) -> bytes:
    """Compile `text` to classic BPF instructions (struct sock_filter[]) for SO_ATTACH_FILTER.

    Uses libpcap through scapy, or `tcpdump -ddd` when libpcap cannot be loaded. Raises InputError
    for a filter libpcap rejects and SetupError when neither compiler is present.
    """
    try:
        return _compile_with_libpcap(text, linktype)
    except ImportError:
        pass
    if shutil.which("tcpdump") is None:
        raise SetupError(
            "cannot compile a BPF filter: install libpcap (apt-get install libpcap0.8) or tcpdump"
        )
    return _compile_with_tcpdump(text, linktype)


def _compile_with_libpcap(text: str, linktype: int) -> bytes:
    # scapy.arch.common loads libpcap through ctypes (~0.2 s); never import scapy.all here.
    from scapy.arch.common import compile_filter as scapy_compile
    from scapy.arch.common import free_filter
    from scapy.error import Scapy_Exception

    try:
        program = scapy_compile(text, linktype=linktype)
    except Scapy_Exception as exc:
        raise InputError(f"invalid capture filter: {exc}") from None
    try:
        size = program.bf_len * BPF_INSN_SIZE
        return ctypes.string_at(ctypes.cast(program.bf_insns, ctypes.c_void_p), size)
    finally:
        free_filter(program)


def _compile_with_tcpdump(text: str, linktype: int) -> bytes:
    """`tcpdump -ddd` prints the instruction count, then `code jt jf k` per line, in decimal."""
    import struct

    argv = ["tcpdump", "-ddd", "-y", "EN10MB" if linktype == DLT_EN10MB else str(linktype), text]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InputError(f"invalid capture filter: {done.stderr.strip()}")
    lines = done.stdout.split("\n")
    count = int(lines[0])
    return b"".join(struct.pack("=HBBI", *map(int, line.split())) for line in lines[1 : 1 + count])


def instruction_count(program: bytes) -> int:
    return len(program) // BPF_INSN_SIZE
