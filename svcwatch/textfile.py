"""Reading a user's text file (a manifest, a talk script, a slice, a keymap) the one strict way.

A file a user names may be anything: a binary, a FIFO nobody writes to, /dev/zero, a directory,
a huge log. Each gets a one-line InputError naming the path and what it is instead of blocking
forever, reading without end, or surfacing as "internal error: UnicodeDecodeError".
"""

from __future__ import annotations

import stat
from pathlib import Path

from svcwatch.model.errors import InputError

MAX_TEXT_BYTES = 8 * 1024 * 1024  # far beyond any manifest or script; a bigger file is a mistake

_KINDS = {
    stat.S_ISDIR: "a directory",
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def require_regular_file(
    path: str | Path, *, field: str | None = None, what: str = "a text file"
) -> None:
    """InputError (one line) unless `path` is a regular file: reading a FIFO nobody writes to
    blocks forever, and /dev/zero never ends."""
    source = str(path)
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise InputError(f"no such file: {source}", field=field) from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}", field=field) from None
    kind = next((name for test, name in _KINDS.items() if test(mode)), None)
    if kind is not None:
        raise InputError(f"{source} is {kind}, not {what}", field=field)


def read_text_file(path: str | Path, *, field: str | None = None) -> str:
    """The UTF-8 text of the regular file at `path`; InputError (one line) for anything else."""
    source = str(path)
    require_regular_file(path, field=field)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}", field=field) from None
    if len(data) > MAX_TEXT_BYTES:
        raise InputError(
            f"larger than {MAX_TEXT_BYTES // 2**20} MiB: not a text file", source=source
        )
    return decode_text(data, source)


def decode_text(data: bytes, source: str) -> str:
    """`data` as UTF-8, or an InputError saying which byte, where: the file is binary or in
    another encoding (save it as UTF-8)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}): "
            "a binary file, or saved in another encoding",
            source=source,
        ) from None
