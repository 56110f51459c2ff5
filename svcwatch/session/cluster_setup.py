"""What a ClusterSession looks up before it starts: the Service, the demo pod, where to probe.

On a real cluster svcwatch works on what is there: the Service it was pointed at (missing: run
`cluster up`), the demo pod its slice should name (after `kubectl apply -f manifests/` the slice
still names no pod, so it is filled in), the node address and nodePort to probe from this machine
(unreachable from here: the k3d/kind port mapping that fixes it), and the nodes worth watching.
"""

from __future__ import annotations

import socket
from typing import Any

from svcwatch.cluster.api import ClusterApi, NotFound
from svcwatch.cluster.demo import first_of, is_ready, pod_labels
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.service import Service
from svcwatch.session.common import Notify, node_port_of

PORT_MAPPING_HINT = (
    'k3d: create the cluster with `-p "{port}:{port}@server:0"` and pass --probe 127.0.0.1:{port}; '
    "kind: add extraPortMappings (containerPort {port}, hostPort {port}) and pass --probe "
    "127.0.0.1:{port}"
)


def read_service(api: ClusterApi, namespace: str, name: str) -> Service:
    """The Service as the API server has it; SetupError naming `cluster up` when missing."""
    from svcwatch.watch.convert import service_from_body

    try:
        body = api.read("Service", namespace, name)
    except NotFound:
        raise SetupError(
            f"Service {namespace}/{name} does not exist: "
            "run `svcwatch cluster up` (or `kubectl apply -f manifests/`)"
        ) from None
    return service_from_body(body)


def demo_pods(api: ClusterApi, docs: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The ready pods of the manifests' Deployment (none when the manifests have none)."""
    deployment = first_of(docs, "Deployment")
    labels = pod_labels(deployment) if deployment else {}
    return [p for p in api.list("Pod", namespace, labels) if is_ready(p)] if labels else []


def probe_target(
    override: tuple[str, int] | None, service: Service, pod: dict[str, Any] | None
) -> tuple[tuple[str, int], str | None]:
    """--probe, else the pod's node InternalIP (status.hostIP) and the Service's nodePort, else
    (a LoadBalancer without nodePorts) its first ingress IP and port; with the node to watch for
    it (None for --probe)."""
    node = (pod or {}).get("spec", {}).get("nodeName")
    if override is not None:
        return override, None
    node_port = node_port_of(service)
    if node_port is None and service.load_balancer_ips and service.ports:
        return (service.load_balancer_ips[0], service.ports[0].port), node
    host_ip = (pod or {}).get("status", {}).get("hostIP")
    if node_port is None or not host_ip:
        raise InputError(
            f"cannot tell which node address to probe for {service.key}: pass --probe HOST:PORT"
        )
    return (str(host_ip), int(node_port)), node


def watched_nodes(slice_: EndpointSlice, probe_node: str | None) -> list[str]:
    """The endpoints' nodes and the probed node; SetupError when there is none."""
    nodes = {e.node_name for e in slice_.endpoints if e.node_name}
    if probe_node:
        nodes.add(probe_node)
    if not nodes:
        raise SetupError(
            f"no node to watch: EndpointSlice {slice_.key} names no nodeName and "
            "no demo pod runs; run `svcwatch cluster up`"
        )
    return sorted(nodes)


def warn_if_unreachable(target: tuple[str, int], timeout: float, notice: Notify) -> None:
    """Say how to map the port when this machine cannot reach `target` at all."""
    if not reachable(target, timeout):
        port = target[1]
        notice(
            "warning",
            f"cannot reach {target[0]}:{port} from this machine: "
            + PORT_MAPPING_HINT.format(port=port),
        )


def reachable(target: tuple[str, int], timeout: float) -> bool:
    """Can this machine open a TCP connection to `target` at all (refused counts as reachable)?"""
    try:
        with socket.create_connection(target, timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
