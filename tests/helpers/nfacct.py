"""Create nfacct counters in a network namespace, as kube-proxy v1.31+ does before its rules.

kube-proxy's nfacct-counted rules (`-m nfacct --nfacct-name …`) only load when the named counter
exists in the namespace, and the `nfacct` tool is rarely installed, so this sends the one
netlink message (NFNL_SUBSYS_ACCT / NFNL_MSG_ACCT_NEW with NFACCT_NAME) itself.
"""

from __future__ import annotations

import socket
import struct

from svcwatch import netns

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ACCT = 7
NFNL_MSG_ACCT_NEW = 0
NFACCT_NAME = 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400


def add_counter(ns: str, name: str) -> None:
    """`nfacct add NAME` in namespace `ns`; OSError if the kernel refuses."""
    value = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(value), NFACCT_NAME) + value
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0) + attr
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    header = struct.pack(
        "=IHHII", 16 + len(body), NFNL_SUBSYS_ACCT << 8 | NFNL_MSG_ACCT_NEW, flags, 1, 0
    )
    with netns.socket_in(ns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.bind((0, 0))
        sock.send(header + body)
        error = struct.unpack("=i", sock.recv(4096)[16:20])[0]
    if error:
        raise OSError(-error, f"nfacct add {name}")
