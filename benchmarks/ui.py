"""Dashboard benchmark, driven through Textual's pilot on a real lab (needs root).

Measured in one process, on a throw-away lab built by make_session (the same LabSession the
`svcwatch` command uses):
1. cold start: App constructed -> every pane showing real data (chain, slice, a probe);
2. key -> new rules visible in the chain pane (2 = wrong port and back), median and max;
3. key -> first probe result of the new scenario (probe interval given by --interval);
4. key-press handling latency (space -> the pane is paused/resumed), at rest (the reference)
   and while the lab is flooded with UDP to the NodePort at --flood-rate packets/s;
5. memory (RSS) over --mem-seconds at 1,000 packets/s, sampled every 10 s.
Nothing is asserted; ratios compare with the at-rest reference in the same run.

    sudo .venv/bin/python benchmarks/ui.py
    sudo .venv/bin/python benchmarks/ui.py --mem-seconds 1800   # the 30-minute run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.capture import SENDER, prepare_dnat  # noqa: E402
from svcwatch import netns  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def until(check: Callable[[], bool], limit: float = 15.0) -> float:
    """Seconds until `check()` holds, polling the shared event loop every millisecond."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > limit:
            return float("nan")
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


def dnat_port(app) -> int | None:  # type: ignore[no-untyped-def]
    tree = app.main.chain_pane.chain_tree
    targets = [
        r.dnat_to for rules in (tree.chains.values() if tree else []) for r in rules if r.dnat_to
    ]
    return int(targets[-1].rsplit(":", 1)[1]) if len(targets) == 1 else None


def flood(session, rate: float, seconds: float) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    spec = session.node.spec
    count = int(rate * seconds)
    return netns.popen_in(
        spec.client_ns,
        [sys.executable, "-c", SENDER, spec.node_ip, "31234", str(rate), str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )


def send_key(app, key: str, char: str) -> None:  # type: ignore[no-untyped-def]
    """Hand a key to the app the way the terminal driver does (no waiting for an idle loop)."""
    from textual import events

    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)


async def key_latencies(app, presses: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Key event handed to the app as the terminal driver does -> the action has run.

    (pilot.press also waits for the whole loop to go idle, which a live lab rarely lets happen,
    so it would time the wait, not the key.)
    """
    pane = app.main.packet_pane
    out = []
    for _ in range(presses):
        before = pane.paused
        start = time.perf_counter()
        send_key(app, "space", " ")
        await until(partial(differs, lambda: bool(pane.paused), before))
        out.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)
    return out


def differs(read: Callable[[], object], before: object) -> bool:
    return read() != before


def equals(read: Callable[[], object], wanted: object) -> bool:
    return read() == wanted


def _probed_since(app: Any, pressed_at: float, ok: bool) -> bool:
    """A probe that started after the key press, with the outcome the scenario should give."""
    return any((p.started or p.ts) >= pressed_at and p.ok == ok for p in app.main.probe_pane.recent)


ARRIVALS: dict[str, list[float]] = {"synced": [], "chain": []}


def note_arrival(message: object) -> None:
    """When the app received a rules sync and a chain read after one (for the breakdown)."""
    from svcwatch.model.events import RulesSynced
    from svcwatch.ui.messages import ChainRead, EventsArrived

    if isinstance(message, EventsArrived) and any(
        isinstance(e, RulesSynced) for e in message.events
    ):
        ARRIVALS["synced"].append(time.perf_counter())
    elif isinstance(message, ChainRead) and message.after_sync:
        ARRIVALS["chain"].append(time.perf_counter())


def first_after(name: str, start: float) -> float:
    return next((t - start for t in ARRIVALS[name] if t >= start), float("nan")) * 1000


async def scenario_switches(app, pilot, rounds: int, interval: float) -> None:  # type: ignore[no-untyped-def]
    rules, probes, synced, chain = [], [], [], []
    for i in range(rounds):
        wanted = 12346 if i % 2 == 0 else 12345
        pressed_at = time.time()
        start = time.perf_counter()
        send_key(app, "2", "2")
        await until(partial(equals, lambda: dnat_port(app), wanted))
        rules.append(time.perf_counter() - start)
        synced.append(first_after("synced", start))
        chain.append(first_after("chain", start))
        await until(partial(_probed_since, app, pressed_at, wanted == 12345))
        probes.append(time.perf_counter() - start)
        await asyncio.sleep(0.3)
    ms = [r * 1000 for r in rules]
    print(
        f"key -> new rules in chain pane   median {statistics.median(ms):7.1f} ms  "
        f"max {max(ms):7.1f} ms  (n={rounds}; target <= 100 ms)"
    )
    print(
        f"  of which: key -> RulesSynced at the app median {statistics.median(synced):6.1f} ms; "
        f"-> chain read back median {statistics.median(chain):6.1f} ms"
    )
    pms = [p * 1000 for p in probes]
    print(
        f"key -> first probe of new scenario median {statistics.median(pms):5.0f} ms  "
        f"max {max(pms):7.0f} ms  "
        f"(probe interval {interval * 1000:.0f} ms; target <= interval + 100 ms)"
    )


def bench_session(prefix: str, interval: float):  # type: ignore[no-untyped-def]
    """A throw-away 2-pod lab session named `prefix` + 4 hex digits, as `svcwatch` makes it."""
    from svcwatch.session.factory import make_session
    from svcwatch.session.settings import LabSettings, ProbeFlags, SessionSettings

    lab = LabSettings(
        lab_name=prefix + secrets.token_hex(2),
        pods=2,
        probes=ProbeFlags(interval=interval, timeout=1.0),
    )
    return make_session(SessionSettings(backend=lab))


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("SVCWATCH_STATE_DIR", tempfile.mkdtemp(prefix="svcwatch-bench-ui-"))
    constructed = time.perf_counter()
    import svcwatch.session.factory  # noqa: F401  -- timed: its import is part of a cold start
    from svcwatch.ui.app import SvcwatchApp

    imported = time.perf_counter()
    session = bench_session("bu", args.interval)
    built = time.perf_counter()
    app = SvcwatchApp(session)
    try:
        async with app.run_test(size=(160, 50), message_hook=note_arrival) as pilot:
            await until(
                lambda: (
                    app.main.chain_pane.chain_tree is not None
                    and bool(app.main.probe_pane.recent)
                    and bool(app.main.evidence.facts)
                ),
                limit=60,
            )
            print(f"import svcwatch.ui + session factory {(imported - constructed) * 1000:7.0f} ms")
            print(
                f"cold start to first full frame   {(time.perf_counter() - built) * 1000:7.0f} ms "
                "(App built -> chain, slice facts and a probe on screen, lab build included; "
                "target <= 1.5 s)"
            )
            await scenario_switches(app, pilot, args.rounds, args.interval)
            rest = await key_latencies(app, args.presses)
            prepare_dnat(session.node.spec)  # UDP to the NodePort reaches the pod, which drops it
            sender = flood(session, args.flood_rate, args.flood_seconds)
            await asyncio.sleep(1.0)
            flooded = await key_latencies(app, args.presses)
            await asyncio.to_thread(sender.communicate)
            pane = app.main.packet_pane
            print(
                f"key-press latency at rest        p50 {pct(rest, 0.5) * 1000:6.1f} ms  "
                f"p95 {pct(rest, 0.95) * 1000:6.1f} ms (reference)"
            )
            print(
                f"key-press latency, {args.flood_rate:,.0f} pkt/s   "
                f"p50 {pct(flooded, 0.5) * 1000:6.1f} ms  p95 {pct(flooded, 0.95) * 1000:6.1f} ms  "
                f"(p95 ratio {pct(flooded, 0.95) / pct(rest, 0.95):.1f}x; target p95 <= 50 ms)"
            )
            print(
                f"packets not drawn during the flood: {pane.not_drawn:,}; "
                f"drawn lines kept: {len(pane.view.lines):,}"
            )
            await memory_run(session, args)
            await pilot.press("q")
            await until(lambda: session.node is None or not app.is_running, limit=30)
    finally:
        session.stop()


async def memory_run(session, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    sender = flood(session, 1000, args.mem_seconds)
    samples = [rss_mib()]
    start = time.perf_counter()
    while time.perf_counter() - start < args.mem_seconds:
        await asyncio.sleep(min(10, args.mem_seconds))
        samples.append(rss_mib())
    await asyncio.to_thread(sender.communicate)
    trace = " ".join(f"{s:.0f}" for s in samples)
    print(
        f"RSS MiB every 10 s at 1,000 pkt/s for {args.mem_seconds:.0f} s: {trace}  "
        f"(growth after the first sample: {samples[-1] - samples[1]:+.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", type=float, default=0.5, help="probe interval (s)")
    parser.add_argument("--rounds", type=int, default=8, help="scenario switches to time")
    parser.add_argument("--presses", type=int, default=40, help="key presses per latency sample")
    parser.add_argument(
        "--flood-rate", type=float, default=10_000, help="packets/s during the flood"
    )
    parser.add_argument("--flood-seconds", type=float, default=12.0)
    parser.add_argument("--mem-seconds", type=float, default=60.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
