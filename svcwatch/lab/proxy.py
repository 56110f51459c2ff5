"""kube-proxy on the lab node, in either of its modes: iptables (the default) or nftables.

One object per LabNode remembers which mode the node is in and what its last sync wrote, so the
node's `reconcile`, `read_chain`, `drift` and a mode switch ask here instead of branching on the
mode themselves. iptables mode is `lab.iptables` (iptables-restore --noflush of KUBE-* chains);
nftables mode is `lab.nftables` (one `nft -f` batch replacing `table ip kube-proxy`), and then the
node has no KUBE-* iptables chains at all.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from svcwatch.kubeproxy.mode import IPTABLES, IPTABLES_NFT, NFTABLES, PROXY_MODES
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.lab import iptables, nftables
from svcwatch.lab.topology import LabSpec
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.events import RulesSynced
from svcwatch.model.service import Service

K3S_SERVICE_CIDR = "10.43.0.0/16"


def check_proxy_mode(mode: str) -> str:
    """The mode, or a one-line InputError naming the ones there are."""
    if mode not in PROXY_MODES:
        raise InputError(f"unknown proxy mode {mode!r} (known: {', '.join(PROXY_MODES)})")
    return mode


def require_proxy_tools(mode: str | None) -> None:
    """The binaries a lab in this mode needs (iptables always: it is how the lab leaves iptables
    mode too), as one-line SetupErrors naming the Debian package; a bad mode is an InputError."""
    iptables.iptables_tool("iptables-restore")
    if mode is not None and check_proxy_mode(mode) == NFTABLES:
        nftables.nft_tool()


def service_cidr_of(spec: LabSpec) -> str:
    """k3s' Service CIDR when the Service's ClusterIP is in it, else just that address."""
    inside = ipaddress.ip_address(spec.cluster_ip) in ipaddress.ip_network(K3S_SERVICE_CIDR)
    return K3S_SERVICE_CIDR if inside else f"{spec.cluster_ip}/32"


@dataclass(frozen=True)
class ProxySync:
    """One sync: per-Service chains created and deleted, and how long the write took."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    took_ms: float

    def event(self, service_key: str, proxy_backend: str) -> RulesSynced:
        """This sync as the stream's rules event: kind `iptables`, or `nftables` in that mode
        (`proxy_backend` also names iptables' flavour)."""
        kind = NFTABLES if proxy_backend == NFTABLES else IPTABLES
        return RulesSynced(time.time(), service_key, self.added, self.removed, proxy_backend,
                           took_ms=self.took_ms, kind=kind)  # fmt: skip


class LabProxy:
    """kube-proxy's job on one lab node: sync, read back, want, switch modes."""

    def __init__(self, spec: LabSpec, mode: str) -> None:
        self.spec = spec
        self.mode = check_proxy_mode(mode)
        self._iptables: iptables.Written | None = None
        self._nft: nftables.NftWritten | None = None

    # --- sync ----------------------------------------------------------------------------------

    def forget(self) -> None:
        """The kernel was changed behind the last sync's back: the next sync reads it first."""
        self._iptables = self._nft = None

    def sync(self, service: Service, slice_: EndpointSlice) -> ProxySync:
        """Write the Service's rules in the current mode; retries as a full sync when the
        remembered state turned out wrong (someone changed the kernel behind our back)."""
        try:
            return self._sync_once(service, slice_)
        except SetupError:
            if self._iptables is None and self._nft is None:
                raise
            self._iptables = self._nft = None
            return self._sync_once(service, slice_)

    def _sync_once(self, service: Service, slice_: EndpointSlice) -> ProxySync:
        if self.mode == IPTABLES:
            result = iptables.sync_service(
                self.spec.node_ns, service, slice_, self.spec.cluster_cidr, self._iptables
            )
            self._iptables = result.written
            return ProxySync(result.added, result.removed, result.took_ms)
        return self._sync_nft(service, slice_, drop=())

    def _table(self, service: Service, slice_: EndpointSlice) -> tuple[str, list[str]]:
        spec = self.spec
        return nftables.render_table(
            service, slice_, spec.cluster_cidr, spec.node_ip, service_cidr_of(spec)
        )

    def _sync_nft(
        self, service: Service, slice_: EndpointSlice, drop: tuple[str, ...]
    ) -> ProxySync:
        """A partial sync when the last one's table is known (only what changed, as kube-proxy
        does between full syncs), else a full one that replaces the whole table."""
        text, chains = self._table(service, slice_)
        before = set(self._nft.chains) if self._nft else nftables.kernel_chains(self.spec.node_ns)
        took = self._partial(text, chains) if self._nft is not None and not drop else None
        if took is None:
            took = nftables.apply(self.spec.node_ns, nftables.replace_batch(text, drop))
            self._nft = nftables.NftWritten(frozenset(chains), text)
        return ProxySync(
            tuple(sorted(set(chains) - before)), tuple(sorted(before - set(chains))), took
        )

    def _partial(self, text: str, chains: list[str]) -> float | None:
        """Write only what changed since the last sync; None when that takes a full sync."""
        from svcwatch.kubeproxy.nft_partial import STALE_SECONDS, partial_batch, stale_chains

        assert self._nft is not None
        now = time.monotonic()
        stale = {c: t for c, t in self._nft.stale.items() if c not in chains}
        ripe = frozenset(c for c, t in stale.items() if now - t >= STALE_SECONDS)
        batch = partial_batch(self._nft.text, text, ripe)
        if batch is None:
            return None
        took = nftables.apply(self.spec.node_ns, batch) if batch else 0.0
        stale = {c: t for c, t in stale.items() if c not in ripe}
        stale |= {c: now for c in stale_chains(self._nft.text, text)}
        self._nft = nftables.NftWritten(frozenset(chains), text, stale)
        return took

    # --- read back -----------------------------------------------------------------------------

    def read_tree(self, service: Service, iptables_backend: str) -> ChainTree:
        if self.mode == IPTABLES:
            return iptables.read_tree(self.spec.node_ns, service, iptables_backend)
        return nftables.read_tree(self.spec.node_ns, service)

    def desired_tree(self, service: Service, slice_: EndpointSlice) -> ChainTree:
        if self.mode == IPTABLES:
            return iptables.desired_tree(service, slice_, self.spec.cluster_cidr)
        return nftables.desired_tree(self._table(service, slice_)[0], service)

    # --- switch --------------------------------------------------------------------------------

    def switch(
        self, mode: str, service: Service, slice_: EndpointSlice, iptables_backend: str
    ) -> ProxySync:
        """Swap the node to `mode`: the new rules in first, the old ones out (make before break).

        iptables (nf_tables backend) -> nftables is one `nft -f` batch that adds kube-proxy's
        table and deletes the iptables tables holding the KUBE-* chains.
        """
        check_proxy_mode(mode)
        if mode == self.mode:
            return self.sync(service, slice_)
        node_ns = self.spec.node_ns
        if mode == NFTABLES:
            old = iptables.kernel_chains(node_ns)
            one_batch = iptables_backend == IPTABLES_NFT
            drop = nftables.IPTABLES_NFT_TABLES if one_batch else ()
            self.mode, self._nft = NFTABLES, None
            synced = self._sync_nft(service, slice_, drop)
            if not one_batch:
                iptables.remove_all(node_ns)
            self._iptables = None
            return ProxySync(synced.added, tuple(sorted(old)), synced.took_ms)
        old = nftables.kernel_chains(node_ns)
        iptables.install_hooks(node_ns, self.spec.cluster_cidr)
        self.mode, self._iptables = IPTABLES, None
        synced = self.sync(service, slice_)
        took = nftables.apply(node_ns, nftables.remove_batch())
        self._nft = None
        return ProxySync(synced.added, tuple(sorted(old)), synced.took_ms + took)
