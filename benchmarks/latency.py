"""Where key -> new rules in the chain pane goes, hop by hop, on a real lab (needs root).

Drives the dashboard through Textual's pilot (as benchmarks/ui.py does), presses `2` (wrong port,
then back to happy) --rounds times, and timestamps every hop of the path by wrapping the real
functions in this process only:

    key -> action -> worker (request_scenario) -> slice written -> watcher handler
    -> reconcile (iptables-save nat, render, iptables-restore) -> RulesSynced emitted
    -> capture re-filtered -> RulesSynced at the app -> chain read (iptables-save -c)
    -> ChainRead at the app -> new DNAT target visible in the chain pane

Prints the median (and p90) of each hop's delta and of the cumulative time since the key.

    sudo .venv/bin/python benchmarks/latency.py --rounds 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks.ui import bench_session, dnat_port, equals, send_key, until  # noqa: E402

STAMPS: dict[str, list[float]] = {}

# (hop, the hop it follows, what it means), in path order; a hop's time is its first stamp after
# the one of the hop it follows (the watcher's refilter and the app's batch run side by side).
HOPS = (
    ("action", "key", "key handled: action_scenario runs"),
    ("worker", "action", "worker thread: request_scenario entered"),
    ("written", "worker", "slice written to the store (pod action included)"),
    ("handler", "written", "watcher handler called (inotify + debounce + re-read)"),
    ("reconcile", "handler", "reconcile entered (SliceChanged emitted, lock)"),
    ("nat_saved", "reconcile", "iptables-save -t nat returned (none: chains remembered)"),
    ("restored", "reconcile", "iptables-restore --noflush returned"),
    ("synced", "restored", "reconcile returned (RulesSynced built)"),
    ("refiltered", "synced", "capture filter re-set, handler done (side branch)"),
    ("app_synced", "synced", "RulesSynced batch at the app"),
    ("read_start", "synced", "chain read started"),
    ("read_end", "read_start", "chain read returned (iptables-save -c parsed)"),
    ("app_chain", "read_end", "ChainRead at the app"),
    ("visible", "app_chain", "new DNAT target in the chain pane"),
)


def stamp(name: str) -> None:
    STAMPS.setdefault(name, []).append(time.perf_counter())


def wrap(owner: Any, attr: str, before: str | None, after: str | None) -> None:
    """Replace owner.attr with a version that stamps `before` on entry and `after` on return."""
    original: Callable[..., Any] = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before:
            stamp(before)
        try:
            return original(*args, **kwargs)
        finally:
            if after:
                stamp(after)

    setattr(owner, attr, wrapper)


def instrument() -> None:
    """Wrap the path's functions (in this process only) so each hop leaves a timestamp."""
    from svcwatch.lab import iptables
    from svcwatch.lab.node import LabNode
    from svcwatch.session.lab import LabSession
    from svcwatch.ui.app import SvcwatchApp

    wrap(SvcwatchApp, "action_scenario", "action", None)
    wrap(LabSession, "request_scenario", "worker", None)
    wrap(LabNode, "set_scenario", None, "written")
    wrap(LabSession, "_on_watch_event", "handler", None)
    wrap(LabNode, "reconcile", "reconcile", "synced")
    original_save = iptables.save

    def save(node_ns: str, *, counters: bool = False, table: str | None = None) -> str:
        try:
            return original_save(node_ns, counters=counters, table=table)
        finally:
            if table == "nat" and not counters:
                stamp("nat_saved")

    iptables.save = save
    wrap(iptables, "restore", None, "restored")
    wrap(LabSession, "_sync_and_refilter", None, "refiltered")
    wrap(LabSession, "read_chain", "read_start", "read_end")


def note_message(message: object) -> None:
    from svcwatch.model.events import RulesSynced
    from svcwatch.ui.messages import ChainRead, EventsArrived

    if isinstance(message, EventsArrived) and any(
        isinstance(e, RulesSynced) for e in message.events
    ):
        stamp("app_synced")
    elif isinstance(message, ChainRead) and message.after_sync:
        stamp("app_chain")


def breakdown(key_at: float) -> dict[str, float]:
    """Each hop's first timestamp after the one of the hop it follows, in ms since the key."""
    at: dict[str, float] = {"key": key_at}
    for name, after, _ in HOPS:
        since = at.get(after, float("nan"))
        found = next((t for t in STAMPS.get(name, []) if since == since and t >= since), None)
        at[name] = float("nan") if found is None else found
    return {name: (at[name] - key_at) * 1000 for name, _, _ in HOPS}


async def rounds(app: Any, count: int) -> list[dict[str, float]]:
    results = []
    for i in range(count):
        wanted = 12346 if i % 2 == 0 else 12345
        key_at = time.perf_counter()
        send_key(app, "2", "2")
        await until(partial(equals, lambda: dnat_port(app), wanted))
        stamp("visible")
        results.append(breakdown(key_at))
        await asyncio.sleep(0.3)
    return results


def report(results: list[dict[str, float]]) -> None:
    def med(values: list[float]) -> float:
        ok = [v for v in values if v == v]
        return statistics.median(ok) if ok else float("nan")

    def p90(values: list[float]) -> float:
        ok = sorted(v for v in values if v == v)
        return ok[min(len(ok) - 1, int(0.9 * (len(ok) - 1) + 0.5))] if ok else float("nan")

    print(f"{'hop':<12} {'delta med':>9} {'p90':>7} {'since key':>10}  meaning")
    for name, after, meaning in HOPS:
        now = [r[name] for r in results]
        deltas = [r[name] - (r[after] if after != "key" else 0.0) for r in results]
        print(f"{name:<12} {med(deltas):8.1f}  {p90(deltas):6.1f} {med(now):9.1f}   {meaning}")
    total = [r["visible"] for r in results]
    seen = [t for t in total if t == t]
    print(
        f"key -> new rules in chain pane: median {med(total):.1f} ms, p90 {p90(total):.1f} ms, "
        f"max {max(seen, default=float('nan')):.1f} ms (n={len(seen)} of {len(total)} presses "
        "seen within 15 s; target <= 100 ms)"
    )


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("SVCWATCH_STATE_DIR", tempfile.mkdtemp(prefix="svcwatch-bench-lat-"))
    from svcwatch.ui.app import SvcwatchApp

    instrument()
    session = bench_session("bl", args.interval)
    app = SvcwatchApp(session)
    try:
        async with app.run_test(size=(160, 50), message_hook=note_message) as pilot:
            await until(lambda: app.main.chain_pane.chain_tree is not None, limit=60)
            await asyncio.sleep(1.0)
            report(await rounds(app, args.rounds))
            await pilot.press("q")
            await until(lambda: session.node is None or not app.is_running, limit=30)
    finally:
        session.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30, help="scenario key presses to time")
    parser.add_argument("--interval", type=float, default=0.5, help="probe interval (s)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
