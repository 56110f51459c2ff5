"""Polling the API until an object is where svcwatch needs it, with progress and a deadline.

`cluster up` waits for the demo pod to be Ready and the session waits for each node agent to run:
the same loop -- look, report each new state once, give up with a one-line error after `timeout`.
A wait can also be called off from another thread (`cancelled`): a stop signal or the end of
`run --duration` must not sit behind a pod that stays Pending for two minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from svcwatch.model.errors import WaitCancelled

T = TypeVar("T")
Progress = Callable[[str], None]


def poll_until(
    look: Callable[[], tuple[T | None, str]],
    *,
    timeout: float,
    every: float,
    progress: Progress,
    waiting: str,
    gave_up: Callable[[str], Exception],
    cancelled: threading.Event | None = None,
) -> T:
    """Call `look` (-> (result or None, state in words)) until it has a result.

    Each new state is reported once as `"{waiting} ({state})"`; `look` raises for a state that
    will never become a result. After `timeout` seconds, `gave_up(state)` is raised; once
    `cancelled` is set, WaitCancelled ("... never became ready (state)") within `every` seconds.
    """
    deadline = time.monotonic() + timeout
    cancelled = cancelled or threading.Event()
    last = ""
    while True:
        result, state = look()
        if result is not None:
            return result
        if state != last:
            progress(f"{waiting} ({state})")
            last = state
        if time.monotonic() >= deadline:
            raise gave_up(state)
        if cancelled.wait(every):
            raise WaitCancelled(
                f"{waiting.removeprefix('waiting for ')} never became ready ({state})"
            )
