"""ClusterSession: the dashboard's Session on a real cluster (k3d, kind, any kubeconfig).

The same four panes and the same stream as the lab; only the transport differs. kopf watches the
Service and its EndpointSlices; faults patch svcwatch's own slice through `SliceEditor` (original
saved first, restored on stop); a stock node agent pod on each watched node -- the endpoints' nodes
and the probed node -- streams tcpdump's pcap and iptables-save through the exec API into the lab's
decoders (`AgentFleet`, session/cluster_nodes.py); probes go from this machine to the node's
InternalIP:nodePort (or --probe), found as session/cluster_setup.py says. Rules are re-read after
every slice change and every RULES_PERIOD seconds, for the counters.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from svcwatch.capture.bpf import filter_for
from svcwatch.cluster.agent import DEFAULT_IMAGE
from svcwatch.cluster.api import ClusterApi, connect
from svcwatch.cluster.demo import demo_documents, fill_slice, first_of
from svcwatch.cluster.faults import SliceEditor, slice_from_body
from svcwatch.cluster.podexec import ExecTransport
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.facts import EndpointFacts
from svcwatch.model.scenario import SCENARIOS, get_scenario
from svcwatch.model.service import Service
from svcwatch.probe.tcp import ProbeLoop
from svcwatch.session.capabilities import Capabilities
from svcwatch.session.cluster_nodes import AgentFleet
from svcwatch.session.cluster_setup import (
    demo_pods,
    probe_target,
    read_service,
    warn_if_unreachable,
    watched_nodes,
)
from svcwatch.session.common import (
    ProbeSettings,
    StreamingSession,
    one_line,
    service_change_text,
    slice_changed,
    stop_in_order,
)
from svcwatch.session.settings import ClusterSettings
from svcwatch.sinks import EventSink

NOT_RUNNING = "the cluster session is not running (start it first)"


class ClusterSession(StreamingSession):
    """A Service on a real cluster, watched, captured, probed and broken on request."""

    kind = "cluster"

    def __init__(self, settings: ClusterSettings) -> None:
        """Checks the flags (a bad scenario, --probe or manifest raises here, before any I/O)."""
        scenario, context = settings.scenario, settings.context
        if scenario is not None:
            get_scenario(scenario)
        self.context_flag, self.kubeconfig_flag = context, settings.kubeconfig
        self.agent_image = settings.agent_image or DEFAULT_IMAGE
        self.take_over = settings.take_over
        self.probing = ProbeSettings.from_probe_flags(settings.probes)
        self.start_scenario = scenario
        self.transport_factory = settings.transport_factory or ExecTransport
        self.docs = demo_documents(list(settings.manifests) or None, settings.namespace)
        slice_doc, service_doc = (
            first_of(self.docs, "EndpointSlice"),
            first_of(self.docs, "Service"),
        )
        assert slice_doc is not None  # demo_documents guarantees one
        self.namespace: str = slice_doc["metadata"]["namespace"]
        self.agent_namespace: str = settings.agent_namespace or self.namespace
        self.in_cluster = settings.in_cluster
        self._target: Any = None  # the ClusterTarget connected to
        self.slice_name: str = slice_doc["metadata"]["name"]
        self.service_name: str = (service_doc or slice_doc)["metadata"].get("name", self.slice_name)
        self.context = context or "?"
        self.api: ClusterApi | None = None
        self.editor: SliceEditor | None = None
        self._service: Service | None = None
        self._slice: EndpointSlice | None = None
        self._fleet = AgentFleet(self._notice)
        self._source: Any = None
        self._probes: ProbeLoop | None = None
        self._node_ip = "127.0.0.1"
        self._kubeconfig_path: str | None = settings.kubeconfig

    @property
    def title(self) -> str:
        return f"cluster {self.context} ({self.namespace}/{self.service_name})"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        """Connect, check the slice, start agents, watch, capture, probe; progress as Notices."""
        self._sink = sink
        found, self.api = connect(
            self.kubeconfig_flag, self.context_flag, in_cluster=self.in_cluster
        )
        self.context, self._kubeconfig_path, self._target = (
            found.context,
            found.kubeconfig,
            found,
        )
        self._notice("info", f"cluster {found.label}, namespace {self.namespace}")
        self._service = read_service(self.api, self.namespace, self.service_name)
        self.editor = SliceEditor(
            self.api, self.context, self.namespace, self.slice_name, take_over=self.take_over
        )
        self._slice = self.editor.attach()
        pod = self._fill_if_stale()
        if self.editor.adopted:
            self._notice(
                "warning",
                f"adopted EndpointSlice {self.namespace}/{self.slice_name} (--take-over): "
                "its controller may undo faults; it is restored on exit",
            )
        if self.start_scenario:
            self.request_scenario(self.start_scenario)
        target, probe_node = probe_target(self.probing.target, self._service, pod)
        self._node_ip = (pod or {}).get("status", {}).get("hostIP") or target[0]
        self._start_nodes_and_watch(sink, watched_nodes(self._slice, probe_node))
        warn_if_unreachable(target, self.probing.timeout, self._notice)
        self._probes = self.probing.start(sink, target, netns=None, notice=self._notice)

    def _start_nodes_and_watch(self, sink: EventSink, nodes: list[str]) -> None:
        """What every cluster session starts once it knows its nodes: an agent on each (capture
        and rules), the filter on the current slice, the watch, and the periodic rules reads."""
        assert self.api is not None  # connected by start()
        self._fleet.start_agents(
            self.api,
            self.agent_namespace,
            nodes,
            sink,
            image=self.agent_image,
            transport_factory=self.transport_factory,
            fallback_ip=self._node_ip,
        )
        self._refilter()
        self._start_watcher()
        self._fleet.start_rules(self.service, self._emit)

    def cancel_start(self) -> None:
        """End the start's waits for agent (and probe) pods: `stop` then deletes them."""
        self._fleet.begin_stop()

    def stop(self) -> None:
        """Stop everything, put the slice back exactly as it was, delete the agent pods."""
        self._fleet.begin_stop()
        stop_in_order((self._probes, self._source), self._quietly)
        self._fleet.stop_captures(self._quietly)
        if self.editor is not None and self.editor.saved is not None:
            if self._quietly(self.editor.restore):
                self._notice(
                    "info",
                    f"EndpointSlice {self.namespace}/{self.slice_name} restored to its original",
                )
        self._fleet.delete_agents(self.api, self.agent_namespace, self._quietly)
        if self.api is not None:
            self.api.close()
        self._probes = self._source = None

    def _quietly(self, action: Callable[[], object]) -> bool:
        """Run one teardown step; a failure is shown and the next step still runs."""
        try:
            action()
            return True
        except Exception as exc:  # teardown must reach every step
            self._notice(
                "error", f"cleanup: {one_line(exc)} (run `svcwatch cluster restore`/`down`)"
            )
            return False

    # --- setup steps -------------------------------------------------------------------------

    def _fill_if_stale(self) -> dict[str, Any] | None:
        """After `kubectl apply -f manifests/`, point the slice at the running pod; that pod."""
        assert self.editor is not None and self.api is not None and self._slice is not None
        pods = demo_pods(self.api, self.docs, self.namespace)
        if not pods:
            return None
        pod = pods[-1]
        addresses = {a for e in self._slice.endpoints for a in e.addresses}
        if (
            self.editor.adopted
            or self.editor.saved is not None
            or pod["status"]["podIP"] in addresses
        ):
            return pod
        slice_doc = first_of(self.docs, "EndpointSlice")
        assert slice_doc is not None
        fill_slice(self.api, slice_doc, pod)
        self._notice(
            "info",
            f"filled EndpointSlice {self.namespace}/{self.slice_name} with pod "
            f"{pod['metadata']['name']} ({pod['status']['podIP']})",
        )
        self._slice = self.editor.attach()
        return pod

    def _start_watcher(self) -> None:
        from svcwatch.watch.kopf_source import KopfSource  # kopf pulls in aiohttp: import on use

        self._source = KopfSource(
            namespace=self.namespace,
            service_name=self.service_name,
            handler=self._on_watch_event,
            on_error=lambda m: self._notice("warning", m),
            context=self.context,
            kubeconfig=self._kubeconfig_path,
            on_stale=self._on_stale,
            login=self._login(),
        )
        self._source.start()

    def _login(self) -> Any:
        """The watcher's login for --in-cluster (None: the kubeconfig, as kopf's default)."""
        target = self._target
        if target is None or target.service_account is None:
            return None
        from svcwatch.cluster.kubeconfig import configure
        from svcwatch.watch.kopf_support import configured_login

        return configured_login(lambda config: configure(target, config))

    @property
    def stale_since(self) -> float | None:
        """When the Service/slice watch broke (time.time()), None while it is live: the UI shows
        "stale for Ns" from it."""
        source = self._source
        return None if source is None else source.stale_since

    def _on_stale(self, since: float | None) -> None:
        if since is None:
            self._notice("stale", "cluster watch live again: slice and rules are current")
        else:
            self._notice("stale", "cluster watch broken: what is shown may be out of date")

    # --- the watch pipeline ------------------------------------------------------------------

    def _on_watch_event(self, event: Any) -> None:
        """A Service or slice change: show it, re-read rules, re-filter. Never raises."""
        try:
            if event.kind == "EndpointSlice":
                self._emit(slice_changed(event, self.current_scenario(), event.body))
                self._take_slice(event)
            elif event.type != "ADDED":
                from svcwatch.watch.convert import service_from_body

                self._service = service_from_body(event.body)
                self._notice("info", service_change_text(event))
            self._refilter()
            self._fleet.want_rules()
        except Exception as exc:  # the watcher thread must survive; the user sees why
            self._notice("error", f"cluster update failed: {one_line(exc)}")

    def _take_slice(self, event: Any) -> None:
        """Keep what a slice event says about the Service's one slice (the demo's own)."""
        if event.name == self.slice_name and event.type != "DELETED":
            self._slice = slice_from_body(dict(event.body))

    def capture_filter(self, node_ip: str | None = None) -> str:
        """The BPF text for the Service and slice on a node (pod network: the endpoints' /16)."""
        assert self._service is not None and self._slice is not None
        first = next((e.address for e in self._slice.endpoints if e.address), "10.42.0.1")
        pod_net = str(ipaddress.ip_network(f"{first}/16", strict=False))
        return filter_for(
            self._service, self._slice, node_ip=node_ip or self._node_ip, pod_cidr=pod_net
        )

    def _refilter(self) -> None:
        self._fleet.refilter(self.capture_filter, self._service.key if self._service else "")

    # --- what the dashboard asks -------------------------------------------------------------

    def service(self) -> Service:
        if self._service is None:
            raise InputError(NOT_RUNNING)
        return self._service

    def current_slice(self) -> EndpointSlice:
        if self._slice is None:
            raise InputError(NOT_RUNNING)
        return self._slice

    def current_scenario(self) -> str | None:
        return self.editor.scenario if self.editor else None

    def capabilities(self) -> Capabilities:
        """Scenarios and edits on svcwatch's own slice, and a watch that can break; no pod moves;
        with several nodes watched, the chain pane switches between them."""
        return Capabilities(
            scenarios=self, slice_editing=self, watch_health=self, node_switching=self.switching()
        )

    def switching(self) -> ClusterSession | None:
        """This session as the node switch, when it watches more than one node."""
        return self if len(self._fleet.nodes) > 1 else None

    def nodes_watched(self) -> list[str]:
        return sorted(self._fleet.nodes)

    def show_next_node(self) -> str:
        return self._fleet.show_next_node()

    def scenarios_offered(self) -> list[str]:
        """The scenarios that only patch the slice (svcwatch moves no pod on a real cluster)."""
        return [name for name, scenario in SCENARIOS.items() if not scenario.pod_action]

    def request_scenario(self, name: str) -> None:
        """Patch svcwatch's slice to the scenario; the watch brings the change back as events."""
        scenario = get_scenario(name)
        if scenario.pod_action:
            raise InputError(
                f"scenario {name} changes a pod, which svcwatch does not do on a real cluster"
            )
        editor = self._editor()
        self._notice("scenario", f"scenario {scenario.name}: {scenario.title}")
        taken = [
            p["status"]["podIP"] for p in self._all_pods() if (p.get("status") or {}).get("podIP")
        ]
        editor.apply_scenario(name, taken)

    def apply_slice_text(self, text: str) -> None:
        self._editor().apply_text(text)

    def _editor(self) -> SliceEditor:
        if self.editor is None:
            raise InputError(NOT_RUNNING)
        return self.editor

    def read_chain(self) -> ChainTree:
        if self._fleet.tree is None:
            return ChainTree(service=self._service.key if self._service else "")
        return self._fleet.tree

    def endpoint_facts(self) -> list[EndpointFacts]:
        """Each endpoint's pod (by IP, in the namespace) and node; listening is unknown here."""
        pods = {(p.get("status") or {}).get("podIP"): p for p in self._all_pods()}
        facts = []
        for endpoint in self.current_slice().endpoints:
            pod = pods.get(endpoint.address)
            ports = [p.port for p in self.current_slice().ports] or [None]
            for port in ports:
                facts.append(
                    EndpointFacts(
                        address=endpoint.address or "",
                        port=port,
                        pod=pod["metadata"]["name"] if pod else None,
                        listening=None,
                        node=endpoint.node_name or ((pod or {}).get("spec") or {}).get("nodeName"),
                    )
                )
        return facts

    def _all_pods(self) -> list[dict[str, Any]]:
        return self.api.list("Pod", self.namespace) if self.api is not None else []
