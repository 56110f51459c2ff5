"""Watch benchmark: how long a lab write takes to reach the watcher's handler.

A writer subprocess (as `svcwatch lab apply` would be) writes the slice N times through
ObjectStore.write_slice, spaced apart so each write is its own change; every write stamps its
time in the written-at annotation. Two watchers run in this process on the same directory: the
LabSource (inotify through watchfiles, the real one) and a reference that polls os.stat() every
POLL_MS, as a watcher without inotify would. Printed: the latency distribution (write -> handler)
of each, their ratio, and how many writes each saw. The target is <= 100 ms for the LabSource.

    .venv/bin/python benchmarks/watch.py
    .venv/bin/python benchmarks/watch.py --writes 200 --gap-ms 80 --poll-ms 50

Nothing is asserted; the numbers are compared with the reference run in the same process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from svcwatch.model.endpointslice import Endpoint, EndpointPort, EndpointSlice
from svcwatch.store import WRITTEN_AT_ANNOTATION, ObjectStore
from svcwatch.watch.events import WatchEvent
from svcwatch.watch.lab_source import LabSource

WRITER = """
import sys, time
from dataclasses import replace
from pathlib import Path
from svcwatch.store import ObjectStore
store = ObjectStore(Path(sys.argv[1])); writes = int(sys.argv[2]); gap = float(sys.argv[3])
base = store.read_slice()
for i in range(writes):
    store.write_slice(base.with_ports(replace(base.ports[0], port=20000 + i)))
    time.sleep(gap)
"""


def inotify_latencies(store: ObjectStore, writes: int, gap_ms: float) -> tuple[list[float], int]:
    """Run the writer with the LabSource watching; (latencies in ms, writes seen)."""
    latencies: list[float] = []

    def handler(event: WatchEvent) -> None:
        written = event.body["metadata"].get("annotations", {}).get(WRITTEN_AT_ANNOTATION)
        if event.type == "MODIFIED" and written:
            latencies.append((event.seen_at - float(written)) * 1000)

    source = LabSource(store, handler, on_error=lambda line: print("error:", line))
    source.start()
    try:
        run_writer(store, writes, gap_ms)
        time.sleep(0.2)  # the last write's event
    finally:
        source.stop()
    return latencies, len(latencies)


def polling_latencies(
    store: ObjectStore, writes: int, gap_ms: float, poll_ms: float
) -> tuple[list[float], int]:
    """The same writes, seen by an os.stat() poller; latency = poll that saw it - write stamp."""
    latencies: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        last = os.stat(store.slice_path).st_mtime_ns
        while not stop.wait(poll_ms / 1000):
            mtime = os.stat(store.slice_path).st_mtime_ns
            if mtime != last:
                last = mtime
                seen_at = time.time()
                written = float(store.read_slice().annotations[WRITTEN_AT_ANNOTATION])
                latencies.append((seen_at - written) * 1000)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        run_writer(store, writes, gap_ms)
        time.sleep(max(0.2, 2 * poll_ms / 1000))
    finally:
        stop.set()
        poller.join()
    return latencies, len(latencies)


def run_writer(store: ObjectStore, writes: int, gap_ms: float) -> None:
    subprocess.run(
        [sys.executable, "-c", WRITER, str(store.root), str(writes), str(gap_ms / 1000)],
        check=True,
    )


def summary(name: str, latencies: list[float], seen: int, writes: int) -> float:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(
        f"{name:<22} seen {seen:>3}/{writes}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
        f"max {ordered[-1]:6.1f} ms  min {ordered[0]:5.1f} ms"
    )
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument(
        "--gap-ms", type=float, default=150.0, help="pause between writes (> poll interval)"
    )
    parser.add_argument("--poll-ms", type=float, default=100.0, help="the reference poll interval")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="svcwatch-bench-watch-") as tmp:
        store = ObjectStore(Path(tmp))
        store.write_slice(
            EndpointSlice(
                namespace="default",
                name="socat",
                endpoints=(Endpoint(addresses=("10.42.0.142",)),),
                ports=(EndpointPort(port=12345, name=""),),
                labels={"kubernetes.io/service-name": "socat"},
            )
        )
        fast, fast_seen = inotify_latencies(store, args.writes, args.gap_ms)
        slow, slow_seen = polling_latencies(store, args.writes, args.gap_ms, args.poll_ms)
    print(f"{args.writes} writes from a second process, {args.gap_ms:.0f} ms apart")
    fast_p50 = summary("LabSource (inotify)", fast, fast_seen, args.writes)
    slow_p50 = summary(f"os.stat poll {args.poll_ms:.0f} ms", slow, slow_seen, args.writes)
    print(f"p50 ratio inotify/poll: {fast_p50 / slow_p50:.2f}")
    verdict = "met" if max(fast) <= 100 else "NOT met"
    print(f"target write -> handler <= 100 ms (every write): {verdict}")


if __name__ == "__main__":
    main()
