"""What the dashboard writes from what it holds: the packets still buffered, as pcapng (`w`).

The UI composes and routes and never imports a backend; writing a file of packets is the record
backend's job, so the UI asks here, the one session-layer door to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from svcwatch.model.events import Event


def write_pcapng(path: Path, events: Sequence[Event]) -> int:
    """Write the packets among `events` that kept their raw bytes; how many were written."""
    from svcwatch.record.pcap import write_pcapng as write  # only `w` needs the pcapng writer

    return write(path, list(events))
