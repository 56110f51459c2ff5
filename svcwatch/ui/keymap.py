"""The user's keymap: ~/.config/svcwatch/keymap.yaml maps action ids to keys, as k9s users expect.

    scenario-wrong-port: w          # the ids are svcwatch/ui/actions.py's (`svcwatch` help lists
    quit: q,ctrl+c                  # them too); a value is a Textual key name, or several
    edit-slice: ctrl+e              # separated by commas

Textual's own keymap support rebinds by binding id, so the footer, the help screen and the
palette all follow. A file that is not such a mapping (unknown id, empty key, bad YAML, not
UTF-8, not a file) is one warning on screen and the defaults: a typo never costs the dashboard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from svcwatch.locations import config_dir
from svcwatch.model.errors import InputError
from svcwatch.ui.actions import DASHBOARD_ACTIONS

if TYPE_CHECKING:
    from textual.app import App

KEYMAP_FILE = "keymap.yaml"
_KEYS = re.compile(r"^[^\s,]+(,[^\s,]+)*$")  # "w", "ctrl+e", "q,ctrl+c"


@dataclass
class UserKeymap:
    """The keys to override by action id (empty: defaults), and why the file was not used."""

    keys: dict[str, str] = field(default_factory=dict)
    warning: str | None = None

    def display(self, action_id: str, default: str) -> str:
        """What to print for an action's key: the user's, else the default display."""
        return self.keys.get(action_id, default)


def default_keymap_path() -> Path:
    return config_dir() / KEYMAP_FILE


def load_keymap(path: Path | None = None) -> UserKeymap:
    """The user's keymap at `path` (default: the config dir's); no file is no override."""
    from svcwatch.textfile import read_text_file

    path = path or default_keymap_path()
    if not path.exists():
        return UserKeymap()
    try:
        keys = parse_keymap(read_text_file(path), str(path))
    except InputError as exc:
        return UserKeymap(warning=f"{exc}; using the default keys")
    return UserKeymap(keys)


def apply_keymap(app: App[None], path: Path | None) -> UserKeymap:
    """The user's keymap.yaml applied to `app`, or one warning and the default keys."""
    keymap = load_keymap(path)
    if keymap.warning:
        app.notify(keymap.warning, title="Keymap not loaded", severity="warning")
    elif keymap.keys:
        app.set_keymap(keymap.keys)
    return keymap


def parse_keymap(text: str, source: str) -> dict[str, str]:
    """{action id: keys}; InputError naming the file and the entry when anything is off."""
    import yaml  # a runtime dependency; imported here so the UI's import stays lean

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InputError("not valid YAML", source=source) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("expected a mapping of action id to key", source=source)
    known = {spec.id for spec in DASHBOARD_ACTIONS}
    out: dict[str, str] = {}
    for action_id, keys in data.items():
        if action_id not in known:
            raise InputError(
                f"unknown action id {action_id!r} (known: {', '.join(sorted(known))})",
                source=source,
            )
        if not isinstance(keys, (str, int)) or not _KEYS.match(str(keys)):
            raise InputError(f"{action_id}: {keys!r} is not a key name", source=source)
        out[str(action_id)] = str(keys)
    return out
