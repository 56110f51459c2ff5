"""Hand edits of the lab's YAML while `svcwatch run --json` streams: the watcher end to end.

tests/lab/test_run_changes.py covers `lab apply` and `lab scenario` from other processes. This is
the editor's path: the object file edited in place (no rename, no new resourceVersion). A broken
edit must show up as one warning and change nothing in the kernel; the fixed edit must flow
through as slice, rules and capture filter, in that order, with a sync timing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from svcwatch.lab.instances import lab_dir
from svcwatch.store import SLICE_FILE
from tests.lab.stream_helpers import Lab, lab  # noqa: F401  (the fixture)

pytestmark = pytest.mark.lab

CHANGE_KINDS = ("endpointslice", "iptables", "capture-started")


def edit_in_place(path: Path, *replacements: tuple[str, str]) -> None:
    """What an editor's in-place save does: truncate and rewrite the same file."""
    text = path.read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    with path.open("r+") as fh:
        fh.truncate(0)
        fh.write(text)


def stream_with_hand_edits(lab: Lab) -> list[dict[str, Any]]:  # noqa: F811
    """Run; after the first echo, break the slice file; after the warning, fix it to port 12346."""
    slice_path = lab_dir(lab.state, lab.name) / SLICE_FILE
    argv = lab.argv(*lab.stream_args("-d", "6", "--interval", "0.3"))
    events: list[dict[str, Any]] = []
    step = 0
    with subprocess.Popen(argv, env=lab.env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            events.append(event)
            if step == 0 and event["kind"] == "echo-ok":
                edit_in_place(slice_path, ("addressType: IPv4", "addressType: [IPv4"))
                step = 1
            elif step == 1 and event["kind"] == "warning" and SLICE_FILE in event["message"]:
                edit_in_place(
                    slice_path,
                    ("addressType: [IPv4", "addressType: IPv4"),
                    ("port: 12345", "port: 12346"),
                )
                step = 2
        assert proc.wait(timeout=30) == 0
    assert step == 2, "the stream ended before both edits were made"
    return events


def test_a_broken_hand_edit_warns_and_the_fixed_one_flows_through(lab: Lab) -> None:  # noqa: F811
    events = stream_with_hand_edits(lab)
    warning = next(i for i, e in enumerate(events) if e["kind"] == "warning")
    assert "malformed YAML" in events[warning]["message"]
    assert "keeping the previous version" in events[warning]["message"]
    modified = [
        i
        for i, e in enumerate(events)
        if e["kind"] == "endpointslice" and e["change"] == "MODIFIED"
    ]
    assert len(modified) == 1 and modified[0] > warning
    # Nothing reached the kernel between the broken edit and the fix.
    assert not [e for e in events[warning : modified[0]] if e["kind"] == "iptables"]

    after = [e for e in events[modified[0] :] if e["kind"] in CHANGE_KINDS]
    assert tuple(e["kind"] for e in after[:3]) == CHANGE_KINDS
    slice_event, _, capture = after[:3]
    assert "ports[0].port: 12345 -> 12346" in slice_event["diff"]
    assert "port 12346" in capture["bpf"]
    timings = [e for e in events[modified[0] :] if e["kind"] == "sync"]
    assert timings and timings[0]["rules_at"] is not None
    assert timings[0]["written_at"] <= timings[0]["rules_at"]
