"""The node agent: a short-lived stock pod on a node, and the three commands svcwatch runs in it.

Reading packets and iptables rules on a real node needs the node's network namespace and root, so
svcwatch starts a pod from a stock image that has tcpdump and iptables (nicolaka/netshoot by
default) with `hostNetwork: true`, `privileged: true` and `nodeName` pinned to the node, labelled
`app.kubernetes.io/managed-by: svcwatch` so `cluster down` finds it, and deletes it on exit. It
sleeps; everything it does is an exec: `tcpdump -i any -U -w - FILTER` for the packet stream (Linux
cooked capture v2, whose records carry the interface index -- hence `ip -o link` to name them),
and one `sh -c` a read for the watched Service's kube-proxy rules with counters (its own chains
only, filtered on the node: see `rules_read`), or `nft list table ip kube-proxy` when kube-proxy
runs in nftables mode. The image needs sh, grep, tcpdump, iptables and iproute2.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from svcwatch.cluster.api import ClusterApi, Conflict
from svcwatch.cluster.rules_read import (
    DETECT_SCRIPT,
    RULES_TOOLS,
    RulesSource,
    listing_to_save,
    parse_detected,
    read_argv,
)
from svcwatch.cluster.transport import Transport, none_available, wait_for_stderr
from svcwatch.cluster.waiting import poll_until
from svcwatch.locations import package_data_dir
from svcwatch.model.errors import SetupError
from svcwatch.model.service import Service

AGENT_LABELS = {
    "app.kubernetes.io/managed-by": "svcwatch",
    "app.kubernetes.io/component": "node-agent",
}
DEFAULT_IMAGE = "nicolaka/netshoot:latest"
LINKS_ARGV = ("ip", "-o", "link")
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError")
ENDED = ("Failed", "Succeeded", "Completed", "Error", "DeadlineExceeded")  # phases and reasons

Progress = Callable[[str], None]


# Headers are all the stream decodes, and a short snapshot keeps libpcap's TPACKET_V3 ring from
# being a handful of 256 KiB frames: with the default snaplen a burst of ~16 packets while tcpdump
# was descheduled overflowed it ("6 packets dropped by kernel", seen under load here).
SNAPLEN = 256
BUFFER_KIB = 8192


def capture_argv(bpf: str) -> list[str]:
    """tcpdump on every interface, unbuffered pcap to stdout; the filter as one argument."""
    argv = ["tcpdump", "-i", "any", "-U", "--immediate-mode", "-n"]
    argv += ["-s", str(SNAPLEN), "-B", str(BUFFER_KIB), "-w", "-"]
    return [*argv, bpf] if bpf else argv


def parse_links(text: str) -> dict[int, str]:
    """`ip -o link` -> {ifindex: name}; `veth1@if4` is named `veth1`."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        match = re.match(r"\s*(\d+):\s+([^:\s]+):", line)
        if match:
            out[int(match.group(1))] = match.group(2).split("@", 1)[0]
    return out


@dataclass(frozen=True, slots=True)
class NodeRules:
    """One Service's kube-proxy rules as read on one node: iptables-save text (only the
    Service's chains and the shared rules for it), or the nft table's listing."""

    node: str
    mode: str  # "iptables" | "nftables" | "none"
    text: str
    command: str  # what produced `text`, e.g. "iptables-nft"
    read_at: float
    backend: str = ""  # iptables-nft | iptables-legacy | nftables
    entry: bool = True  # whether the nat KUBE-SERVICES / KUBE-NODEPORTS jumps were read


class NodeAgent:
    """The agent's commands on one node, through any transport."""

    def __init__(self, node: str, transport: Transport) -> None:
        self.node = node
        self.transport = transport
        self._source: RulesSource | None = None  # how this node's rules are read, once found

    def links(self) -> dict[int, str]:
        return parse_links(self.transport.run(LINKS_ARGV))

    def capture(self, bpf: str, ready_timeout: float = 10.0) -> io.RawIOBase:
        """The pcap byte stream of `tcpdump -i any` with this filter (close() stops tcpdump).

        Returns once tcpdump says it is listening (its filter is attached), so packets sent after
        this call are captured.
        """
        stream = self.transport.open_stream(capture_argv(bpf))
        if not wait_for_stderr(stream, "listening on", ready_timeout):
            message = getattr(stream, "stderr_text", "")
            ended = getattr(stream, "failure", lambda: None)()
            stream.close()
            if ended is not None:  # it could not run at all (exec: not in the image, ...)
                raise ended
            raise SetupError(
                f"tcpdump did not start on {self.transport.where}: "
                f"{' '.join(message.split())[-200:]}"
            )
        return stream

    def read_rules(self, service: Service, *, entry: bool = True) -> NodeRules:
        """`service`'s rules with counters, in one exec, at a cost independent of the node's size.

        Args:
            entry: also read the nat KUBE-SERVICES / KUBE-NODEPORTS jumps to it (their cost grows
                with the node's Services on iptables-nft; on legacy they always come).
        """
        source = self._source or self._detect()
        if source.mode == "none":
            self._source = None  # kube-proxy may not have written its rules yet
            if set(source.missing) >= set(RULES_TOOLS):  # ... or nothing here could read them
                raise none_available(self.transport, RULES_TOOLS, "iptables or nft")
            return NodeRules(self.node, "none", "", "", time.time())
        try:
            text = self.transport.run(read_argv(source, service, entry=entry))
        except SetupError:
            self._source = None  # found again next time: kube-proxy may have changed mode
            raise
        if source.mode == "iptables":
            text = listing_to_save(text)
        read_entry = entry or not source.per_chain
        return NodeRules(
            self.node, source.mode, text, source.command, time.time(), source.backend, read_entry
        )

    def _detect(self) -> RulesSource:
        self._source = parse_detected(self.transport.run(["sh", "-c", DETECT_SCRIPT]))
        return self._source


# --- the agent pod ---------------------------------------------------------------------------


def agent_pod_name(node: str) -> str:
    """`svcwatch-agent-<node>`, DNS-safe and at most 63 characters (hash-suffixed when cut)."""
    safe = re.sub(r"[^a-z0-9-]", "-", node.lower()).strip("-") or "node"
    name = f"svcwatch-agent-{safe}"
    if len(name) > 63:
        digest = hashlib.sha256(node.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def render_agent_pod(
    node: str, namespace: str, image: str, template: Path | None = None
) -> dict[str, Any]:
    """The agent pod for `node`, from manifests/agent-pod.yaml."""
    path = template or package_data_dir("manifests") / "agent-pod.yaml"
    try:
        body: dict[str, Any] = copy.deepcopy(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"cannot read the agent pod template {path}: {exc}") from None
    meta = body.setdefault("metadata", {})
    meta["name"] = agent_pod_name(node)
    meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **AGENT_LABELS}
    spec = body.setdefault("spec", {})
    spec["nodeName"] = node
    spec["containers"][0]["image"] = image
    return body


def start_agent(
    api: ClusterApi,
    namespace: str,
    node: str,
    image: str,
    progress: Progress,
    timeout: float = 120.0,
    cancelled: threading.Event | None = None,
) -> str:
    """Make sure the agent pod on `node` runs, and wait until it does; its name.

    A leftover agent that runs the same image is reused; one that cannot serve (ended, expired
    after its 4 hours, terminating, failing to pull, another image) is deleted and made anew.
    Once `cancelled` is set the waits end with WaitCancelled (the caller deletes the pod: it
    knows its name, `agent_pod_name(node)`, before calling).
    """
    body = render_agent_pod(node, namespace, image)
    name = str(body["metadata"]["name"])
    existing = api.read_or_none("Pod", namespace, name)
    unusable = _unusable(existing, image) if existing is not None else None
    if unusable is not None:
        progress(f"replacing node agent {name} on {node} ({unusable})")
        api.delete("Pod", namespace, name)
        _wait_gone(api, namespace, name, progress, timeout, cancelled)
        existing = None
    if existing is None:
        try:
            api.create("Pod", namespace, body)
            progress(f"started node agent {name} on {node} ({image})")
        except Conflict:
            progress(f"reusing node agent {name} on {node}")
    else:
        progress(f"reusing node agent {name} on {node}")

    def look() -> tuple[str | None, str]:
        pod = api.read("Pod", namespace, name)
        state = _agent_state(pod)
        if state in PULL_FAILURES or state in ENDED:
            raise SetupError(
                f"node agent {name} on {node} cannot run ({state}, image {image}): "
                "pass --agent-image with an image that has tcpdump and iptables"
            )
        return (name if state == "running" else None), pending_words(pod)

    return poll_until(
        look,
        timeout=timeout,
        every=0.5,
        progress=progress,
        waiting=f"waiting for agent pod {name} on node {node}",
        gave_up=lambda state: SetupError(
            f"node agent {name} on {node} not running after {timeout:.0f}s ({state})"
        ),
        cancelled=cancelled,
    )


def pending_words(pod: dict[str, Any]) -> str:
    """A pod that does not run yet, in words a user can act on: "Pending: ContainerCreating",
    "Pending: Unschedulable (0/3 nodes are available ...)", or, when nothing reports on it at
    all, that no kubelet has taken it up (its node is down, or gone)."""
    status, state = pod.get("status") or {}, _agent_state(pod)
    phase = str(status.get("phase") or "Pending")
    if state != phase:  # a container's own reason, e.g. ContainerCreating
        return f"{phase}: {state}"
    if phase != "Pending":
        return phase
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("reason"):
            said = " ".join(str(condition.get("message") or "").split())[:120]
            return f"Pending: {condition['reason']}" + (f" ({said})" if said else "")
    node = (pod.get("spec") or {}).get("nodeName") or "its node"
    return f"Pending: not taken up by the kubelet on {node} yet"


def _unusable(pod: dict[str, Any], image: str) -> str | None:
    """Why a leftover agent pod cannot serve (None: it can be reused)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "terminating"
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    if containers[0].get("image") != image:
        return f"image {containers[0].get('image')}"
    status = pod.get("status") or {}
    if status.get("phase") in ("Failed", "Succeeded"):  # e.g. Failed: DeadlineExceeded (4 h)
        return ": ".join(str(p) for p in (status["phase"], status.get("reason")) if p)
    state = _agent_state(pod)
    return state if state in ENDED or state in PULL_FAILURES else None


def _wait_gone(
    api: ClusterApi,
    namespace: str,
    name: str,
    progress: Progress,
    timeout: float,
    cancelled: threading.Event | None,
) -> None:
    def look() -> tuple[bool | None, str]:
        return (True if api.read_or_none("Pod", namespace, name) is None else None), "terminating"

    poll_until(
        look,
        timeout=timeout,
        every=0.5,
        progress=progress,
        waiting=f"waiting for the old node agent {name} to go",
        gave_up=lambda _: SetupError(
            f"the old node agent {name} is still there after {timeout:.0f}s"
        ),
        cancelled=cancelled,
    )


def _agent_state(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "running" in state:
            return "running"
        reason = (state.get("waiting") or state.get("terminated") or {}).get("reason")
        if reason:
            return str(reason)
    return str(status.get("phase") or "Pending")


def delete_agents(api: ClusterApi, namespace: str, names: Sequence[str] | None = None) -> list[str]:
    """Delete svcwatch's agent pods in `namespace` (all of them, or just `names`); what went."""
    pods = api.list("Pod", namespace, AGENT_LABELS)
    targets = [
        p["metadata"]["name"] for p in pods if names is None or p["metadata"]["name"] in names
    ]
    return [name for name in targets if api.delete("Pod", namespace, name)]
