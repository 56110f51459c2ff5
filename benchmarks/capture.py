"""Capture benchmark: svcwatch's NodeCapture against `tcpdump -i any` on the same flood.

Builds a throw-away lab, sends small UDP packets from the client namespace to the node's IP and
NodePort, and DNATs them to the socat pod (one extra nat rule in the node, a DROP in the pod so
nothing answers): every packet is three frames in the node (eth0 in, cni0 out, pod veth out), all
matching the Service's capture filter. Both captures run at once with the same filter. Printed per
rate and for one burst: packets sent, frames each tool saw, kernel drops, CPU per frame, svcwatch's
count as a ratio of tcpdump's, and svcwatch's RSS over the run. Nothing is asserted: the numbers
are compared with the reference run in the same process (tcpdump), as docs/design.md does.

    sudo .venv/bin/python benchmarks/capture.py            # 1k, 5k, 10k pkt/s for 5 s + a 20k burst
    sudo .venv/bin/python benchmarks/capture.py --long     # 10k pkt/s for 60 s as well
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from svcwatch import netns
from svcwatch.capture.bpf import filter_for
from svcwatch.capture.sniffer import NodeCapture
from svcwatch.lab.node import LabNode
from svcwatch.lab.sources import load_manifests
from svcwatch.lab.topology import LabSpec
from svcwatch.model.events import Event
from tests.helpers.namespaces import run_in

# A paced UDP sender, run inside the client namespace as its own process (so its CPU is not ours).
SENDER = r"""
import socket, sys, time
host, port, rate, count = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
send, payload, sent, begin = s.send, b"x" * 18, 0, time.perf_counter()
while sent < count:
    due = count if rate <= 0 else min(count, int((time.perf_counter() - begin) * rate) + 1)
    while sent < due:
        try:
            send(payload); sent += 1
        except BlockingIOError:
            break
    if rate > 0:
        time.sleep(0.0005)
print(sent, time.perf_counter() - begin)
"""


class RingSink:
    """What a dashboard keeps: the most recent events, bounded, and a count."""

    def __init__(self, size: int = 20000) -> None:
        self.recent: deque[Event] = deque(maxlen=size)
        self.count = 0

    def emit(self, event: Event) -> None:
        self.emit_many((event,))

    def emit_many(self, events: Sequence[Event]) -> None:
        self.recent.extend(events)
        self.count += len(events)


@dataclass
class Result:
    label: str
    sent: int
    seconds: float
    svcwatch_frames: int
    svcwatch_drops: int
    svcwatch_cpu: float
    tcpdump_frames: int
    tcpdump_drops: int
    tcpdump_cpu: float
    rss_mib: list[float]

    def row(self) -> str:
        ratio = self.svcwatch_frames / self.tcpdump_frames if self.tcpdump_frames else float("nan")
        us = (self.svcwatch_cpu / self.svcwatch_frames * 1e6) if self.svcwatch_frames else 0.0
        td_us = (self.tcpdump_cpu / self.tcpdump_frames * 1e6) if self.tcpdump_frames else 0.0
        rss = f"{min(self.rss_mib):.0f}-{max(self.rss_mib):.0f}" if self.rss_mib else "?"
        return (
            f"{self.label:>14} {self.sent:>8} {self.sent / self.seconds:>9.0f} "
            f"{self.svcwatch_frames:>9} "
            f"{self.svcwatch_drops:>6} {us:>7.2f} {self.tcpdump_frames:>9} {self.tcpdump_drops:>6} "
            f"{td_us:>6.2f} {ratio:>6.3f} {rss:>9}"
        )


HEADER = (
    f"{'run':>14} {'sent':>8} {'pkt/s':>9} {'svc frames':>9} {'drops':>6} {'us/frm':>7} "
    f"{'tcpdump':>9} {'drops':>6} {'us/frm':>6} {'ratio':>6} {'RSS MiB':>9}"
)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_tcpdump(node_ns: str, bpf: str) -> subprocess.Popen[str]:
    proc = netns.popen_in(
        node_ns,
        ["tcpdump", "-i", "any", "-n", "-w", "/dev/null", bpf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    proc.stderr.readline()  # "tcpdump: listening on any ...": it is capturing from here on
    return proc


def stop_tcpdump(proc: subprocess.Popen[str]) -> tuple[int, int, float]:
    """Frames captured, kernel drops and CPU seconds of a tcpdump stopped with SIGINT."""
    proc.send_signal(signal.SIGINT)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    assert proc.stderr is not None
    text = proc.stderr.read()
    # "received by filter" counts what the kernel handed tcpdump, including the frames still in
    # its ring when SIGINT arrived; "captured" only those it had written by then.
    captured = int(re.search(r"(\d+) packets? received by filter", text).group(1))  # type: ignore[union-attr]
    dropped = int(re.search(r"(\d+) packets? dropped by kernel", text).group(1))  # type: ignore[union-attr]
    return captured, dropped, usage.ru_utime + usage.ru_stime


def thread_cpu(thread: threading.Thread | None) -> float:
    if thread is None or thread.ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def capture_filter(node: LabNode) -> str:
    spec = node.spec
    return filter_for(
        node.service(),
        node.current_slice(),
        node_ip=spec.node_ip,
        pod_cidr=spec.pod_cidr,
        client_ip=spec.client_ip,
    )


def flood(node: LabNode, label: str, rate: float, count: int) -> Result:
    """One measured flood: both captures on, the sender in the client namespace, then the tally."""
    spec = node.spec
    bpf = capture_filter(node)
    sink = RingSink()
    capture = NodeCapture(spec.node_ns, sink, service_key="bench")
    capture.start(bpf)
    tcpdump = start_tcpdump(spec.node_ns, bpf)
    rss: list[float] = []
    sender = netns.popen_in(
        spec.client_ns,
        [sys.executable, "-c", SENDER, spec.node_ip, "31234", str(rate), str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    while sender.poll() is None:
        rss.append(rss_mib())
        time.sleep(0.25)
    sent, seconds = sender.communicate()[0].split()
    time.sleep(0.5)  # let both drain their buffers
    cpu = thread_cpu(capture._thread)
    stats = capture.stats()
    capture.stop()
    td_frames, td_drops, td_cpu = stop_tcpdump(tcpdump)
    rss.append(rss_mib())
    return Result(
        label,
        int(sent),
        max(float(seconds), 1e-6),
        stats["frames"],
        stats["drops"],
        cpu,
        td_frames,
        td_drops,
        td_cpu,
        rss,
    )


def prepare_dnat(spec: LabSpec) -> None:
    """UDP to the NodePort is DNATed to the pod, which drops it: 3 frames a packet, no replies."""
    rule = [
        "iptables",
        "-w",
        "-t",
        "nat",
        "-I",
        "PREROUTING",
        "-p",
        "udp",
        "-d",
        spec.node_ip,
        "--dport",
        "31234",
        "-j",
        "DNAT",
        "--to-destination",
        f"{spec.echo_ip}:{spec.echo_port}",
    ]
    run_in(spec.node_ns, rule, check=True)
    run_in(
        spec.echo_pod().netns,
        ["iptables", "-w", "-A", "INPUT", "-p", "udp", "-j", "DROP"],
        check=True,
    )


@contextmanager
def flood_lab() -> Iterator[LabNode]:
    """A throw-away lab (own name, own state dir) with the UDP DNAT path ready; always torn down."""
    state = Path(tempfile.mkdtemp(prefix="svcwatch-bench-"))
    manifests = load_manifests(None)
    spec = LabSpec.from_manifests(manifests, f"bench{secrets.token_hex(2)}", idle_pods=2)
    node = LabNode.up(spec, manifests, state)
    try:
        prepare_dnat(spec)
        yield node
    finally:
        LabNode.down(spec.name, state)
        shutil.rmtree(state, ignore_errors=True)  # its state dir too: nothing left behind


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each paced run")
    parser.add_argument(
        "--rates", default="1000,5000,10000", help="packets per second, comma-separated"
    )
    parser.add_argument("--burst", type=int, default=20000, help="packets in the unpaced burst")
    parser.add_argument("--long", action="store_true", help="also 10k pkt/s for 60 s")
    args = parser.parse_args()
    with flood_lab() as node:
        print(
            f"each packet = 3 frames (eth0, cni0, veth); filter: {capture_filter(node)}\n{HEADER}",
            flush=True,
        )
        runs = [
            (f"{int(r)}/s x{args.seconds:g}s", float(r), int(float(r) * args.seconds))
            for r in args.rates.split(",")
        ]
        runs.append((f"burst {args.burst}", 0.0, args.burst))
        if args.long:
            runs.append(("10000/s x60s", 10000.0, 600000))
        for label, rate, count in runs:
            print(flood(node, label, rate, count).row(), flush=True)


if __name__ == "__main__":
    main()
