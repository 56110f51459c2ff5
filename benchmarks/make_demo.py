"""Regenerate the bundled demo recording from a real lab run of the four scenarios (needs root).

    sudo .venv/bin/python benchmarks/make_demo.py            # writes svcwatch/record/demo.svcrec.gz
    sudo .venv/bin/python benchmarks/make_demo.py -o /tmp/d.svcrec.gz --seconds 10

It builds a throw-away lab (its own name and state directory), records a RecordingSession while
switching happy -> wrong-port -> wrong-ip -> mixed, tears the lab down and prints what it wrote.
It drives the session layer, so it lives here rather than in the record backend below it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from svcwatch.record import DEMO_RECORDING

SCENARIO_ORDER = ("happy", "wrong-port", "wrong-ip", "mixed")


class _FirstProbe:
    """A sink that notes when the first probe result arrives (the lab is up and probing)."""

    def __init__(self) -> None:
        self.seen = threading.Event()

    def emit(self, event: Any) -> None:
        if getattr(event, "source", "") == "tcp-probe":
            self.seen.set()

    def emit_many(self, events: Any) -> None:
        for event in events:
            self.emit(event)


def record_demo(output: Path, seconds: float, pods: int, interval: float) -> None:
    """Record one lab run of the four scenarios, `seconds` each, to `output`."""
    from svcwatch.session.factory import make_session  # the lab is heavy: import on use

    name = "demo" + secrets.token_hex(2)
    from svcwatch.session.settings import LabSettings, ProbeFlags, SessionSettings

    lab = LabSettings(
        lab_name=name, pods=pods, scenario="happy", probes=ProbeFlags(interval=interval)
    )
    session = make_session(SessionSettings(backend=lab, record=output))
    probe = _FirstProbe()
    try:
        session.start(probe)
        probe.seen.wait(30)
        for scenario in SCENARIO_ORDER:
            if scenario != "happy":
                session.request_scenario(scenario)
            time.sleep(seconds)
    finally:
        session.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEMO_RECORDING)
    parser.add_argument("--seconds", type=float, default=7.0, help="time spent in each scenario")
    parser.add_argument("--pods", type=int, default=3, help="idle pods on the bridge")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between probes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="svcwatch-demo-") as state:
        os.environ["SVCWATCH_STATE_DIR"] = state
        record_demo(args.output, args.seconds, args.pods, args.interval)
    from svcwatch.record.reader import load_recording

    rec = load_recording(args.output)
    kinds = sorted({e.kind for e in rec.events})
    print(
        f"{args.output}: {args.output.stat().st_size // 1024} KiB, {len(rec.events)} events "
        f"({', '.join(kinds)}), {len(rec.chains)} chain snapshots, "
        f"scenarios {[name for _, name in rec.scenario_starts()]}"
    )


if __name__ == "__main__":
    main()
