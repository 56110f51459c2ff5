"""LabSession: the lab node, its watcher, the packet capture and the probes, as one Session.

This is where the backends meet. The lab's object store is its API server; the watcher (LabSource)
follows it, and every slice change — from a scenario key, `svcwatch lab apply` in another
terminal, or an editor — takes the same path, the one kube-proxy and a CNI capture would take:

    endpointslice (seen, with a diff)  ->  [--sync-delay]  ->  iptables (rules synced)
    ->  capture-started (the BPF filter re-derived)  ->  sync timings (write->rules, ->first packet)

Only the process holding the lab's controller lease reconciles; a second svcwatch on the same lab
watches, captures and probes, and leaves the rules to the first one (and takes over when it quits).
Each session is a user of the lab (svcwatch.lab.lifecycle): on stop it leaves, and the lab is torn
down only if it was built by a session, not kept, and this was its last user. A LabMonitor checks
the data plane every few seconds and repairs what broke, or says why it cannot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from svcwatch.capture.bpf import filter_for
from svcwatch.capture.sniffer import NodeCapture
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.locations import state_dir
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.events import Event, RulesSynced
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.scenario import SCENARIOS, get_scenario
from svcwatch.model.service import Service
from svcwatch.probe.tcp import ProbeLoop
from svcwatch.session.capabilities import Capabilities
from svcwatch.session.common import (
    ProbeSettings,
    StreamingSession,
    node_port_of,
    one_line,
    service_change_text,
    slice_changed,
    stop_in_order,
)
from svcwatch.session.lab_rollout import rollout_with_prestop
from svcwatch.session.settings import LabSettings
from svcwatch.sinks import EventSink
from svcwatch.store import scenario_of, written_at
from svcwatch.watch.sync import SyncTracker

if TYPE_CHECKING:
    from svcwatch.lab.node import LabNode
    from svcwatch.session.lab_monitor import LabMonitor
    from svcwatch.watch.events import WatchEvent
    from svcwatch.watch.lab_source import LabSource


class _TimingSink:
    """Passes events on, and lets the sync tracker close a timing on the first packet or probe."""

    def __init__(self, downstream: EventSink, tracker: SyncTracker, lock: threading.Lock) -> None:
        self.downstream, self.tracker, self.lock = downstream, tracker, lock

    def emit(self, event: Event) -> None:
        self.emit_many((event,))

    def emit_many(self, events: Sequence[Event]) -> None:
        self.downstream.emit_many(events)
        with self.lock:
            timings = [t for t in map(self.tracker.observed, events) if t is not None]
        if timings:
            self.downstream.emit_many(timings)


class LabSession(StreamingSession):
    """A lab built (or reused) from manifests, streaming everything it sees into one sink."""

    kind = "lab"

    def __init__(self, settings: LabSettings) -> None:
        """Checks everything it can before building (see the comments); builds nothing yet."""
        from svcwatch.lab.privileges import require_lab_privileges
        from svcwatch.lab.proxy import require_proxy_tools
        from svcwatch.lab.sources import load_manifests
        from svcwatch.lab.topology import LabSpec

        scenario, proxy_mode = settings.scenario, settings.proxy_mode
        if scenario is not None:
            get_scenario(scenario)  # unknown names fail before anything is built
        require_lab_privileges()  # no root: one line before any output or any UI
        require_proxy_tools(proxy_mode)  # no iptables/nft, bad mode: likewise, naming the package
        # Bad manifests fail here too, naming file and field, before the dashboard is drawn.
        self.manifests = load_manifests(list(settings.manifests) or None)
        self.spec = LabSpec.from_manifests(
            self.manifests, settings.lab_name, idle_pods=settings.pods
        )
        self.lab_name = settings.lab_name
        self.start_scenario = scenario
        self.sync_delay = settings.sync_delay
        self.requested_proxy_mode = proxy_mode  # None: the lab keeps the mode it remembers
        self.keep = settings.keep
        self.probing = ProbeSettings.from_probe_flags(settings.probes)
        self.state_root = settings.state_root or state_dir()
        self.node: LabNode | None = None
        self.controller = False
        self._capture: NodeCapture | None = None
        self._source: LabSource | None = None
        self._probes: ProbeLoop | None = None
        self._tracker = SyncTracker(expects_rules=True)
        self._tracker_lock = threading.Lock()
        self._monitor: LabMonitor | None = None
        self._syncing = threading.Lock()  # held while a watch event is synced (see LabMonitor)
        self._parts_lock = threading.Lock()  # stop() and the monitor both stop the parts
        self.final_words: str | None = None

    @property
    def title(self) -> str:
        node_ip = self.node.spec.node_ip if self.node else "?"
        return f"lab {self.lab_name} (node {node_ip})"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        """Build or reuse the lab, then watch, capture and probe; progress arrives as Notices."""
        from svcwatch.lab import claim_controller  # the lab pulls in pyroute2: import on use

        self._sink = _TimingSink(sink, self._tracker, self._tracker_lock)
        self.node = self._bring_up()
        spec = self.node.spec
        self.controller = claim_controller(spec.name, self.state_root)
        if not self.controller:
            self._notice(
                "warning",
                "another svcwatch reconciles this lab: this one watches, captures "
                "and probes, and leaves the iptables rules to it",
            )
        if self.start_scenario:
            self.node.set_scenario(self.start_scenario)
        self._capture = NodeCapture(
            spec.node_ns, self._sink, service_key=self.node.service().key, node=None
        )
        self._start_watcher()  # its first delivery reconciles and starts the capture
        target = self.probing.target or (spec.node_ip, self._node_port())
        self._probes = self.probing.start(
            self._sink, target, netns=spec.client_ns, notice=self._notice
        )
        self._start_monitor()

    def _bring_up(self) -> LabNode:
        from svcwatch.lab.node import LabNode

        spec = self.spec
        self._notice("info", f"lab {spec.name}: building or reusing (node {spec.node_ip})")
        return LabNode.up(
            spec,
            self.manifests,
            self.state_root,
            progress=lambda m: self._notice("info", m),
            proxy_mode=self.requested_proxy_mode,
            user=_command_name(),
            keep=self.keep,
        )

    def _start_watcher(self) -> None:
        from svcwatch.watch.lab_source import LabSource  # watchfiles is a Rust extension

        assert self.node is not None
        self._source = LabSource(
            self.node.store,
            self._on_watch_event,
            on_error=lambda message: self._notice("warning", message),
        )
        self._source.start()

    def _start_monitor(self) -> None:
        from svcwatch.lab import claim_controller
        from svcwatch.session.lab_monitor import LabMonitor

        assert self.node is not None
        name = self.node.spec.name

        def take_control() -> bool:
            """The syncing svcwatch quit: sync now, in case it left a change unsynced."""
            self.controller = claim_controller(name, self.state_root)
            if self.controller:
                with self._syncing:
                    self._sync_and_refilter(None)
            return self.controller

        self._monitor = LabMonitor(
            self.node,
            notice=self._notice,
            is_controller=lambda: self.controller,
            take_control=take_control,
            sync_idle=self._syncing,
            on_lab_gone=self._lab_gone,
        )
        self._monitor.start()

    def _lab_gone(self, message: str) -> None:
        """`lab down` removed the lab under this session: stop what fed on it and say so."""
        with self._parts_lock:
            stop_in_order((self._probes, self._source, self._capture))
            self._probes = self._source = self._capture = None
        self._notice("ended", message)

    def stop(self) -> None:
        """Stop probes, watcher, capture and the monitor, give the lease back, and leave the lab:
        it is torn down only if this session was its last user and nobody asked to keep it."""
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None
        with self._parts_lock:
            stop_in_order((self._probes, self._source, self._capture))
            self._probes = self._source = self._capture = None
        if self.node is None:
            return
        from svcwatch.lab import release_controller

        if self.controller:
            release_controller(self.node.spec.name, self.state_root)
        self.final_words = self.node.leave(keep=self.keep)
        self._notice("info", self.final_words)
        self.node = None

    def exit_line(self) -> str | None:
        """What happened to the lab when this session ended (kept, and why; or torn down)."""
        return self.final_words

    # --- the watch pipeline ------------------------------------------------------------------

    def _on_watch_event(self, event: WatchEvent) -> None:
        """One object change: show it, [delay], reconcile, re-filter, time it. Never raises."""
        with self._syncing:
            self._handle_watch_event(event)

    def _handle_watch_event(self, event: WatchEvent) -> None:
        try:
            if event.kind == "EndpointSlice":
                self._on_slice_event(event)
            elif event.type != "ADDED":  # the initial Service comes with its slice, synced then
                self._notice("info", service_change_text(event))
                self._sync_and_refilter(None)
        except Exception as exc:  # the watcher thread must survive a failed sync; the user sees why
            self._notice("error", f"sync failed: {one_line(exc)}")

    def _on_slice_event(self, event: WatchEvent) -> None:
        from svcwatch.watch.convert import slice_from_body

        body = event.new or event.body
        slice_ = slice_from_body(body, "lab")
        scenario = scenario_of(slice_)
        self._emit(slice_changed(event, scenario, body))
        if event.type == "DELETED":
            self._notice(
                "warning", f"EndpointSlice {event.key} deleted: the rules keep the last version"
            )
            return
        if self._capture is not None and self._capture.running:  # a change, not the first state
            with self._tracker_lock:
                self._tracker.written(
                    event.resource_version, written_at(slice_) or event.seen_at, slice_key=event.key
                )
            if self.sync_delay:
                time.sleep(self.sync_delay)  # kube-proxy's minSyncPeriod: the rules lag the object
        self._sync_and_refilter(event.resource_version)

    def _sync_and_refilter(self, resource_version: str | None) -> None:
        assert self.node is not None and self._capture is not None
        if self.controller:
            synced: RulesSynced = self.node.reconcile()
            self._emit(synced)
            with self._tracker_lock:
                timing = self._tracker.rules_applied(resource_version, synced.ts)
            if timing is not None:
                self._emit(timing)
        bpf = self.capture_filter()
        if not self._capture.running:
            self._capture.start(bpf)
        elif bpf != self._capture.bpf or resource_version is not None:
            self._capture.set_filter(bpf)

    def capture_filter(self) -> str:
        """The BPF text for the current Service and slice on this lab's node."""
        assert self.node is not None
        spec = self.node.spec
        return filter_for(
            self.node.service(),
            self.node.current_slice(),
            node_ip=spec.node_ip,
            pod_cidr=spec.pod_cidr,
            client_ip=spec.client_ip,
        )

    def _node_port(self) -> int:
        service = self.service()
        port = node_port_of(service)
        if port is None:
            raise InputError(
                f"service {service.key} has no nodePort to probe (pass --probe HOST:PORT)"
            )
        return port

    # --- what the dashboard asks -------------------------------------------------------------

    def _lab(self) -> LabNode:
        if self.node is None:
            raise InputError("the lab is not running (start the session first)")
        return self.node

    def service(self) -> Service:
        return self._lab().service()

    def current_slice(self) -> EndpointSlice:
        return self._lab().current_slice()

    def current_scenario(self) -> str | None:
        return self._lab().current_scenario()

    def capabilities(self) -> Capabilities:
        """The lab does everything a live session can: scenarios, edits, the preStop rollout,
        the exit report, and switching kube-proxy's mode."""
        return Capabilities(
            scenarios=self,
            slice_editing=self,
            rollout_replay=self,
            exit_report=self,
            proxy_modes=self,
        )

    @property
    def proxy_mode(self) -> str:
        return self._lab().proxy.mode

    def switch_proxy_mode(self, mode: str | None = None) -> str:
        """Swap the lab's rules to `mode` (None: the other mode) and stream the sync."""
        node = self._lab()
        old = node.proxy.mode
        new = mode or ("iptables" if old == "nftables" else "nftables")
        synced = node.set_proxy_mode(new)
        self._notice("scenario", f"kube-proxy mode {old} -> {new}: rules swapped")
        self._emit(synced)
        return new

    def scenarios_offered(self) -> list[str]:
        return list(SCENARIOS)

    def request_scenario(self, name: str) -> None:
        """Write the scenario's slice; the watcher then carries it through like any other change."""
        scenario = get_scenario(name)
        self._notice("scenario", f"scenario {scenario.name}: {scenario.title}")
        self._lab().set_scenario(name)

    def replay_rollout_with_prestop(self, grace: float = 0.2, timeout: float = 30.0) -> None:
        """A rollout that loses no connection, as a preStop sleep makes it (lab_rollout.py)."""
        rollout_with_prestop(self._lab(), self._notice, grace, timeout)

    def apply_slice_text(self, text: str) -> None:
        found = collect(parse_documents(text, "edited slice"))
        if len(found.slices) != 1:
            raise InputError(f"expected exactly one EndpointSlice, found {len(found.slices)}")
        self._lab().apply_slice(found.slices[0])

    def read_chain(self) -> ChainTree:
        return self._lab().read_chain()

    def endpoint_facts(self) -> list[EndpointFacts]:
        return self._lab().endpoint_facts()


def _command_name() -> str:
    """How this process was started, for other svcwatch commands to name it (`svcwatch run`)."""
    import sys

    words = [w for w in sys.argv[1:] if not w.startswith("-")]
    sub = words[0] if words and words[0] in ("run", "serve") else ""
    return f"svcwatch {sub}".strip()
