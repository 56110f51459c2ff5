"""WatchHealth's order of evidence: what revives a resource depends on how it broke.

kopf runs handlers from per-object queues, so an event received before a failed request can
reach the handler after it; the UI must keep saying "stale since <first failure>" until kopf's
retry of that request succeeds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from svcwatch.watch.events import ENDPOINT_SLICE, SERVICE
from svcwatch.watch.kopf_support import WatchHealth

SERVICE_WATCH = "GET http://127.0.0.1:1/api/v1/namespaces/default/services?watch=true"


def kopf_record(message: str, created: float, level: int = logging.ERROR) -> logging.LogRecord:
    record = logging.LogRecord("kopf._cogs.clients.watching", level, __file__, 1, message, (), None)
    record.created = created
    return record


@pytest.fixture()
def watching() -> Iterator[tuple[WatchHealth, list[float | None]]]:
    """A WatchHealth reading records from this thread (standing in for kopf's), and its changes."""
    changes: list[float | None] = []
    health = WatchHealth(on_change=changes.append)
    health.attach(threading.get_ident())
    yield health, changes
    health.detach()


def test_an_event_handled_after_a_failed_request_does_not_revive_it(
    watching: tuple[WatchHealth, list[float | None]],
) -> None:
    health, changes = watching
    health.emit(kopf_record(f"Request attempt #1 failed; will retry: {SERVICE_WATCH} -> x", 100.0))
    health.delivered(SERVICE)  # the initial listing's Service, handled late
    health.emit(kopf_record(f"Request attempt #2 failed; will retry: {SERVICE_WATCH} -> x", 100.1))
    assert health.stale_since == 100.0
    assert changes == [100.0]

    health.emit(kopf_record(f"Request attempt #3 succeeded: {SERVICE_WATCH}", 101.0, logging.DEBUG))
    assert health.stale_since is None
    assert changes == [100.0, None]


def test_after_a_410_or_a_fresh_kopf_the_next_event_revives_it(
    watching: tuple[WatchHealth, list[float | None]],
) -> None:
    health, changes = watching
    slices = "endpointslices.v1.discovery.k8s.io in 'default'"
    health.emit(kopf_record(f"Restarting the watch-stream for {slices}.", 50.0, logging.DEBUG))
    health.delivered(ENDPOINT_SLICE)  # kopf re-lists after 410 Gone
    assert changes == [50.0, None]

    health.emit(kopf_record(f"Request attempt #1 failed; will retry: {SERVICE_WATCH} -> x", 60.0))
    health.relisting()  # a fresh kopf replaces the old one: everything it delivers is new
    health.delivered(SERVICE)
    assert health.stale_since is None
    assert changes == [50.0, None, 60.0, None]
