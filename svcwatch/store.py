"""The lab's "API server": the Service and its EndpointSlice as YAML files with resourceVersions.

Every write goes through `ObjectStore.write_*`: the resourceVersion increases (under a file lock, so
two processes never hand out the same one), the text is written to a temporary file and renamed over
the old one (readers see the old or the new object, never half of one), and the annotations record
when it was written and by which scenario. Watchers see the rename; an editor's in-place save works
too because the watcher re-parses and keeps the last good state when the new text is invalid.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import yaml

from svcwatch.model.endpointslice import EndpointSlice
from svcwatch.model.errors import InputError, SetupError
from svcwatch.model.manifest import dump_slice, parse_documents, parse_service
from svcwatch.model.service import Service

SCENARIO_ANNOTATION = "svcwatch.dev/scenario"
CUSTOM_SCENARIO = "custom"  # a slice the user wrote (`lab apply`, `e`): no scenario of svcwatch's
WRITTEN_AT_ANNOTATION = "svcwatch.dev/written-at"
SLICE_FILE = "endpointslice.yaml"
SERVICE_FILE = "service.yaml"


@contextmanager
def state_writes(where: Path) -> Iterator[None]:
    """Turn a failed write under the state directory (full, read-only, not a directory) into a
    one-line SetupError naming the place and the reason, instead of an OSError traceback."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        hint = "free some space, or " if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise SetupError(
            f"cannot write svcwatch's state under {where}: {reason} "
            f"({hint}point SVCWATCH_STATE_DIR at a writable directory)"
        ) from exc


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` by rename, so no reader ever sees a partial file."""
    with state_writes(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class ObjectStore:
    """The objects of one lab, under `root` (a directory of the lab's state)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def slice_path(self) -> Path:
        return self.root / SLICE_FILE

    @property
    def service_path(self) -> Path:
        return self.root / SERVICE_FILE

    def _next_version(self) -> str:
        with state_writes(self.root):
            return self._bump_version()

    def _bump_version(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".resourceversion", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            current = int(fh.read().strip() or "0")
            fh.seek(0)
            fh.truncate()
            fh.write(str(current + 1))
            return str(current + 1)

    def write_slice(self, slice_: EndpointSlice, scenario: str | None = None) -> EndpointSlice:
        """Store a new version of the slice; returns it with its resourceVersion and annotations."""
        annotations = {k: v for k, v in slice_.annotations.items() if k != SCENARIO_ANNOTATION}
        annotations[WRITTEN_AT_ANNOTATION] = f"{time.time():.6f}"
        if scenario:
            annotations[SCENARIO_ANNOTATION] = scenario
        stored = replace(slice_, resource_version=self._next_version(), annotations=annotations)
        atomic_write(self.slice_path, dump_slice(stored))
        return stored

    def write_service(self, service_yaml: str) -> None:
        atomic_write(self.service_path, service_yaml)

    def read_slice(self) -> EndpointSlice:
        """The stored slice; InputError if the file was hand-edited into something invalid."""
        text = self._read(self.slice_path)
        objs = [
            o for o in parse_documents(text, str(self.slice_path)) if isinstance(o, EndpointSlice)
        ]
        if len(objs) != 1:
            raise InputError("expected exactly one EndpointSlice", source=str(self.slice_path))
        return objs[0]

    def read_service(self) -> Service:
        text = self._read(self.service_path)
        doc = yaml.safe_load(text)
        return parse_service(doc, str(self.service_path))

    def _read(self, path: Path) -> str:
        try:
            return read_stored(path)
        except FileNotFoundError:
            raise InputError("not found (is the lab up?)", source=str(path)) from None


def scenario_of(slice_: EndpointSlice) -> str:
    """The scenario that wrote the stored slice, or "custom" for one the user applied or edited,
    so no header goes on naming the scenario the user's own slice replaced."""
    return slice_.annotations.get(SCENARIO_ANNOTATION, CUSTOM_SCENARIO)


def written_at(slice_: EndpointSlice) -> float | None:
    value = slice_.annotations.get(WRITTEN_AT_ANNOTATION)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def read_stored(path: Path) -> str:
    """A stored object file's text; InputError (one line) when someone saved it as something
    other than UTF-8, so a stray byte is reported like any other bad edit, never a crash."""
    from svcwatch.textfile import decode_text

    return decode_text(path.read_bytes(), str(path))
