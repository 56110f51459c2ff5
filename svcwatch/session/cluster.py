"""ClusterSession: the dashboard's Session on a real cluster (k3d, kind, any kubeconfig).

The same four panes and the same stream as the lab; only the transport differs. kopf watches the
Service and its EndpointSlices; faults patch svcwatch's own slice through `SliceEditor` (original
saved first, restored on stop); a stock node agent pod on each watched node -- the endpoints' nodes
and the probed node -- streams tcpdump's pcap and iptables-save through the exec API into the lab's
decoders; probes go from this machine to the node's InternalIP:nodePort (or --probe). Rules are
re-read after every slice change and every RULES_PERIOD seconds, for the counters.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

from svcwatch.capture.bpf import filter_for
from svcwatch.cluster.agent import DEFAULT_IMAGE, NodeAgent, delete_agents, start_agent
from svcwatch.cluster.api import ClusterApi, NotFound, connect
from svcwatch.cluster.demo import demo_documents, fill_slice, first_of, is_ready, pod_labels
from svcwatch.cluster.faults import SliceEditor, slice_from_body
from svcwatch.cluster.transport import ExecTransport
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.events import RulesSynced, SliceChanged
from svcwatch.model.scenario import get_scenario
from svcwatch.model.service import Service
from svcwatch.probe.tcp import ProbeLoop
from svcwatch.session.base import EndpointFacts
from svcwatch.session.cluster_nodes import NodeWatch, chain_tree, emit_notice
from svcwatch.session.lab import parse_probe_target
from svcwatch.sinks import EventSink

RULES_PERIOD = 3.0  # seconds between rule reads when nothing changed (counters move)
PORT_MAPPING_HINT = (
    'k3d: create the cluster with `-p "{port}:{port}@server:0"` and pass --probe 127.0.0.1:{port}; '
    "kind: add extraPortMappings (containerPort {port}, hostPort {port}) and pass --probe "
    "127.0.0.1:{port}"
)


class ClusterSession:
    """A Service on a real cluster, watched, captured, probed and broken on request."""

    kind = "cluster"

    def __init__(
        self,
        *,
        context: str | None = None,
        kubeconfig: str | None = None,
        namespace: str | None = None,
        agent_image: str = DEFAULT_IMAGE,
        take_over: bool = False,
        interval: float = 1.0,
        timeout: float = 2.0,
        payload: str | bytes = "hello",
        probe_target: str | None = None,
        scenario: str | None = None,
        manifests: Any = None,
        transport_factory: Any = None,
        **_ignored: Any,
    ) -> None:
        """Takes the CLI's flags (svcwatch.cli.options); `transport_factory(api, namespace, pod,
        node)` replaces the exec transport (tests run the agent's commands locally)."""
        if scenario is not None:
            get_scenario(scenario)
        self.context_flag, self.kubeconfig_flag = context, kubeconfig
        self.agent_image, self.take_over = agent_image, take_over
        self.interval, self.timeout = interval, timeout
        self.payload = payload.encode() if isinstance(payload, str) else payload
        self.probe_target = parse_probe_target(probe_target) if probe_target else None
        self.start_scenario = scenario
        self.transport_factory = transport_factory or ExecTransport
        self.docs = demo_documents(list(manifests or []) or None, namespace)
        slice_doc, service_doc = (
            first_of(self.docs, "EndpointSlice"),
            first_of(self.docs, "Service"),
        )
        assert slice_doc is not None  # demo_documents guarantees one
        self.namespace: str = slice_doc["metadata"]["namespace"]
        self.slice_name: str = slice_doc["metadata"]["name"]
        self.service_name: str = (service_doc or slice_doc)["metadata"].get("name", self.slice_name)
        self.context = context or "?"
        self.api: ClusterApi | None = None
        self.editor: SliceEditor | None = None
        self._sink: EventSink | None = None
        self._service: Service | None = None
        self._slice: EndpointSlice | None = None
        self._nodes: dict[str, NodeWatch] = {}
        self._agents: list[str] = []
        self._tree: ChainTree | None = None
        self._source: Any = None
        self._probes: ProbeLoop | None = None
        self._rules_wanted = threading.Event()
        self._stopping = threading.Event()
        self._rules_thread: threading.Thread | None = None
        self._node_ip = "127.0.0.1"
        self._kubeconfig_path: str | None = kubeconfig

    @property
    def title(self) -> str:
        return f"cluster {self.context} ({self.namespace}/{self.service_name})"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        """Connect, check the slice, start agents, watch, capture, probe; progress as Notices."""
        self._sink = sink
        target, self.api = connect(self.kubeconfig_flag, self.context_flag)
        self.context, self._kubeconfig_path = target.context, target.kubeconfig
        self._notice("info", f"cluster {target.label}, namespace {self.namespace}")
        self._service = self._read_service()
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
        probe_target, probe_node = self._probe_target(pod)
        self._node_ip = (pod or {}).get("status", {}).get("hostIP") or probe_target[0]
        self._start_agents(self._watched_nodes(probe_node))
        self._start_watcher()
        self._rules_thread = threading.Thread(
            target=self._rules_loop, name="cluster-rules", daemon=True
        )
        self._rules_thread.start()
        self._start_probes(probe_target)

    def stop(self) -> None:
        """Stop everything, put the slice back exactly as it was, delete the agent pods."""
        self._stopping.set()
        self._rules_wanted.set()
        for part in (self._probes, self._source):
            self._quietly(part.stop if part is not None else None)
        for watch in self._nodes.values():
            self._quietly(watch.stop_capture)
        if self._rules_thread is not None:
            self._rules_thread.join(timeout=10)
        if self.editor is not None and self.editor.saved is not None:
            if self._quietly(self.editor.restore):
                self._notice(
                    "info",
                    f"EndpointSlice {self.namespace}/{self.slice_name} restored to its original",
                )
        if self.api is not None and self._agents:
            api, agents = self.api, list(self._agents)
            if self._quietly(lambda: delete_agents(api, self.namespace, agents)):
                self._notice("info", f"deleted node agent(s) {', '.join(agents)}")
        self._probes = self._source = None
        self._nodes, self._agents = {}, []

    def _quietly(self, action: Any) -> bool:
        """Run one teardown step; a failure is shown and the next step still runs."""
        if action is None:
            return False
        try:
            action()
            return True
        except Exception as exc:  # teardown must reach every step
            self._notice(
                "error",
                f"cleanup: {' '.join(str(exc).split())} (run `svcwatch cluster restore`/`down`)",
            )
            return False

    # --- setup steps -------------------------------------------------------------------------

    def _read_service(self) -> Service:
        from svcwatch.watch.convert import service_from_body

        assert self.api is not None
        try:
            body = self.api.read("Service", self.namespace, self.service_name)
        except NotFound:
            raise SetupError(
                f"Service {self.namespace}/{self.service_name} does not exist: "
                "run `svcwatch cluster up` (or `kubectl apply -f manifests/`)"
            ) from None
        return service_from_body(body)

    def _demo_pods(self) -> list[dict[str, Any]]:
        assert self.api is not None
        deployment = first_of(self.docs, "Deployment")
        labels = pod_labels(deployment) if deployment else {}
        return (
            [p for p in self.api.list("Pod", self.namespace, labels) if is_ready(p)]
            if labels
            else []
        )

    def _fill_if_stale(self) -> dict[str, Any] | None:
        """After `kubectl apply -f manifests/`, point the slice at the running pod; that pod."""
        assert self.editor is not None and self.api is not None and self._slice is not None
        pods = self._demo_pods()
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

    def _probe_target(self, pod: dict[str, Any] | None) -> tuple[tuple[str, int], str | None]:
        """--probe, else the pod's node InternalIP (status.hostIP) and the Service's nodePort."""
        node = (pod or {}).get("spec", {}).get("nodeName")
        if self.probe_target is not None:
            return self.probe_target, None
        assert self._service is not None
        node_port = next((p.node_port for p in self._service.ports if p.node_port), None)
        host_ip = (pod or {}).get("status", {}).get("hostIP")
        if node_port is None or not host_ip:
            raise InputError(
                f"cannot tell which node address to probe for {self._service.key}: "
                "pass --probe HOST:PORT"
            )
        return (str(host_ip), int(node_port)), node

    def _watched_nodes(self, probe_node: str | None) -> list[str]:
        assert self._slice is not None
        nodes = {e.node_name for e in self._slice.endpoints if e.node_name}
        if probe_node:
            nodes.add(probe_node)
        if not nodes:
            raise SetupError(
                f"no node to watch: EndpointSlice {self._slice.key} names no nodeName and "
                "no demo pod runs; run `svcwatch cluster up`"
            )
        return sorted(nodes)

    def _start_agents(self, nodes: list[str]) -> None:
        assert self.api is not None and self._sink is not None
        for node in nodes:
            pod = start_agent(
                self.api,
                self.namespace,
                node,
                self.agent_image,
                progress=lambda m: self._notice("info", m),
            )
            self._agents.append(pod)
            # hostNetwork: the agent's hostIP is its node's InternalIP, where NodePorts listen.
            node_ip = (self.api.read("Pod", self.namespace, pod).get("status") or {}).get("hostIP")
            agent = NodeAgent(node, self.transport_factory(self.api, self.namespace, pod, node))
            self._nodes[node] = NodeWatch(
                agent,
                self._sink,
                label_node=len(nodes) > 1,
                on_error=lambda m: self._notice("warning", m),
                node_ip=node_ip or self._node_ip,
            )
        self._refilter()

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
        )
        self._source.start()

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

    def _start_probes(self, target: tuple[str, int]) -> None:
        assert self._sink is not None
        if not reachable(target, self.timeout):
            port = target[1]
            self._notice(
                "warning",
                f"cannot reach {target[0]}:{port} from this machine: "
                + PORT_MAPPING_HINT.format(port=port),
            )
        self._probes = ProbeLoop(
            self._sink,
            target=target,
            netns=None,
            interval=self.interval,
            timeout=self.timeout,
            payload=self.payload,
        )
        self._probes.start()
        self._notice(
            "info", f"probing {target[0]}:{target[1]} from this machine every {self.interval:g}s"
        )

    # --- the watch pipeline ------------------------------------------------------------------

    def _on_watch_event(self, event: Any) -> None:
        """A Service or slice change: show it, re-read rules, re-filter. Never raises."""
        try:
            if event.kind == "EndpointSlice":
                self._emit(
                    SliceChanged(
                        event.seen_at,
                        event.key,
                        event.type,
                        event.resource_version,
                        event.describe(),
                        self.current_scenario(),
                        manifest=dict(event.body),
                    )
                )
                if event.name == self.slice_name and event.type != "DELETED":
                    self._slice = slice_from_body(dict(event.body))
            elif event.type != "ADDED":
                from svcwatch.watch.convert import service_from_body

                self._service = service_from_body(event.body)
                self._notice(
                    "info",
                    f"service {event.key} {event.type.lower()}: " + "; ".join(event.describe()),
                )
            self._refilter()
            self._rules_wanted.set()
        except Exception as exc:  # the watcher thread must survive; the user sees why
            self._notice("error", f"cluster update failed: {' '.join(str(exc).split())}")

    def capture_filter(self, node_ip: str | None = None) -> str:
        """The BPF text for the Service and slice on a node (pod network: the endpoints' /16)."""
        assert self._service is not None and self._slice is not None
        first = next((e.address for e in self._slice.endpoints if e.address), "10.42.0.1")
        pod_net = str(ipaddress.ip_network(f"{first}/16", strict=False))
        return filter_for(
            self._service, self._slice, node_ip=node_ip or self._node_ip, pod_cidr=pod_net
        )

    def _refilter(self) -> None:
        if self._stopping.is_set():
            return
        for watch in self._nodes.values():
            bpf = self.capture_filter(watch.node_ip)
            if watch.bpf != bpf:
                watch.start_capture(bpf, self._service.key if self._service else "")

    def _rules_loop(self) -> None:
        known: dict[str, set[str]] = {}
        while not self._stopping.is_set():
            for node, watch in list(self._nodes.items()):
                try:
                    self._read_rules(node, watch, known)
                except Exception as exc:  # one node's failure must not stop the others
                    self._notice("warning", f"rules on {node}: {' '.join(str(exc).split())}")
            self._rules_wanted.wait(RULES_PERIOD)
            self._rules_wanted.clear()

    def _read_rules(self, node: str, watch: NodeWatch, known: dict[str, set[str]]) -> None:
        assert self._service is not None
        started = time.time()
        rules = watch.read_rules()
        if rules.mode == "none":
            self._notice(
                "warning",
                f"no kube-proxy rules on {node} (iptables nor nftables): is kube-proxy replaced?",
            )
            return
        tree = chain_tree(rules, self._service)
        if node == next(iter(sorted(self._nodes))):
            self._tree = tree
        chains = set(tree.chain_names())
        before = known.get(node)
        known[node] = chains
        if before != chains:
            self._emit(
                RulesSynced(
                    time.time(),
                    self._service.key,
                    tuple(sorted(chains - (before or set()))),
                    tuple(sorted((before or set()) - chains)),
                    backend=tree.backend,
                    took_ms=(time.time() - started) * 1000,
                )
            )

    def _emit(self, event: Any) -> None:
        if self._sink is not None:
            self._sink.emit(event)

    def _notice(self, kind: str, message: str) -> None:
        emit_notice(self._sink, kind, message)

    # --- what the dashboard asks -------------------------------------------------------------

    def service(self) -> Service:
        if self._service is None:
            raise InputError("the cluster session is not running (start it first)")
        return self._service

    def current_slice(self) -> EndpointSlice:
        if self._slice is None:
            raise InputError("the cluster session is not running (start it first)")
        return self._slice

    def current_scenario(self) -> str | None:
        return self.editor.scenario if self.editor else None

    def request_scenario(self, name: str) -> None:
        """Patch svcwatch's slice to the scenario; the watch brings the change back as events."""
        scenario = get_scenario(name)
        if scenario.pod_action:
            raise InputError(
                f"scenario {name} changes a pod, which svcwatch does not do on a real cluster"
            )
        if self.editor is None:
            raise InputError("the cluster session is not running (start it first)")
        self._notice("scenario", f"scenario {scenario.name}: {scenario.title}")
        taken = [
            p["status"]["podIP"] for p in self._all_pods() if (p.get("status") or {}).get("podIP")
        ]
        self.editor.apply_scenario(name, taken)

    def apply_slice_text(self, text: str) -> None:
        if self.editor is None:
            raise InputError("the cluster session is not running (start it first)")
        self.editor.apply_text(text)

    def read_chain(self) -> ChainTree:
        if self._tree is None:
            return ChainTree(service=self._service.key if self._service else "")
        return self._tree

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


def reachable(target: tuple[str, int], timeout: float) -> bool:
    """Can this machine open a TCP connection to `target` at all (refused counts as reachable)?"""
    try:
        with socket.create_connection(target, timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
