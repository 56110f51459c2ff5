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
from svcwatch.session.common import Notify, one_line
from svcwatch.sinks import EventSink

RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # seconds before each try to reopen a capture
STEADY = 30.0  # seconds a reopened capture must run before the backoff starts over


def chain_tree(rules: NodeRules, service: Service) -> ChainTree:
    """The Service's rules on that node, whichever mode kube-proxy runs in (`kubeproxy.mode`)."""
    from svcwatch.kubeproxy.mode import RulesDump, identify, service_view

    if rules.backend:  # the agent knows which flavour it read (its listings carry no header)
        return service_view(RulesDump(rules.mode, rules.backend, rules.text), service)
    return service_view(identify(rules.text, rules.command), service)


class NodeWatch:
    """Capture and rule reads on one node through its agent.

    The capture is supervised: when its exec stream drops (API server restart, network, the agent
    pod gone) or tcpdump ends on its own, a warning says so and the capture is reopened after a
    backoff (RESTART_DELAYS; `revive` first makes sure the agent pod runs). Stopping a capture --
    on every slice change -- is silent: the reader sees the stop flag before it says anything.
    """

    def __init__(
        self,
        agent: NodeAgent,
        sink: EventSink,
        *,
        label_node: bool,
        notice: Notify,
        node_ip: str,
        revive: Callable[[], None] | None = None,
    ) -> None:
        self.agent = agent
        self.node_ip = node_ip
        self.sink = sink
        self.label_node = label_node
        self.notice = notice
        self.revive = revive
        self.ifnames: dict[int, str] = {}
        self.bpf = ""
        self._stream: io.RawIOBase | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def node(self) -> str:
        return self.agent.node

    def start_capture(self, bpf: str, service_key: str) -> None:
        """(Re)start tcpdump with `bpf`; interface names are re-read (pods come and go)."""
        self.stop_capture()
        stream = self._open(bpf, service_key)
        stop = threading.Event()
        with self._lock:
            self._stream, self.bpf, self._stop = stream, bpf, stop
        self._reader = threading.Thread(
            target=self._supervise,
            args=(stream, service_key, stop),
            name=f"agent-{self.node}",
            daemon=True,
        )
        self._reader.start()

    def _open(self, bpf: str, service_key: str) -> io.RawIOBase:
        self.ifnames = self.agent.links()
        stream = self.agent.capture(bpf)
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
        return stream

    def _supervise(self, stream: io.RawIOBase, service_key: str, stop: threading.Event) -> None:
        """Read the capture; when it ends by itself, reopen it with backoff until stopped."""
        failures = 0
        while True:
            started = time.monotonic()
            why = self._pump(stream)
            if stop.is_set():
                return
            if time.monotonic() - started > STEADY:
                failures = 0
            reopened = self._reopen(why, service_key, stop, failures)
            if reopened is None:
                return
            stream, failures = reopened

    def _pump(self, stream: io.RawIOBase) -> str:
        """Decode until the stream ends; why it ended, in words."""
        node = self.node if self.label_node else None
        try:
            for event in iter_pcap_events(cast(BinaryIO, stream), ifnames=self.ifnames, node=node):
                self.sink.emit(event)
        except (InputError, SetupError, OSError, ValueError) as exc:
            return one_line(exc)
        said = " ".join(getattr(stream, "stderr_text", "").split())[-160:]
        return f"tcpdump exited: {said}" if said else "tcpdump exited"

    def _reopen(
        self, why: str, service_key: str, stop: threading.Event, failures: int
    ) -> tuple[io.RawIOBase, int] | None:
        """Wait, revive the agent, open a new capture; None once stopped."""
        message = f"capture on {self.node} dropped ({why})"
        while True:
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            self.notice("warning", f"{message}: restarting in {delay:g}s")
            if stop.wait(delay):
                return None
            try:
                if self.revive is not None:
                    self.revive()
                stream = self._open(self.bpf, service_key)
            except Exception as exc:  # the agent, the API server or tcpdump is not back yet
                failures += 1
                message = f"capture on {self.node} could not restart ({one_line(exc)})"
                continue
            with self._lock:
                if stop.is_set():  # stopped while it was opening
                    stream.close()
                    return None
                self._stream = stream
            self.notice("info", f"capture on {self.node} restarted")
            return stream, failures + 1

    def stop_capture(self) -> None:
        """Stop the capture and its reader, silently."""
        with self._lock:
            stream, self._stream = self._stream, None
            self._stop.set()  # under the lock: a reopen in flight sees it and closes its stream
        if stream is not None:
            stream.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def read_rules(self, service: Service, *, entry: bool) -> NodeRules:
        return self.agent.read_rules(service, entry=entry)
