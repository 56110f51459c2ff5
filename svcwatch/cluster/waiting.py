"""Polling the API until an object is where svcwatch needs it, with progress and a deadline.

`cluster up` waits for the demo pod to be Ready and the session waits for each node agent to run:
the same loop -- look, report each new state once, give up with a one-line error after `timeout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
) -> T:
    """Call `look` (-> (result or None, state in words)) until it has a result.

    Each new state is reported once as `"{waiting}: {state}"`; `look` raises for a state that
    will never become a result. After `timeout` seconds, `gave_up(state)` is raised.
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        result, state = look()
        if result is not None:
            return result
        if state != last:
            progress(f"{waiting}: {state}")
            last = state
        if time.monotonic() >= deadline:
            raise gave_up(state)
        time.sleep(every)
