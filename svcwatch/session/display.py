"""What a session can do for the dashboard's display beyond the Session protocol.

A recording session keeps what the dashboard displayed (RecordsDisplay); a replay pushes what
the live dashboard displayed, in stream order, so the dashboard must not pull on its own
(PushesDisplay). svcwatch/ui/display_log.py is the dashboard's side of both.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class RecordsDisplay(Protocol):
    def record_shown(self, what: str, seen: int, fields: dict[str, Any]) -> None:
        """The dashboard displayed `what` (chain, objects, facts, ...) after `seen` events."""


@runtime_checkable
class PushesDisplay(Protocol):
    @property
    def pushes_state(self) -> bool:
        """True: chain, slice, facts and scenario arrive through the sink (StateSink)."""
