"""ExistingServiceSession: `svcwatch --cluster -n NS svc/NAME`, any Service already on a cluster.

The on-call view: the same panes as the demo, for a Service svcwatch did not create -- any type,
all of its EndpointSlices (the controller's, however many) merged as kube-proxy reads them, the
rules on each node its endpoints run on (the chain pane switches node), and probes: from this
machine to a nodePort, or from a short-lived probe pod inside the cluster to the ClusterIP when
there is no nodePort. It changes nothing: fault keys are refused with the reason, unless the
Service is svcwatch's own demo (its slice is svcwatch's) or `--take-over` adopts its first slice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from svcwatch.cluster.api import connect
from svcwatch.cluster.existing import (
    READ_ONLY_WHY,
    created_by_svcwatch,
    merged_view,
    read_existing,
    service_slices,
    svcwatch_slice,
)
from svcwatch.cluster.faults import SliceEditor, slice_from_body
from svcwatch.cluster.objects import PROTECTED_NAMESPACES
from svcwatch.cluster.probe_pod import InClusterProbe
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, SetupError
from svcwatch.session.capabilities import Capabilities
from svcwatch.session.cluster import ClusterSession
from svcwatch.session.common import node_port_of
from svcwatch.session.settings import ClusterSettings
from svcwatch.sinks import EventSink


class ExistingServiceSession(ClusterSession):
    """One existing Service, read-only unless it is svcwatch's demo or `--take-over` is given."""

    def __init__(self, settings: ClusterSettings) -> None:
        # The demo manifests' namespace is not the watched one: the parent's checks of it (and of
        # kube-system, which svcwatch may watch but never starts pods in) do not apply here.
        super().__init__(replace(settings, namespace=None, agent_namespace=None))
        assert settings.service is not None  # the factory makes this session only for svc/NAME
        self.namespace_flag = settings.namespace
        self.agent_namespace_flag = settings.agent_namespace
        self.service_name = settings.service
        self.slices: dict[str, EndpointSlice] = {}
        self.read_only: str | None = None
        self._in_cluster: InClusterProbe | None = None

    @property
    def title(self) -> str:
        mode = " read-only" if self.read_only else ""
        return f"cluster {self.context} ({self.namespace}/{self.service_name}{mode})"

    def start(self, sink: EventSink) -> None:
        """Connect, read the Service and its slices, start agents, watch, capture, probe."""
        self._sink = sink
        found, self.api = connect(
            self.kubeconfig_flag, self.context_flag, in_cluster=self.in_cluster
        )
        self.context, self._kubeconfig_path, self._target = found.context, found.kubeconfig, found
        self.namespace = self.namespace_flag or found.namespace or "default"
        self.agent_namespace = self.agent_namespace_flag or self.namespace
        if self.agent_namespace in PROTECTED_NAMESPACES:
            raise SetupError(
                f"svcwatch starts no pods in {self.agent_namespace}: pass --agent-namespace "
                "NAMESPACE (one whose Pod Security allows privileged pods) to watch a Service there"
            )
        self._service, body = read_existing(self.api, self.namespace, self.service_name)
        bodies = service_slices(self.api, self.namespace, self.service_name)
        self.slices = {name: slice_from_body(b) for name, b in bodies.items()}
        self._attach_editor(svcwatch_slice(bodies.values()) if created_by_svcwatch(body) else None)
        self._slice = merged_view(self._service, self.slices)
        self._notice(
            "info",
            f"cluster {found.label}: Service {self._service.key} ({self._service.type}), "
            f"{len(self.slices)} EndpointSlice(s)" + (", read-only" if self.read_only else ""),
        )
        target, probe_node = self._probe_plan()
        if target is None:
            probe_node = self._start_probe_pod()
        self._start_nodes_and_watch(sink, self._nodes(probe_node))
        if target is not None:
            self._probes = self.probing.start(sink, target, netns=None, notice=self._notice)
        self._probe_in_cluster(sink)

    def stop(self) -> None:
        """The probe pod goes first (its probes are no use once the rest stops), then the rest."""
        if self._in_cluster is not None:
            self._quietly(self._in_cluster.stop)
        super().stop()

    def _start_probe_pod(self) -> str | None:
        """For a Service only reachable inside the cluster: the probe pod; the node it runs on."""
        assert self.api is not None and self._service is not None
        if not self._service.cluster_ip or self._service.cluster_ip == "None":
            self._notice("warning", f"{self._service.key} is headless: no ClusterIP to probe")
            return None
        self._in_cluster = InClusterProbe(self.api, self.agent_namespace, self.agent_image)
        return (
            self._in_cluster.start_pod(
                lambda m: self._notice("info", m), cancelled=self._fleet.stopping
            )
            or None
        )

    def _probe_in_cluster(self, sink: EventSink) -> None:
        probe, service = self._in_cluster, self._service
        if probe is None or probe.pod is None or service is None or not service.ports:
            return
        target = (str(service.cluster_ip), service.ports[0].port)
        transport = self.transport_factory(self.api, self.agent_namespace, probe.pod, probe.node)
        probing = self.probing
        probe.start_probing(
            transport,
            sink,
            target,
            interval=probing.interval,
            timeout=probing.timeout,
            payload=probing.payload,
        )
        self._notice(
            "info",
            f"probing {target[0]}:{target[1]} from probe pod {probe.pod} on {probe.node} "
            f"every {probing.interval:g}s",
        )

    def _attach_editor(self, own: str | None) -> None:
        """Fault injection only on svcwatch's own slice of its demo (`own`), or the first slice
        with --take-over; otherwise read-only, with the reason the keys will give."""
        assert self.api is not None and self._service is not None
        name = own or (next(iter(self.slices), None) if self.take_over else None)
        if name is None:
            self.read_only = READ_ONLY_WHY.format(key=self._service.key)
            return
        self.slice_name = name
        self.editor = SliceEditor(
            self.api, self.context, self.namespace, name, take_over=self.take_over
        )
        self.slices[name] = self.editor.attach()
        if self.editor.adopted:
            self._notice(
                "warning",
                f"adopted EndpointSlice {self.namespace}/{name} (--take-over): its controller "
                "may undo faults; it is restored on exit",
            )

    def _probe_plan(self) -> tuple[tuple[str, int] | None, str | None]:
        """Where probes go from this machine (--probe, else a node's IP and the nodePort) and the
        node that adds; (None, None) when only an in-cluster probe can reach the Service."""
        assert self._service is not None and self._slice is not None
        if self.probing.target is not None:
            return self.probing.target, None
        node_port = node_port_of(self._service)
        pod = self._endpoint_pod()
        host_ip = ((pod or {}).get("status") or {}).get("hostIP")
        if node_port is not None and host_ip:
            self._node_ip = str(host_ip)
            return (str(host_ip), int(node_port)), ((pod or {}).get("spec") or {}).get("nodeName")
        return None, None  # probed from inside the cluster instead

    def _endpoint_pod(self) -> dict[str, Any] | None:
        """A pod behind one of the endpoints (its node IP is where a nodePort answers)."""
        assert self._slice is not None
        addresses = {a for e in self._slice.endpoints for a in e.addresses}
        pods = self.api.list("Pod", self.namespace) if self.api is not None else []
        return next((p for p in pods if (p.get("status") or {}).get("podIP") in addresses), None)

    def _nodes(self, probe_node: str | None) -> list[str]:
        assert self._slice is not None
        nodes = {e.node_name for e in self._slice.endpoints if e.node_name}
        nodes |= {probe_node} if probe_node else set()
        if not nodes:
            raise SetupError(
                f"no node to watch: no endpoint of Service {self.namespace}/{self.service_name} "
                "names its node (is anything behind it?)"
            )
        return sorted(nodes)

    # --- the watch pipeline ------------------------------------------------------------------

    def _take_slice(self, event: Any) -> None:
        """Any of the Service's slices changed: keep them all, and show them merged."""
        if event.type == "DELETED":
            self.slices.pop(event.name, None)
        else:
            self.slices[event.name] = slice_from_body(dict(event.body))
        self.slices = dict(sorted(self.slices.items()))
        assert self._service is not None
        self._slice = merged_view(self._service, self.slices)

    # --- what the dashboard asks -------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        if self.read_only is not None:
            return Capabilities(
                watch_health=self, read_only=self.read_only, node_switching=self.switching()
            )
        return super().capabilities()

    def _editor(self) -> SliceEditor:
        if self.read_only is not None:
            raise InputError(self.read_only)
        return super()._editor()
