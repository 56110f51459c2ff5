"""Regenerate the bundled demo recording from a real lab run of the four scenarios (needs root).

    sudo .venv/bin/python benchmarks/make_demo.py            # writes svcwatch/record/demo.svcrec.gz
    sudo .venv/bin/python benchmarks/make_demo.py -o /tmp/d.svcrec.gz --seconds 10

It builds a throw-away lab (its own name and state directory) and runs the real dashboard on it,
headless, with `--record`, pressing 2, 3 and 4 in turn; q tears the lab down. Recording the
dashboard (not a headless run) matters: the file then says what each pane displayed after how
many events, which is what a replay shows. It drives the UI, so it lives here rather than in the
record backend below it; tests/lab/test_replay_exact.py drives it the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from svcwatch.record import DEMO_RECORDING

DEMO_KEYS = ("", "2", "3", "4")  # happy (as it starts: no key), wrong-port, wrong-ip, mixed


async def record_dashboard(
    output: Path,
    steps: Sequence[tuple[str, float]],
    *,
    pods: int = 3,
    interval: float = 0.5,
    size: tuple[int, int] = (120, 36),
) -> None:
    """Run the dashboard on a new lab recording to `output`: press each (key, then wait seconds;
    "" presses nothing) once the first probe answered, then q (the lab is torn down)."""
    from svcwatch.session.factory import make_session  # the lab is heavy: import on use
    from svcwatch.session.settings import LabSettings, ProbeFlags, SessionSettings
    from svcwatch.ui.app import SvcwatchApp

    lab = LabSettings(
        lab_name="demo" + secrets.token_hex(2),
        pods=pods,
        scenario="happy",
        probes=ProbeFlags(interval=interval, timeout=2.0),
    )
    session = make_session(SessionSettings(backend=lab, record=output))
    app = SvcwatchApp(session, t0=getattr(session, "t0", None))
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 60
        while not app.main.probe_pane.recent and time.monotonic() < deadline:
            await pilot.pause(0.1)
        for key, seconds in steps:
            if key:
                await pilot.press(key)
            await pilot.pause(seconds)
        await pilot.press("q")
        while app.is_running and time.monotonic() < deadline + 120:
            await pilot.pause(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEMO_RECORDING)
    parser.add_argument("--seconds", type=float, default=7.0, help="time spent in each scenario")
    parser.add_argument("--pods", type=int, default=3, help="idle pods on the bridge")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between probes")
    args = parser.parse_args()
    steps = [(key, args.seconds) for key in DEMO_KEYS]
    with tempfile.TemporaryDirectory(prefix="svcwatch-demo-") as state:
        os.environ["SVCWATCH_STATE_DIR"] = state
        asyncio.run(record_dashboard(args.output, steps, pods=args.pods, interval=args.interval))
    from svcwatch.record.reader import load_recording

    rec = load_recording(args.output)
    kinds = sorted({e.kind for e in rec.events})
    views = sum(1 for shown in rec.shown if shown.what == "view")
    print(
        f"{args.output}: {args.output.stat().st_size // 1024} KiB, {len(rec.events)} events "
        f"({', '.join(kinds)}), {len(rec.chains)} chain snapshots, {views} pane views, "
        f"scenarios {[name for _, name in rec.scenario_starts()]}"
    )


if __name__ == "__main__":
    main()
