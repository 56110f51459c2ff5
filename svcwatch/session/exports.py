"""What the dashboard writes from what it holds: the packets still buffered, as pcapng (`w`), and
the values its display log records, in the recording format.

The UI composes and routes and never imports a backend; writing files is the record backend's
job, so the UI asks here, the one session-layer door to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from svcwatch.kubeproxy.rules import ChainTree
from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.events import Event
from svcwatch.model.service import Service


def write_pcapng(path: Path, events: Sequence[Event]) -> int:
    """Write the packets among `events` that kept their raw bytes; how many were written."""
    from svcwatch.record.pcap import write_pcapng as write  # only `w` needs the pcapng writer

    return write(path, list(events))


def chain_fields(tree: ChainTree) -> dict[str, Any]:
    """A chain tree as the recording format writes it (the dashboard's display log records it)."""
    from svcwatch.record.format import chain_to_dict

    return {"chain": chain_to_dict(tree)}


def objects_fields(service: Service, slice_: EndpointSlice) -> dict[str, Any]:
    """The Service and slice as the recording format writes them (an `objects` record's body)."""
    from svcwatch.record.format import objects_record

    return objects_record(service, slice_, 0.0)
