"""LabNode: one lab, built or attached, and everything a session or the CLI does with it.

The lab is the embedded stand-in for a k3s node: its ObjectStore is the API server (the Service
and the one EndpointSlice as YAML), `reconcile` is kube-proxy (render the stored objects and write
them into the node's netfilter), and the pods are real namespaces with a real echo process. A lab
outlives the process that built it; `attach` picks it up again from its state directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from svcwatch.kubeproxy.mode import NFTABLES
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.lab import build, health, iptables, pods
from svcwatch.lab.instances import (
    LabRecord,
    LabUser,
    PodRecord,
    lab_dir,
    load_record,
    locked,
    recorded_names,
    remove_state,
    save_record,
)
from svcwatch.lab.parsed import (
    BASELINE_FILE,
    parsed_baseline,
    parsed_service,
    parsed_slice,
    unused_ip,
)
from svcwatch.lab.privileges import require_lab_privileges
from svcwatch.lab.proxy import LabProxy, check_proxy_mode
from svcwatch.lab.topology import LabSpec, baseline_slice_of, first_service, validate_lab_name
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import RulesSynced
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.manifest import ManifestSet, dump_slice
from svcwatch.model.scenario import ScenarioContext, apply_scenario, get_scenario
from svcwatch.model.service import Service
from svcwatch.store import ObjectStore, atomic_write, read_stored, scenario_of


@dataclass(frozen=True)
class PodInfo:
    """A pod as the dashboard shows it: is its echo process listening right now?"""

    name: str
    ip: str
    netns: str
    veth: str
    port: int | None
    listening: bool


class LabNode:
    """A built lab: its spec, its pods, its object store, and kube-proxy's job on it."""

    def __init__(self, record: LabRecord, state_root: Path) -> None:
        self.record = record
        self.spec = record.spec
        self.state_root = state_root
        self.store = ObjectStore(lab_dir(state_root, record.spec.name))
        self.proxy = LabProxy(record.spec, record.proxy_mode)  # kube-proxy, in the lab's mode
        self.user: LabUser | None = None  # this process, while a session uses the lab
        self.synced_slice: EndpointSlice | None = None  # the slice the last sync rendered

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        spec: LabSpec,
        manifests: ManifestSet,
        state_root: Path,
        progress: Callable[[str], None] | None = None,
        proxy_mode: str | None = None,
        *,
        user: str | None = None,
        keep: bool = True,
    ) -> LabNode:
        """Build the lab, or reuse it (repairing what is missing) when it is the same spec.

        `proxy_mode` (iptables or nftables) switches a reused lab's kube-proxy mode; None keeps
        the mode the lab remembers (iptables for a new lab). `user` is the command of a session
        that will use the lab ("svcwatch run"); it is recorded as a user until `leave`. `lab up`
        passes none: its lab stays after sessions end, as does a session's with `keep`. A lab
        that must be rebuilt is not rebuilt under a live user: that is a SetupError naming it.
        """
        from svcwatch.lab.lifecycle import up

        say = progress or (lambda _: None)
        return up(spec, manifests, state_root, say, proxy_mode, (user, keep))

    def leave(self, keep: bool = False) -> str:
        """This session stops using the lab (see svcwatch.lab.lifecycle.leave); the exit line."""
        from svcwatch.lab.lifecycle import leave

        return leave(self, keep)

    @classmethod
    def attach(cls, name: str, state_root: Path) -> LabNode:
        """The lab called `name`; InputError naming `lab up` when there is none."""
        record = load_record(state_root, validate_lab_name(name))
        if record is None:
            raise InputError(f"no lab named {name} (run: svcwatch lab up --name {name})")
        return cls(record, state_root)

    @staticmethod
    def down(name: str, state_root: Path) -> bool:
        """Remove the lab's processes, namespaces and state; False if there was nothing."""
        require_lab_privileges()
        validate_lab_name(name)
        with locked(state_root, name):
            found = build.teardown(name, load_record(state_root, name))
            return remove_state(state_root, name) or found

    @staticmethod
    def down_all(state_root: Path) -> list[str]:
        """Tear down every lab under `state_root`, and every lab whose namespaces are left after
        its state directory went; returns their names."""
        return [name for name in LabNode.list_names(state_root) if LabNode.down(name, state_root)]

    @staticmethod
    def list_names(state_root: Path) -> list[str]:
        """Labs recorded under `state_root`, and labs whose namespaces exist without a record."""
        return sorted(set(recorded_names(state_root)) | set(build.orphan_labs(state_root)))

    def faults(
        self, *, rules: bool = True, rules_for: EndpointSlice | None = None
    ) -> list[health.Fault]:
        """What is wrong with the data plane now (see svcwatch.lab.health)."""
        self._reload()
        return health.check(self, rules_for, rules=rules)

    def repair(self, faults: list[health.Fault], *, rules: bool = True) -> list[str]:
        """Repair `faults` in place under the lab lock (re-checked there); what was done."""
        from svcwatch.lab.repair import repair

        with locked(self.state_root, self.spec.name):
            self._reload()
            current = health.check(self, rules=rules)
            wanted = {f.text for f in faults}
            done = repair(self, [f for f in current if f.text in wanted], rules=rules)
            save_record(self.state_root, self.record)
            return done

    def forget_written_rules(self) -> None:
        """The kernel was changed behind the last sync's back: the next sync reads it first."""
        self.proxy.forget()

    # --- objects ---------------------------------------------------------------------------

    def write_objects(self, manifests: ManifestSet, keep_slice: bool) -> None:
        service = first_service(manifests)
        stored = replace(service, cluster_ip=self.spec.cluster_ip)  # as the API server assigns it
        self.store.write_service(yaml.safe_dump(stored.to_manifest(), sort_keys=False))
        atomic_write(
            self.store.root / BASELINE_FILE, dump_slice(baseline_slice_of(manifests, service))
        )
        if keep_slice and self.store.slice_path.exists():
            try:
                self.store.read_slice()
                return
            except InputError:
                pass
        self.store.write_slice(self.baseline_slice(), scenario="happy")

    def service(self) -> Service:
        path = self.store.service_path
        try:
            stored = parsed_service(read_stored(path), str(path))
        except FileNotFoundError:
            stored = self.store.read_service()  # raises the store's "is the lab up?" InputError
        return replace(stored, cluster_ip=self.spec.cluster_ip)

    def baseline_slice(self) -> EndpointSlice:
        """The manifests' slice, pointing at the current socat pod (a rollout moves it)."""
        baseline = parsed_baseline((self.store.root / BASELINE_FILE).read_text())
        echo = self.echo_record()
        moved = tuple(
            replace(e, addresses=(echo.ip, *e.addresses[1:]))
            if e.address == self.spec.echo_ip
            else e
            for e in baseline.endpoints
        )
        return replace(baseline.with_endpoints(*moved), resource_version=None, annotations={})

    def current_slice(self) -> EndpointSlice:
        """The stored slice; InputError if the file was hand-edited into something invalid."""
        path = self.store.slice_path
        try:
            return parsed_slice(read_stored(path), str(path))
        except FileNotFoundError:
            return self.store.read_slice()  # raises the store's "is the lab up?" InputError

    def current_scenario(self) -> str | None:
        try:
            return scenario_of(self.current_slice())
        except InputError:
            return None

    def scenario_context(self) -> ScenarioContext:
        used = frozenset(p.ip for p in self.record.pods)
        return ScenarioContext(baseline=self.baseline_slice(), unused_ip=unused_ip(self.spec, used))

    def set_scenario(self, name: str) -> EndpointSlice:
        """Do the scenario's pod action, then store its slice (rules follow on `reconcile`)."""
        scenario = get_scenario(name)
        if scenario.pod_action == "stop-listener":
            self.stop_listener()
        elif scenario.pod_action == "rollout":
            self.rollout()
        else:
            self.start_listener()  # a scenario without a pod action runs on a healthy pod
        return self.store.write_slice(apply_scenario(name, self.scenario_context()), scenario=name)

    def apply_slice(self, slice_: EndpointSlice, scenario: str | None = None) -> EndpointSlice:
        """Store a user's slice after checking it belongs to the lab's Service."""
        service = self.service()
        if slice_.namespace != service.namespace or slice_.service_name != service.name:
            raise InputError(
                f"the slice is for service {slice_.namespace}/{slice_.service_name}, "
                f"the lab serves {service.key}",
                source=slice_.key,
                field="metadata.labels",
            )
        if slice_.address_type != "IPv4":
            raise InputError("the lab is IPv4-only", source=slice_.key, field="addressType")
        return self.store.write_slice(replace(slice_, resource_version=None), scenario=scenario)

    # --- kube-proxy --------------------------------------------------------------------------

    def reconcile(self) -> RulesSynced:
        """Render the stored Service and slice and write them into the node, as kube-proxy syncs."""
        with locked(self.state_root, self.spec.name, "sync"):
            self._follow_mode()
            service, slice_ = self.service(), self.current_slice()
            # The last sync's memory spares reading the kernel first (kube-proxy's partial sync);
            # when the kernel was changed behind its back, the proxy does a full sync instead.
            result = self.proxy.sync(service, slice_)
            self.synced_slice = slice_
        return result.event(service.key, self.proxy_backend())

    def _follow_mode(self) -> None:
        """Another process (`lab up --proxy-mode`) switched the mode: sync in the new one."""
        recorded = load_record(self.state_root, self.spec.name)
        if recorded is not None and recorded.proxy_mode != self.proxy.mode:
            self.record.proxy_mode = recorded.proxy_mode
            self.proxy = LabProxy(self.spec, recorded.proxy_mode)

    def set_proxy_mode(self, mode: str) -> RulesSynced:
        """Swap kube-proxy's mode on the running lab (rules swapped, see `LabProxy.switch`)."""
        check_proxy_mode(mode)
        # Locks are always taken lab first, then sync (as `lab up` and a repair do): the other
        # order could deadlock against them.
        with (
            locked(self.state_root, self.spec.name),
            locked(self.state_root, self.spec.name, "sync"),
        ):
            service, slice_ = self.service(), self.current_slice()
            result = self.proxy.switch(mode, service, slice_, self.iptables_backend())
            self.synced_slice = slice_
            self._reload()
            self.record.proxy_mode = mode
            save_record(self.state_root, self.record)
        return result.event(service.key, self.proxy_backend())

    def read_chain(self) -> ChainTree:
        return self.proxy.read_tree(self.service(), self.iptables_backend())

    def proxy_backend(self) -> str:
        """What writes the rules: `nftables` (kube-proxy's nftables mode) or iptables' flavour."""
        return NFTABLES if self.proxy.mode == NFTABLES else self.iptables_backend()

    def iptables_backend(self) -> str:
        if not self.record.backend:
            self.record.backend = iptables.backend(self.spec.node_ns)
        return self.record.backend

    def drift(self) -> list[str]:
        """How the kernel differs from what the store says it should be (empty: in sync)."""
        return [f.text for f in self.faults()]

    def endpoint_facts(self) -> list[EndpointFacts]:
        """For each endpoint and port in the stored slice: which pod has the IP, does it listen?"""
        slice_ = self.current_slice()
        by_ip = {p.ip: p for p in self.record.pods}
        ports = [p.port for p in slice_.ports] or [None]
        facts = []
        for endpoint in slice_.endpoints:
            pod = by_ip.get(endpoint.address or "")
            listening = pods.listening_ports(pod.netns) if pod else set()
            for port in ports:
                facts.append(
                    EndpointFacts(
                        endpoint.address or "",
                        port,
                        pod.name if pod else None,
                        (port in listening) if pod and port else None,
                        self.spec.node_ns,
                    )
                )
        return facts

    # --- pods ------------------------------------------------------------------------------

    @property
    def pods(self) -> list[PodInfo]:
        return [self._info(p) for p in self.record.pods]

    @property
    def echo_pod(self) -> PodInfo:
        return self._info(self.echo_record())

    def echo_record(self) -> PodRecord:
        pod = self.record.pod(self.record.echo_pod)
        if pod is None:
            raise InputError(
                f"lab {self.spec.name} has no echo pod "
                f"(run: svcwatch lab up --name {self.spec.name})"
            )
        return pod

    def _info(self, pod: PodRecord) -> PodInfo:
        listening = pod.port is not None and pod.port in pods.listening_ports(pod.netns)
        return PodInfo(pod.name, pod.ip, pod.netns, pod.veth, pod.port, listening)

    def _reload(self) -> None:
        self.record = load_record(self.state_root, self.spec.name) or self.record

    def _pod_record(self, name: str | None) -> PodRecord:
        self._reload()
        if name is None:
            return self.echo_record()
        pod = self.record.pod(name)
        if pod is None:
            known = ", ".join(p.name for p in self.record.pods)
            raise InputError(f"no pod {name!r} in lab {self.spec.name} (pods: {known})")
        return pod

    def stop_listener(self, pod: str | None = None) -> None:
        """Kill the pod's echo process (the pod crashed): its kernel now answers SYNs with RST."""
        with locked(self.state_root, self.spec.name):
            record = self._pod_record(pod)
            if record.echo is not None:
                pods.kill_process(record.echo)
            record.echo = None
            save_record(self.state_root, self.record)

    def start_listener(self, pod: str | None = None) -> None:
        """Start the pod's echo process again (no-op when it is running)."""
        with locked(self.state_root, self.spec.name):
            record = self._pod_record(pod)
            if record.port is None or (record.echo is not None and record.echo.alive()):
                return
            record.echo = pods.wait_ready(pods.start_echo(self.spec, record), record.name)
            save_record(self.state_root, self.record)

    def rollout(self, retire_old: bool = True) -> PodInfo:
        """A new socat pod with a new name and IP; the old one goes unless `retire_old` is False."""
        from svcwatch.lab.rollout import replace_echo_pod

        with locked(self.state_root, self.spec.name):
            self._reload()
            new = replace_echo_pod(self.record, retire_old)
            save_record(self.state_root, self.record)
        return self._info(new)

    def retire_pod(self, name: str) -> None:
        """Remove a pod (its process, veth and namespace): the end of a rollout."""
        from svcwatch.lab.rollout import retire

        with locked(self.state_root, self.spec.name):
            pod = self._pod_record(name)  # reloads self.record: look it up before retiring
            retire(self.record, pod)
            save_record(self.state_root, self.record)
