"""What this session offers: which registry actions and scenarios, fixed once from its capabilities.

A key that is not offered is hidden from the footer, the help screen and the command palette, but
still answers with one line saying why (`not_offered`-style messages such as `no_scenario`), so a
user who knows the key learns what this session cannot do instead of hearing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from svcwatch.session.capabilities import Capabilities
from svcwatch.ui import actions
from svcwatch.ui.keymap import UserKeymap

if TYPE_CHECKING:
    from textual.app import SystemCommand
    from textual.binding import BindingsMap


class Offer:
    """The actions and scenarios one session offers (module docstring)."""

    def __init__(self, capabilities: Capabilities, *, read_only: str, scripted: bool) -> None:
        self.capabilities, self.read_only = capabilities, read_only
        switching = capabilities.scenarios
        self.scenarios = list(switching.scenarios_offered()) if switching else []
        self.ids = {
            spec.id
            for spec in actions.DASHBOARD_ACTIONS
            if actions.offered(spec, capabilities, self.scenarios, scripted=scripted)
        }

    def actions(self) -> list[tuple[actions.ActionSpec, str]]:
        """What this session offers, each with its help as true here (footer, help, palette)."""
        return [
            (spec, actions.help_for(spec, self.capabilities))
            for spec in actions.DASHBOARD_ACTIONS
            if spec.id in self.ids
        ]

    def hide_the_rest(self, bindings: BindingsMap) -> None:
        """Off the footer: a key that is not offered still answers, saying why (one line)."""
        for key, bound in bindings.key_to_bindings.items():
            bindings.key_to_bindings[key] = [
                replace(b, show=False) if b.id and b.id not in self.ids else b for b in bound
            ]

    def no_scenario(self, name: str) -> str:
        """Why scenario `name` cannot be shown here, in one line."""
        if self.capabilities.scenarios is None:
            return f"{name}: this session cannot switch scenarios ({self.read_only})"
        what = "this recording has" if self.capabilities.replay is not None else "here:"
        return f"no {name} scenario: {what} {', '.join(self.scenarios)}"

    def palette(self, keymap: UserKeymap, run: Callable[[str], object]) -> Iterable[SystemCommand]:
        """The command palette's entries: each offered action with its key as the user bound it."""
        from textual.app import SystemCommand

        for spec, text in self.actions():
            yield SystemCommand(
                spec.description,
                f"key {keymap.display(spec.id, spec.display_key)} · {text}",
                partial(run, spec.action),
            )
