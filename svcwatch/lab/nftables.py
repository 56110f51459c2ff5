"""Program the lab node as kube-proxy's nftables mode does: one `nft -f` batch per sync.

kube-proxy in nftables mode owns one table, `table ip kube-proxy`, and writes it in a single
transaction per sync, so a packet sees the old rules or the new ones, never half of each. A full
sync here is the renderer's whole table after `add table` + `delete table` in the same batch; a
partial one (`kubeproxy.nft_partial`, what kube-proxy does between full syncs) writes only what
changed. Everything runs inside the node's namespace; the host's ruleset is never read or
written.

Switching modes keeps the Service answering: the new mode's rules go in first (one atomic
batch), then the old mode's come out. With iptables' nf_tables backend (what Debian and k3s use)
iptables -> nftables is one batch: the node's `ip filter` / `ip nat` / `ip mangle` tables hold
only kube-proxy's KUBE-* chains, so the same `nft -f` that adds kube-proxy's table deletes them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from svcwatch import netns
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import SetupError
from svcwatch.model.service import Service

TABLE = "ip kube-proxy"
# The iptables-nft tables that hold kube-proxy's iptables-mode chains (and nothing else, in a lab).
IPTABLES_NFT_TABLES = ("ip filter", "ip nat", "ip mangle")
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
MISSING = "nft not found: install the Debian package 'nftables' (apt-get install nftables)"


def nft_tool() -> str:
    """The full path of `nft`, or a SetupError naming the Debian package."""
    path = shutil.which("nft") or next(
        (str(Path(d) / "nft") for d in SBIN_DIRS if (Path(d) / "nft").exists()), None
    )
    if path is None:
        raise SetupError(MISSING)
    return path


def _nft(node_ns: str, args: list[str], stdin: str | None = None) -> str:
    with netns.entered(node_ns):  # this thread enters; the child inherits it (see iptables._run)
        proc = subprocess.run([nft_tool(), *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["(no message)"])[0]
        raise SetupError(f"nft failed in namespace {node_ns}: {first}")
    return str(proc.stdout)


def apply(node_ns: str, batch: str) -> float:
    """`nft -f -` inside the node: one atomic batch; returns how long it took in ms."""
    start = time.perf_counter()
    _nft(node_ns, ["-f", "-"], stdin=batch)
    return (time.perf_counter() - start) * 1000


def listing(node_ns: str) -> str:
    """`nft list table ip kube-proxy` in the node ("" when there is no such table)."""
    tables = _nft(node_ns, ["list", "tables"])
    if f"table {TABLE}" not in tables.splitlines():
        return ""
    return _nft(node_ns, ["list", "table", *TABLE.split()])


def replace_batch(table_text: str, drop: tuple[str, ...] = ()) -> str:
    """The batch that replaces kube-proxy's table (and deletes `drop` tables) atomically.

    `add table` before each `delete table` makes the delete safe when the table is absent.
    """
    lines = [f"add table {t}\ndelete table {t}" for t in (*drop, TABLE)]
    return "\n".join(lines) + "\n" + table_text


def remove_batch() -> str:
    return f"add table {TABLE}\ndelete table {TABLE}\n"


def kernel_chains(node_ns: str) -> set[str]:
    """The per-Service chains (their names hold a `/`) in the node's kube-proxy table."""
    from svcwatch.kubeproxy.nft import parse_nft_table

    text = listing(node_ns)
    return {c for c in parse_nft_table(text).chains if "/" in c} if text else set()


@dataclass(frozen=True)
class NftWritten:
    """What one sync left in the node: its per-Service chains, the table's text, and the chains
    it only flushed (stale), with when they went stale (time.monotonic())."""

    chains: frozenset[str]
    text: str
    stale: Mapping[str, float] = field(default_factory=dict)


def render_table(service: Service, slice_: EndpointSlice, cluster_cidr: str, node_ip: str,
                 service_cidr: str) -> tuple[str, list[str]]:  # fmt: skip
    """The renderer's table for the lab's one Service, and its per-Service chains."""
    from svcwatch.kubeproxy.nft_render import NftConfig, render_nft

    config = NftConfig(cluster_cidr=cluster_cidr, service_cidr=service_cidr, node_ips=(node_ip,))
    rendered = render_nft([(service, [slice_])], config)
    return rendered.text(), rendered.service_chains


def read_tree(node_ns: str, service: Service) -> ChainTree:
    """The Service's path as the kernel has it now (no counters: kube-proxy adds none)."""
    from svcwatch.kubeproxy.nft import BACKEND, service_tree_nft

    text = listing(node_ns)
    if not text:
        return ChainTree(service=service.key, proxy_backend=BACKEND)
    return service_tree_nft(text, service)


def desired_tree(table_text: str, service: Service) -> ChainTree:
    """The tree the renderer wants, read through the same reader as the kernel's listing."""
    from svcwatch.kubeproxy.nft import service_tree_nft
    from svcwatch.kubeproxy.nft_listing import transaction_listing

    return service_tree_nft(transaction_listing(table_text), service)
