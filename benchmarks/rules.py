"""Rules read benchmark: one Service's chain on a node with 10,000 Services vs one with 10.

Two throw-away network namespaces are loaded by the real `iptables-restore` with kube-proxy's
rules for 10,000 Services x 3 endpoints and for 10 Services (rendered by svcwatch's own renderer,
one in three a NodePort). One Service is then read through the agent's code path -- NodeAgent
with LocalTransport, which runs in the namespace the same command the exec API runs on a node --
and parsed into its ChainTree, end to end. Printed: ms per read (median of --reads) for the
3-second counters read and the on-change read (which adds the KUBE-SERVICES jumps), each as a
ratio to the same read on the 10-Service node, and the whole-table dump the agent used to ship
(iptables-save -c + parse + service_tree) as the reference. Targets: <= 50 ms a read and <= 2x the
10-Service node. Nothing is asserted.

    sudo .venv/bin/python benchmarks/rules.py                  # iptables (this host's default)
    sudo .venv/bin/python benchmarks/rules.py --tool iptables-legacy
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from svcwatch.cluster.agent import NodeAgent
from svcwatch.kubeproxy.node_rules import render_node
from svcwatch.kubeproxy.restore import parse_save, service_tree, to_restore_text
from svcwatch.model.endpointslice import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from svcwatch.model.service import Service, ServicePort
from svcwatch.session.cluster_nodes import chain_tree
from tests.helpers.local_transport import LocalTransport
from tests.helpers.namespaces import run_in

READY = EndpointConditions(True, True, False)


def ip(base: int, i: int) -> str:
    return f"10.{base + i // 65536}.{i // 256 % 256}.{i % 256}"


def service(i: int) -> tuple[Service, list[EndpointSlice]]:
    node_port = 30000 + i % 2000 if i % 3 == 0 else None
    svc = Service(
        f"ns{i % 50}",
        f"svc{i}",
        (ServicePort(80, target_port=8080, node_port=node_port),),
        type="NodePort" if node_port else "ClusterIP",
        cluster_ip=ip(96, i),
    )
    endpoints = tuple(Endpoint((ip(42, i * 3 + k),), READY) for k in range(3))
    labels = {"kubernetes.io/service-name": svc.name}
    return svc, [
        EndpointSlice(
            svc.namespace, f"{svc.name}-1", endpoints, (EndpointPort(8080),), labels=labels
        )
    ]


@contextmanager
def node(services: int, tool: str) -> Iterator[str]:
    """A namespace holding kube-proxy's rules for `services` Services; deleted after."""
    name = f"svcwatch-bench-{secrets.token_hex(3)}"
    began = time.perf_counter()
    text = to_restore_text(render_node([service(i) for i in range(services)]))
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run_in(name, [f"{tool}-restore"], input=text.encode(), check=True)
        rules, size = text.count("\n-A "), len(text)
        del text  # a smaller process forks faster: LocalTransport forks for every read
        print(
            f"node with {services} Services: {rules} rules ({size / 1e6:.1f} MB) loaded "
            f"in {time.perf_counter() - began:.1f} s"
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def median_ms(read: Callable[[], object], reads: int) -> float:
    times = []
    for _ in range(reads):
        began = time.perf_counter()
        read()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def reads_on(name: str, reads: int) -> dict[str, float]:
    """ms per read of svc0 (a NodePort) through the agent, counters-only and on-change."""
    svc, _ = service(0)
    agent = NodeAgent("bench", LocalTransport(name))
    tree = chain_tree(agent.read_rules(svc), svc)  # finds the backend once
    if len(tree.chains) != 5 or len(tree.entry) != 2:
        raise SystemExit(f"unexpected tree on {name}: {tree.chain_names()} {tree.entry}")
    return {
        "counters read (every 3 s)": median_ms(
            lambda: chain_tree(agent.read_rules(svc, entry=False), svc), reads
        ),
        "on-change read (+ KUBE-SERVICES jumps)": median_ms(
            lambda: chain_tree(agent.read_rules(svc, entry=True), svc), reads
        ),
    }


def whole_dump(name: str, tool: str) -> float:
    """The previous read: the whole nat and filter tables, parsed, then the Service picked out."""
    svc, _ = service(0)

    def read() -> object:
        nat = run_in(name, [f"{tool}-save", "-c", "-t", "nat"], capture_output=True).stdout
        filt = run_in(name, [f"{tool}-save", "-c", "-t", "filter"], capture_output=True).stdout
        return service_tree(parse_save(nat.decode() + filt.decode()), svc)

    return median_ms(read, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tool", default="iptables", help="iptables, iptables-nft or iptables-legacy"
    )
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    with node(10, args.tool) as small:
        base = reads_on(small, args.reads)
    with node(args.services, args.tool) as big:
        large = reads_on(big, args.reads)
        before = whole_dump(big, args.tool)
    for label, ms in large.items():
        print(
            f"{label:<40} {ms:7.1f} ms per read with {args.services} Services, "
            f"{base[label]:6.1f} ms with 10: {ms / base[label]:4.2f}x"
        )
    faster = before / large["counters read (every 3 s)"]
    print(
        f"{'reference: whole dump + parse (before)':<40} {before:7.1f} ms per read with "
        f"{args.services} Services: the counters read is {faster:.0f}x faster"
    )


if __name__ == "__main__":
    main()
