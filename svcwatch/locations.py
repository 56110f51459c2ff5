"""Where svcwatch keeps state, config and user data (XDG, overridable by environment)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def state_dir() -> Path:
    """Lab state (objects as YAML, instance records): $SVCWATCH_STATE_DIR, else XDG state."""
    override = os.environ.get("SVCWATCH_STATE_DIR")
    if override:
        return Path(override)
    return _xdg("XDG_STATE_HOME", ".local/state") / "svcwatch"


def config_dir() -> Path:
    """User configuration and themes: $SVCWATCH_CONFIG_DIR, else XDG config."""
    override = os.environ.get("SVCWATCH_CONFIG_DIR")
    if override:
        return Path(override)
    return _xdg("XDG_CONFIG_HOME", ".config") / "svcwatch"


def user_themes_dir() -> Path:
    return config_dir() / "themes"


def package_data_dir(name: str) -> Path:
    """Bundled `themes` or `manifests`: in the wheel as `_name`, else the repo's top-level copy."""
    here = Path(__file__).resolve().parent
    bundled = here / f"_{name}"
    return bundled if bundled.is_dir() else here.parent / name


def manifest_files(paths: Iterable[str] | None) -> list[Path]:
    """YAML files named by -f (files or directories), else the bundled manifests/."""
    from svcwatch.model.errors import InputError

    roots = [Path(p) for p in paths] if paths else [package_data_dir("manifests")]
    out: list[Path] = []
    for root in roots:
        if root.is_dir():
            out.extend(sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml")))
        elif root.exists():  # a FIFO or a device too: the reader says what it is, not "no such"
            out.append(root)
        else:
            raise InputError(f"no such file or directory: {root}", field="-f")
    return out
