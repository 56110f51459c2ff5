"""Reading a pcapng back as Wireshark users would: tshark's field output, row by row.

Shared by the tests that export packets (unit, UI `w` key, lab recording). Imported as
`tests.helpers.tshark`, which works under `python -m pytest` from the repository root (the
README's and the Makefile's way), like `tests.lab.conftest`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def tshark(path: Path, *args: str, timeout: float | None = None) -> list[list[str]]:
    """`tshark -r PATH ARGS`'s output lines, split at tabs (the `-T fields` columns)."""
    out = subprocess.run(
        ["tshark", "-r", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]
