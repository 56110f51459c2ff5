"""What svcwatch reads on each watched node of a real cluster: packets and kube-proxy's rules.

One `NodeWatch` per node joins the cluster agent (commands over exec) to the lab's decoders: the
tcpdump pcap stream goes through the same `iter_pcap_events` the tests check against the lab's
AF_PACKET capture, and the rules through the same `parse_save`/`service_tree` (or the nftables
reader when kube-proxy runs in nftables mode). Packet rows carry the node name only when more than
one node is watched, so a one-node cluster reads exactly like the lab.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, cast

from svcwatch.capture.pcapstream import iter_pcap_events
from svcwatch.cluster.agent import NodeAgent, NodeRules
from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.events import CaptureStarted
from svcwatch.model.service import Service
from svcwatch.sinks import EventSink


def chain_tree(rules: NodeRules, service: Service) -> ChainTree:
    """The Service's rules on that node, whichever mode kube-proxy runs in (`kubeproxy.mode`)."""
    from svcwatch.kubeproxy.mode import RulesDump, identify, service_view

    if rules.backend:  # the agent knows which flavour it read (its listings carry no header)
        return service_view(RulesDump(rules.mode, rules.backend, rules.text), service)
    return service_view(identify(rules.text, rules.command), service)


class NodeWatch:
    """Capture and rule reads on one node through its agent."""

    def __init__(
        self,
        agent: NodeAgent,
        sink: EventSink,
        *,
        label_node: bool,
        on_error: Callable[[str], None],
        node_ip: str,
    ) -> None:
        self.agent = agent
        self.node_ip = node_ip
        self.sink = sink
        self.label_node = label_node
        self.on_error = on_error
        self.ifnames: dict[int, str] = {}
        self.bpf = ""
        self._stream: io.RawIOBase | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def node(self) -> str:
        return self.agent.node

    def start_capture(self, bpf: str, service_key: str) -> None:
        """(Re)start tcpdump with `bpf`; interface names are re-read (pods come and go)."""
        self.stop_capture()
        self.ifnames = self.agent.links()
        stream = self.agent.capture(bpf)
        with self._lock:
            self._stream, self.bpf = stream, bpf
        self._reader = threading.Thread(
            target=self._read, args=(stream,), name=f"agent-{self.node}", daemon=True
        )
        self._reader.start()
        where = f" on {self.node}" if self.label_node else ""
        self.sink.emit(
            CaptureStarted(
                time.time(),
                service_key + where,
                bpf,
                link="Linux SLL2",
                interfaces=tuple(sorted(self.ifnames.values())),
            )
        )

    def _read(self, stream: io.RawIOBase) -> None:
        node = self.node if self.label_node else None
        try:
            for event in iter_pcap_events(cast(BinaryIO, stream), ifnames=self.ifnames, node=node):
                self.sink.emit(event)
        except (InputError, SetupError, OSError, ValueError) as exc:
            if not stream.closed:
                self.on_error(f"capture on {self.node} stopped: {' '.join(str(exc).split())}")
        if not stream.closed:  # tcpdump ended on its own: say so, with its last words
            said = getattr(stream, "stderr_text", "")
            self.on_error(
                f"capture on {self.node} ended: {' '.join(said.split())[-160:] or 'tcpdump exited'}"
            )

    def stop_capture(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def read_rules(self, service: Service, *, entry: bool) -> NodeRules:
        return self.agent.read_rules(service, entry=entry)
