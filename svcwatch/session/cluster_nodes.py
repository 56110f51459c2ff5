"""The watched nodes of a ClusterSession: an agent pod on each, its capture, its rule reads.

One concept, two parts. `NodeWatch` is one node: its agent (commands over exec) joined to the lab's
decoders -- the tcpdump pcap stream through the same `iter_pcap_events` the tests check against
the lab's AF_PACKET capture (supervised: a dropped stream is reopened with backoff), the rules
through the same kube-proxy readers (`chain_tree`). `AgentFleet` is all of them: it starts a stock
node agent pod per watched node (and revives it when it is gone), re-filters every node's capture
together when the Service or slice changes, and reads kube-proxy's rules on one thread: after
every change and every RULES_PERIOD seconds (the counters move). Each read costs the same on a node
with 10 Services or 10,000 (see cluster/rules_read.py), except the KUBE-SERVICES jumps, which are
re-read after changes and every ENTRY_PERIOD. The first node (by name) is the one whose chain tree
the dashboard shows until `n` picks another. Packet rows carry the node name only when more than
one node is watched, so a one-node cluster reads exactly like the lab.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from svcwatch.capture.pcapstream import iter_pcap_events
from svcwatch.cluster.agent import (
    NodeAgent,
    NodeRules,
    agent_pod_name,
    delete_agents,
    start_agent,
)
from svcwatch.cluster.api import ClusterApi
from svcwatch.kubeproxy.rules import ChainTree, Rule
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.events import CaptureStarted, RulesSynced
from svcwatch.model.service import Service
from svcwatch.session.common import Notify, one_line
from svcwatch.sinks import EventSink

RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # seconds before each try to reopen a capture
STEADY = 30.0  # seconds a reopened capture must run before the backoff starts over
RULES_PERIOD = 3.0  # seconds between rule reads when nothing changed (counters move)
ENTRY_PERIOD = 30.0  # seconds between re-reads of the KUBE-SERVICES jumps when nothing changed
Guard = Callable[[Callable[[], object]], bool]  # runs one teardown step; False when it failed


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


class AgentFleet:
    """Agent pods and their NodeWatches, by node name, and the thread that reads their rules."""

    def __init__(self, notice: Notify) -> None:
        self.notice = notice
        self.nodes: dict[str, NodeWatch] = {}
        self.agents: list[str] = []  # agent pod names, to delete on stop
        self.trees: dict[str, ChainTree] = {}  # each node's chain tree, as last read
        self.shown: str | None = None  # the node the chain pane shows (None: the first)
        self._entries: dict[str, tuple[float, list[Rule]]] = {}  # node -> (read at, jumps in)
        self._rules_wanted = threading.Event()
        self._stopping = threading.Event()
        self._rules_thread: threading.Thread | None = None
        self._revive_lock = threading.Lock()

    def start_agents(
        self,
        api: ClusterApi,
        namespace: str,
        nodes: list[str],
        sink: EventSink,
        *,
        image: str,
        transport_factory: Any,
        fallback_ip: str,
    ) -> None:
        """One agent pod per node, each streaming into `sink` (node-labelled when several).

        Each pod is on the list to delete before it is waited for: a stop during the wait
        (`begin_stop` ends it) must not leave a Pending agent behind."""
        for node in nodes:
            self.agents.append(agent_pod_name(node))
            pod = self._run_agent(api, namespace, node, image)
            # hostNetwork: the agent's hostIP is its node's InternalIP, where NodePorts listen.
            node_ip = (api.read("Pod", namespace, pod).get("status") or {}).get("hostIP")
            agent = NodeAgent(node, transport_factory(api, namespace, pod, node, image))
            self.nodes[node] = NodeWatch(
                agent,
                sink,
                label_node=len(nodes) > 1,
                notice=self.notice,
                node_ip=node_ip or fallback_ip,
                revive=lambda node=node: self._revive(api, namespace, node, image),  # type: ignore[misc]
            )

    def _revive(self, api: ClusterApi, namespace: str, node: str, image: str) -> None:
        """Make sure `node`'s agent pod runs (it expires after 4 h, or was deleted): re-create it
        if it does not. One at a time: the capture and the rules thread may both ask."""
        if self._stopping.is_set():
            return
        with self._revive_lock:
            self._run_agent(api, namespace, node, image)

    def _run_agent(self, api: ClusterApi, namespace: str, node: str, image: str) -> str:
        """`start_agent`, its progress as info notices, its waits ended by `begin_stop`."""

        def progress(message: str) -> None:
            self.notice("info", message)

        return start_agent(api, namespace, node, image, progress, cancelled=self._stopping)

    def refilter(self, bpf_for: Callable[[str], str], service_key: str) -> None:
        """Restart each node's capture whose filter (`bpf_for(node_ip)`) changed; none once
        stopping."""
        if self._stopping.is_set():
            return
        for watch in self.nodes.values():
            bpf = bpf_for(watch.node_ip)
            if watch.bpf != bpf:
                watch.start_capture(bpf, service_key)

    def start_rules(self, service: Callable[[], Service], emit: Callable[[Any], None]) -> None:
        """Read the rules now, then after every `want_rules` and every RULES_PERIOD seconds."""
        self._rules_thread = threading.Thread(
            target=self._rules_loop, args=(service, emit), name="cluster-rules", daemon=True
        )
        self._rules_thread.start()

    def want_rules(self) -> None:
        self._rules_wanted.set()

    def _rules_loop(self, service: Callable[[], Service], emit: Callable[[Any], None]) -> None:
        known: dict[str, set[str]] = {}
        changed = True
        while not self._stopping.is_set():
            for node, watch in list(self.nodes.items()):
                try:
                    self._read_rules(node, watch, known, service(), emit, changed=changed)
                except Exception as exc:  # one node's failure must not stop the others
                    self.notice("warning", f"rules on {node}: {one_line(exc)}")
                    self._quiet_revive(watch)
            changed = self._rules_wanted.wait(RULES_PERIOD)
            self._rules_wanted.clear()

    def _quiet_revive(self, watch: NodeWatch) -> None:
        """After a failed read: bring the agent back if it is gone (saying why if it cannot)."""
        try:
            if watch.revive is not None:
                watch.revive()
        except Exception as exc:  # reported; the next read tries again
            self.notice("warning", f"node agent on {watch.node}: {one_line(exc)}")

    def _read_rules(
        self,
        node: str,
        watch: NodeWatch,
        known: dict[str, set[str]],
        service: Service,
        emit: Callable[[Any], None],
        *,
        changed: bool,
    ) -> None:
        started = time.time()
        tree = self._read_tree(watch, service, known.get(node), changed=changed)
        if tree is None:
            return
        tree.node = node
        self.trees[node] = tree
        chains = set(tree.chain_names())
        before = known.get(node)
        known[node] = chains
        if before != chains:
            emit(
                RulesSynced(
                    time.time(),
                    service.key,
                    tuple(sorted(chains - (before or set()))),
                    tuple(sorted((before or set()) - chains)),
                    proxy_backend=tree.proxy_backend,
                    took_ms=(time.time() - started) * 1000,
                )
            )

    def _read_tree(
        self, watch: NodeWatch, service: Service, chains: set[str] | None, *, changed: bool
    ) -> ChainTree | None:
        """The Service's tree on the node; the jumps into it are re-read only after a change,
        when its chains changed, or every ENTRY_PERIOD (their cost grows with the node)."""
        node, now = watch.node, time.time()
        last = self._entries.get(node)
        entry = changed or last is None or now - last[0] > ENTRY_PERIOD
        rules = watch.read_rules(service, entry=entry)
        if rules.mode == "none":
            self.notice(
                "warning",
                f"no kube-proxy rules on {node} (iptables nor nftables): is kube-proxy replaced?",
            )
            return None
        tree = chain_tree(rules, service)
        if not rules.entry and set(tree.chain_names()) != chains:
            rules = watch.read_rules(service, entry=True)
            tree = chain_tree(rules, service)
        if rules.entry:
            self._entries[node] = (now, list(tree.entry))
        elif last is not None:
            tree.entry = list(last[1])
        return tree

    @property
    def tree(self) -> ChainTree | None:
        """The shown node's chain tree, as last read (the first node's until `n` is pressed)."""
        node = self.shown or next(iter(sorted(self.nodes)), None)
        return self.trees.get(node) if node is not None else None

    def show_next_node(self) -> str:
        """Cycle the shown node through the watched ones (by name); the one shown now."""
        names = sorted(self.nodes)
        if not names:
            raise InputError("no node is watched yet")
        current = self.shown if self.shown in names else names[0]
        self.shown = names[(names.index(current) + 1) % len(names)]
        self.want_rules()
        return self.shown

    @property
    def stopping(self) -> threading.Event:
        """Set once the session stops: every start-up wait (agent, probe pod) gives up."""
        return self._stopping

    def begin_stop(self) -> None:
        """No capture restarts from here on, start-up waits end; the rules thread wakes to end."""
        self._stopping.set()
        self._rules_wanted.set()

    def stop_captures(self, guard: Guard) -> None:
        """Stop every node's capture (each through `guard`), then wait for the rules thread."""
        for watch in self.nodes.values():
            guard(watch.stop_capture)
        if self._rules_thread is not None:
            self._rules_thread.join(timeout=10)

    def delete_agents(self, api: ClusterApi | None, namespace: str, guard: Guard) -> None:
        """Delete the agent pods (through `guard`, saying so), and forget the nodes."""
        if api is not None and self.agents:
            agents = list(self.agents)
            if guard(lambda: delete_agents(api, namespace, agents)):
                self.notice("info", f"deleted node agent(s) {', '.join(agents)}")
        self.nodes, self.agents = {}, []
