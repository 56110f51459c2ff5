"""Program the lab node's netfilter exactly as kube-proxy does: `iptables-restore --noflush`.

kube-proxy (iptables mode) installs its hook rules once, then on every sync writes the whole set of
KUBE-* chains in one `iptables-restore --noflush` call (`*filter` then `*nat`); a `:CHAIN - [0:0]`
line flushes just that chain, and chains of endpoints that went away are deleted with `-X`. To
know which chains went away it reads the kernel back with `iptables-save`, as kube-proxy does on a
full sync; like kube-proxy's partial syncs, a caller that remembers what its last sync wrote
(`Written`) skips that read and rewrites only the tables whose text changed, and falls back to the
full sync when the memory turns out wrong. Everything here runs inside the node's namespace (the
calling thread enters it, so the tools start by vfork); the host's tables are never touched.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from svcwatch import netns
from svcwatch.kubeproxy.rules import ChainTree, Rule, RuleSet
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import SetupError
from svcwatch.model.service import Service

SERVICE_CHAIN_RE = re.compile(r"^KUBE-(?:SVC|SVL|EXT|FW|SEP)-[A-Z2-7]{16}$")
# sudo's secure_path usually has these, a plain user's PATH often does not.
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
MISSING = "{tool} not found: install the Debian package 'iptables' (apt-get install iptables)"


def iptables_tool(tool: str) -> str:
    """The full path of an iptables tool, or a SetupError naming the Debian package."""
    path: str | None = shutil.which(tool) or next(
        (str(Path(d) / tool) for d in SBIN_DIRS if (Path(d) / tool).exists()), None
    )
    if path is None:
        raise SetupError(MISSING.format(tool=tool))
    return path


def _run(node_ns: str, argv: list[str], stdin: str | None = None) -> str:
    # This thread enters the namespace and the child inherits it: no preexec_fn, so Python starts
    # the tool by vfork (~2 ms) instead of fork (~7 ms in the dashboard's big, threaded process).
    with netns.entered(node_ns):
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["(no message)"])[0]
        raise SetupError(f"{Path(argv[0]).name} failed in namespace {node_ns}: {first}")
    return str(proc.stdout)


def restore(node_ns: str, text: str) -> float:
    """`iptables-restore --noflush` inside the node; returns how long it took in ms."""
    start = time.perf_counter()
    _run(node_ns, [iptables_tool("iptables-restore"), "-w", "5", "--noflush"], stdin=text)
    return (time.perf_counter() - start) * 1000


def save(node_ns: str, *, counters: bool = False, table: str | None = None) -> str:
    argv = [iptables_tool("iptables-save")]
    if counters:
        argv.append("-c")
    if table:
        argv += ["-t", table]
    return _run(node_ns, argv)


def backend(node_ns: str) -> str:
    """Which iptables the node uses: `iptables-nft` or `iptables-legacy` (`iptables --version`)."""
    from svcwatch.kubeproxy.mode import flavour_of_version

    return flavour_of_version(_run(node_ns, [iptables_tool("iptables"), "--version"]))


def service_chains(saved: RuleSet) -> set[str]:
    """The per-Service chains (SVC/SVL/EXT/FW/SEP) present in a dump of the nat table."""
    names: set[str] = set()
    for table in saved.tables:
        if table.name == "nat":
            names.update(c for c in table.chains if SERVICE_CHAIN_RE.match(c))
            names.update(r.chain for r in table.rules if SERVICE_CHAIN_RE.match(r.chain))
    return names


@dataclass(frozen=True)
class Written:
    """What one sync left in the node: its Service chains, and each table's restore text."""

    chains: frozenset[str]
    tables: Mapping[str, str]


@dataclass(frozen=True)
class SyncResult:
    """One sync: which Service chains were created and deleted, and how long the restore took."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    took_ms: float
    text: str
    written: Written | None = None


def sync_service(
    node_ns: str,
    service: Service,
    slice_: EndpointSlice,
    cluster_cidr: str,
    previous: Written | None = None,
) -> SyncResult:
    """Render the Service from its slice into the node, deleting chains that went away.

    With `previous` (what this caller's last sync wrote, and nobody else has written since) the
    kernel is not read first and tables whose text did not change are not rewritten.
    """
    from svcwatch.kubeproxy.render import ProxyConfig, render  # pure, but only a sync needs it
    from svcwatch.kubeproxy.restore import to_restore_text

    if previous is None:
        existing = kernel_chains(node_ns)
    else:
        existing = set(previous.chains)
    # Given what is in the kernel, the renderer also flushes and deletes what this sync drops.
    desired = render(
        service, [slice_], config=ProxyConfig(cluster_cidr=cluster_cidr), stale_chains=existing
    )
    stale = tuple(sorted(c for t in desired.tables for c in t.deleted))
    wanted = service_chains(desired) - set(stale)
    tables = {t.name: to_restore_text(RuleSet([t])) for t in desired.tables}
    text = "".join(
        part
        for name, part in tables.items()
        if previous is None or previous.tables.get(name) != part
    )
    took_ms = restore(node_ns, text) if text else 0.0
    written = Written(frozenset(wanted), tables)
    return SyncResult(tuple(sorted(wanted - existing)), stale, took_ms, text, written)


def kernel_chains(node_ns: str) -> set[str]:
    """The per-Service KUBE-* chains in the node's nat table now."""
    from svcwatch.kubeproxy.restore import parse_save

    return service_chains(parse_save(save(node_ns, table="nat")))


# Every rule and KUBE-* chain gone, built-in chains back to ACCEPT: the node's iptables as a fresh
# namespace has them (in a lab node they hold nothing but kube-proxy's, kubelet's KUBE-FIREWALL).
EMPTY_TABLES = "".join(
    f"*{table}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in chains) + "COMMIT\n"
    for table, chains in (
        ("mangle", ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")),
        ("nat", ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")),
        ("filter", ("INPUT", "FORWARD", "OUTPUT")),
    )
)


def remove_all(node_ns: str) -> float:
    """Leave iptables mode: one iptables-restore (no --noflush) empties the node's tables."""
    start = time.perf_counter()
    _run(node_ns, [iptables_tool("iptables-restore"), "-w", "5"], stdin=EMPTY_TABLES)
    return (time.perf_counter() - start) * 1000


def install_hooks(node_ns: str, cluster_cidr: str) -> None:
    """kube-proxy's jump rules from the built-in chains, once, when the node is built."""
    from svcwatch.kubeproxy.render import ProxyConfig, hook_rules
    from svcwatch.kubeproxy.restore import to_restore_text

    restore(node_ns, to_restore_text(hook_rules(ProxyConfig(cluster_cidr=cluster_cidr))))


def missing_hooks(node_ns: str, cluster_cidr: str) -> list[str]:
    """The hook rules (`install_hooks`) the kernel no longer has, as `-A CHAIN ...` lines."""
    from svcwatch.kubeproxy.render import ProxyConfig, hook_rules
    from svcwatch.kubeproxy.restore import parse_save

    saved = parse_save(save(node_ns))
    have = {(t.name, r.chain, r.target, r.comment) for t in saved.tables for r in t.rules}
    wanted = hook_rules(ProxyConfig(cluster_cidr=cluster_cidr))
    return [
        f"{r.line()} ({t.name})"
        for t in wanted.tables
        for r in t.rules
        if (t.name, r.chain, r.target, r.comment) not in have
    ]


def read_tree(node_ns: str, service: Service, backend_name: str = "") -> ChainTree:
    """The Service's chain tree as the kernel has it now (nat and filter), with counters."""
    from svcwatch.kubeproxy.restore import parse_save, service_tree

    return service_tree(
        parse_save(save(node_ns, counters=True)), service, proxy_backend=backend_name
    )


def desired_tree(service: Service, slice_: EndpointSlice, cluster_cidr: str) -> ChainTree:
    """The chain tree the renderer wants for this slice (what the kernel should have)."""
    from svcwatch.kubeproxy.render import ProxyConfig, render
    from svcwatch.kubeproxy.restore import saved_form, service_tree

    rendered = render(service, [slice_], config=ProxyConfig(cluster_cidr=cluster_cidr))
    return service_tree(saved_form(rendered), service)


def rule_facts(rule: Rule) -> tuple[str, str | None, str | None, str | None, float | None]:
    """What a rule means, independent of how iptables-save re-spells it (/32, flag order, %.11f)."""
    probability = None if rule.probability is None else round(rule.probability, 6)
    return (rule.chain, rule.target, rule.comment, rule.dnat_to, probability)


def tree_differences(desired: ChainTree, actual: ChainTree) -> list[str]:
    """Human-readable differences between the desired and the kernel's tree (empty: in sync)."""
    out: list[str] = []
    for chain in desired.chains.keys() - actual.chains.keys():
        out.append(f"chain {chain} is missing from the kernel")
    for chain in actual.chains.keys() - desired.chains.keys():
        out.append(f"chain {chain} is in the kernel but not wanted")
    want = sorted(rule_facts(r) for r in desired.all_rules())
    have = sorted(rule_facts(r) for r in actual.all_rules())
    for facts in want:
        if facts in have:
            have.remove(facts)
        elif facts[0] in actual.chains or facts[0] not in desired.chains:
            out.append(f"rule missing: {_describe(facts)}")
    out.extend(f"unexpected rule: {_describe(f)}" for f in have if f[0] in desired.chains)
    return out


def _describe(facts: tuple[str, str | None, str | None, str | None, float | None]) -> str:
    chain, target, comment, dnat_to, probability = facts
    parts = [chain, f"-j {target}"]
    if dnat_to:
        parts.append(f"--to-destination {dnat_to}")
    if probability is not None:
        parts.append(f"p={probability}")
    if comment:
        parts.append(f'"{comment}"')
    return " ".join(parts)
