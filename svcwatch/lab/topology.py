"""The shape of a lab, as pure data: namespace names, addresses, pods and their veth names.

A lab imitates one k3s node the way the blog post saw it through k3d: a client (the laptop) at
192.168.97.2 talks to the node's eth0 at 192.168.97.3; inside the node a bridge `cni0` (10.42.0.1)
joins one veth per pod; the socat pod sits at 10.42.0.142. Everything here is derived from the
manifests and flags, deterministically from the lab's name, so that two runs of the same lab get
the same pod names and veth names and two labs with different names never share a namespace.
Nothing in this module touches the system.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError
from svcwatch.model.manifest import Deployment, ManifestSet
from svcwatch.model.service import Service

NETNS_PREFIX = "svcwatch-"
LAB_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
# Kubernetes' rand.SafeEncodeString alphabet: no vowels, no 0/1/3, so names never spell words.
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The pods a fresh k3s node runs besides yours; the blog post's ARP flood crossed eight veths.
K3S_SYSTEM_PODS = (
    "coredns",
    "local-path-provisioner",
    "metrics-server",
    "traefik",
    "svclb-traefik",
    "helm-install-traefik",
    "helm-install-traefik-crd",
)
SOCAT_LISTEN_RE = re.compile(r"TCP\d?-LISTEN:(\d+)", re.IGNORECASE)


def validate_lab_name(name: str) -> str:
    """A lab name becomes part of namespace names: lower-case letters, digits and dashes."""
    if not LAB_NAME_RE.match(name or ""):
        raise InputError(
            f"bad lab name {name!r}: use 1-32 lower-case letters, digits or dashes "
            "(not starting or ending with a dash)",
            field="--name",
        )
    return name


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def k8s_suffix(length: int, *parts: str) -> str:
    """A Kubernetes-style random-looking suffix (e.g. `vw5dz`), derived from `parts`."""
    digest = _digest(*parts)
    return "".join(K8S_ALPHABET[b % len(K8S_ALPHABET)] for b in digest[:length])


def veth_name(lab: str, pod: str) -> str:
    """The node end of a pod's veth pair: `veth` + 8 hex digits, as the bridge CNI names it."""
    return "veth" + _digest("veth", lab, pod).hex()[:8]


def pod_name(lab: str, owner: str, generation: int = 0, replica: int = 0) -> str:
    """`owner-<replicaset hash>-<pod suffix>`; each rollout `generation` has its own hash."""
    rs_hash = k8s_suffix(10, lab, owner, str(generation))
    return f"{owner}-{rs_hash}-{k8s_suffix(5, lab, owner, str(generation), str(replica))}"


@dataclass(frozen=True)
class PodPlan:
    """One pod to create: its name, address, namespace, node-side veth, and echo port (or None)."""

    name: str
    ip: str
    netns: str
    veth: str
    port: int | None


@dataclass(frozen=True)
class LabSpec:
    """Everything needed to build (and recognise) one lab; equal specs mean the same lab."""

    name: str
    node_ip: str = "192.168.97.3"
    client_ip: str = "192.168.97.2"
    prefix: int = 24
    pod_cidr: str = "10.42.0.0/24"
    cluster_cidr: str = "10.42.0.0/16"
    bridge_ip: str = "10.42.0.1"
    cluster_ip: str = "10.43.161.224"
    idle_pods: int = 7
    echo_ip: str = "10.42.0.142"
    echo_port: int = 12345
    app_name: str = "socat"
    namespace: str = "default"

    def __post_init__(self) -> None:
        validate_lab_name(self.name)
        if not 0 <= self.idle_pods <= 64:
            raise InputError(f"--pods must be 0-64, not {self.idle_pods}", field="--pods")
        net = ipaddress.ip_network(self.pod_cidr)
        for label, ip in (("echo pod", self.echo_ip), ("bridge", self.bridge_ip)):
            if ipaddress.ip_address(ip) not in net:
                raise InputError(f"{label} address {ip} is outside the pod CIDR {self.pod_cidr}")
        if self.idle_pods + 3 > net.num_addresses - 2:
            raise InputError(f"the pod CIDR {self.pod_cidr} is too small for {self.idle_pods} pods")

    @classmethod
    def from_manifests(cls, manifests: ManifestSet, name: str, idle_pods: int = 7) -> LabSpec:
        """The lab that serves the manifests' first Service from its slice's first endpoint."""
        service = first_service(manifests)
        slice_ = baseline_slice_of(manifests, service)
        echo_ip = next((e.address for e in slice_.endpoints if e.address), None)
        if echo_ip is None:
            raise InputError(
                "the EndpointSlice lists no endpoint address for the echo pod",
                source=slice_.key,
                field="endpoints",
            )
        pod_net = ipaddress.ip_network(f"{echo_ip}/24", strict=False)
        cluster_net = ipaddress.ip_network(f"{echo_ip}/16", strict=False)
        deployment = next(iter(manifests.deployments), None)
        kwargs: dict[str, Any] = {
            "name": validate_lab_name(name),
            "idle_pods": idle_pods,
            "echo_ip": echo_ip,
            "echo_port": echo_port_of(deployment, slice_, service),
            "pod_cidr": str(pod_net),
            "cluster_cidr": str(cluster_net),
            "bridge_ip": str(pod_net.network_address + 1),
            "app_name": deployment.name if deployment else service.name,
            "namespace": service.namespace,
        }
        if service.cluster_ip:
            kwargs["cluster_ip"] = service.cluster_ip
        return cls(**kwargs)

    @property
    def node_ns(self) -> str:
        return f"{NETNS_PREFIX}{self.name}-node"

    @property
    def client_ns(self) -> str:
        return f"{NETNS_PREFIX}{self.name}-client"

    def pod_ns(self, index: int) -> str:
        return f"{NETNS_PREFIX}{self.name}-pod{index}"

    @property
    def pod_prefix(self) -> int:
        return ipaddress.ip_network(self.pod_cidr).prefixlen

    def echo_pod(self, generation: int = 0, index: int = 0, ip: str | None = None) -> PodPlan:
        """The socat pod of rollout `generation` (a new generation gets a new name and veth)."""
        name = pod_name(self.name, self.app_name, generation)
        return PodPlan(
            name, ip or self.echo_ip, self.pod_ns(index), veth_name(self.name, name), self.echo_port
        )

    def idle_pod_plans(self) -> list[PodPlan]:
        """The idle pods: k3s's system pods first, then `idle-N`, on addresses from .2 upwards."""
        taken = {self.bridge_ip, self.echo_ip, self.unused_ip()}
        addresses = (a for a in self._host_addresses() if a not in taken)
        plans = []
        for i in range(self.idle_pods):
            owner = K3S_SYSTEM_PODS[i] if i < len(K3S_SYSTEM_PODS) else f"idle-{i}"
            name = pod_name(self.name, owner)
            plans.append(
                PodPlan(name, next(addresses), self.pod_ns(i + 1), veth_name(self.name, name), None)
            )
        return plans

    def pod_plans(self) -> list[PodPlan]:
        return [self.echo_pod(), *self.idle_pod_plans()]

    def unused_ip(self, used: frozenset[str] | set[str] = frozenset()) -> str:
        """An address in the pod CIDR no pod has: the one after the echo pod's (as in the post)."""
        echo = ipaddress.IPv4Address(self.echo_ip)
        taken = {self.bridge_ip, self.echo_ip, *used}
        candidates = [a for a in self._host_addresses() if ipaddress.IPv4Address(a) > echo]
        candidates += [a for a in self._host_addresses() if ipaddress.IPv4Address(a) < echo]
        return next(a for a in candidates if a not in taken)

    def next_free_ip(self, used: set[str]) -> str:
        """A fresh pod address for a rollout: after the echo pod's, skipping the wrong-IP one."""
        reserved = {self.unused_ip()}
        return self.unused_ip(used | reserved)

    def _host_addresses(self) -> list[str]:
        return [str(a) for a in ipaddress.IPv4Network(self.pod_cidr).hosts()]

    def netns_pattern(self) -> re.Pattern[str]:
        return netns_pattern(self.name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def netns_pattern(lab: str) -> re.Pattern[str]:
    """Matches exactly this lab's namespaces (lab `a` never matches lab `a-pod1`'s)."""
    return re.compile(rf"^{re.escape(NETNS_PREFIX + lab)}-(?:node|client|pod\d+)$")


def lab_of_netns(netns: str) -> str | None:
    """The lab a namespace name belongs to, if it is a lab namespace."""
    match = re.match(rf"^{re.escape(NETNS_PREFIX)}(.+)-(?:node|client|pod\d+)$", netns)
    return match.group(1) if match and LAB_NAME_RE.match(match.group(1)) else None


def first_service(manifests: ManifestSet) -> Service:
    if not manifests.services:
        raise InputError("the manifests define no Service (expected the socat NodePort Service)")
    return manifests.services[0]


def baseline_slice_of(manifests: ManifestSet, service: Service) -> EndpointSlice:
    slices = manifests.slices_for(service)
    if not slices:
        raise InputError(
            f"no EndpointSlice labelled kubernetes.io/service-name={service.name} "
            f"in namespace {service.namespace}"
        )
    return slices[0]


def echo_port_of(deployment: Deployment | None, slice_: EndpointSlice, service: Service) -> int:
    """The port the echo pod listens on: socat's TCP-LISTEN, the containerPort, else the slice's."""
    if deployment is not None:
        for arg in (*deployment.command, *deployment.args):
            match = SOCAT_LISTEN_RE.search(arg)
            if match:
                return int(match.group(1))
        if deployment.container_ports:
            return deployment.container_ports[0]
    port = next((p.port for p in slice_.ports if p.port), None)
    if port is not None:
        return port
    target = service.ports[0].target_port if service.ports else None
    return target if isinstance(target, int) else service.ports[0].port
