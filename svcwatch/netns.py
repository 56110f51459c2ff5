"""Enter a named network namespace from one thread, or start a process inside one.

setns(2) with CLONE_NEWNET switches only the calling thread, so a socket created while inside stays
in that namespace for life and a child started from inside inherits it. Nothing here awaits between
entering and leaving: an asyncio task switch there would run unrelated code in the wrong namespace.
Named namespaces are the files under /run/netns, as `ip netns` and pyroute2 make them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

_libc: Any = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_path(name: str) -> Path:
    return NETNS_RUN_DIR / name


def exists(name: str) -> bool:
    return netns_path(name).exists()


def list_names() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_RUN_DIR.iterdir())
    except FileNotFoundError:
        return []


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with this thread inside namespace `name`, then return to where it was."""
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        target = os.open(netns_path(name), os.O_RDONLY)
        try:
            _setns(target)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # The name's bind mount was just removed (`ip netns del`, `lab down`): the file left
            # for a moment is no namespace. Report it as what it is: the namespace is gone.
            raise FileNotFoundError(
                errno.ENOENT, f"network namespace {name} is gone", str(netns_path(name))
            ) from None
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def socket_in(name: str, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket that lives in namespace `name` whichever thread uses it later."""
    with entered(name):
        return socket.socket(family, type_, proto)


def preexec_into(name: str) -> Callable[[], None]:
    """A `preexec_fn` that moves the child into namespace `name` before exec."""
    path = str(netns_path(name))

    def _enter() -> None:
        fd = os.open(path, os.O_RDONLY)
        _setns(fd)
        os.close(fd)

    return _enter


def popen_in(name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start `argv` inside namespace `name` (like `ip netns exec`, without the shell-out)."""
    return subprocess.Popen(list(argv), preexec_fn=preexec_into(name), **kwargs)  # noqa: PLW1509
