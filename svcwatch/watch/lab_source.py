"""The lab's watch: the object store's directory, followed through inotify.

The lab's state directory is its "API server" (see svcwatch.store): every write replaces
`service.yaml` or `endpointslice.yaml` by rename, from this process or another one (`svcwatch lab
apply`, `lab scenario`, an editor). This source follows the directory with watchfiles' Rust
notifier (inotify on Linux, no polling sleeps) in its own thread. Each batch of file events
re-reads the object files it touched, so rapid writes coalesce into fewer events but the last
write is always the state delivered. A file that does not parse or validate is reported through
`on_error` (one line) and the previous state is kept; re-reading an unchanged object yields no
event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from svcwatch.model.errors import InputError
from svcwatch.model.manifest import parse_documents
from svcwatch.store import SERVICE_FILE, SLICE_FILE, ObjectStore
from svcwatch.textfile import decode_text
from svcwatch.watch.convert import service_from_body, slice_from_body
from svcwatch.watch.events import ENDPOINT_SLICE, SERVICE, Handler, ObjectTracker, WatchEvent

# Group a burst of inotify events for at most this long; wait this long for quiet after the last.
# Together they bound the added latency (~3 ms for one write, <= 40 ms under a burst). The
# notifier also wakes every STEP_MS while idle: 2 ms costs ~1% of a core (5 ms: ~0.5%) and takes
# ~4 ms off every write -> handler (benchmarks/watch.py: p50 5.6 ms, was 9.8 ms at 5 ms).
DEBOUNCE_MS = 40
STEP_MS = 2
# How often the thread wakes up without changes, to notice stop() (also passed as stop_event).
IDLE_TIMEOUT_MS = 250

_FILES = ((SERVICE, SERVICE_FILE), (ENDPOINT_SLICE, SLICE_FILE))
# libyaml's safe loader parses a slice ~5x faster than the pure-Python one (same documents).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LabSource:
    """Delivers the lab's Service and EndpointSlice changes to `handler`, from its own thread."""

    def __init__(
        self, store: ObjectStore, handler: Handler, *, on_error: Callable[[str], None]
    ) -> None:
        self.store = store
        self.handler = handler
        self.on_error = on_error
        self.ready = threading.Event()
        self.tracker = ObjectTracker()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors: dict[str, str] = {}  # file name -> the error last reported for it

    def start(self, timeout: float = 5.0) -> None:
        """Start watching; the current objects are delivered as ADDED before `ready` is set."""
        # Imported here: watchfiles loads a Rust extension; `svcwatch --help` must not pay for it.
        from watchfiles._rust_notify import RustNotify

        self.store.root.mkdir(parents=True, exist_ok=True)
        # The notifier watches from the moment it exists, so creating it before the first read
        # means no write can fall between "read the current state" and "watch for changes".
        notify = RustNotify([str(self.store.root)], False, False, 0, False, False)
        self._thread = threading.Thread(
            target=self._run, args=(notify,), name="svcwatch-lab-watch", daemon=True
        )
        self._thread.start()
        self.ready.wait(timeout)

    def stop(self) -> None:
        """Stop the thread; returns once it has exited (within IDLE_TIMEOUT_MS)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, notify: Any) -> None:
        try:
            self._rescan_reporting()
            self.ready.set()
            while not self._stopping.is_set():
                changes = notify.watch(DEBOUNCE_MS, STEP_MS, IDLE_TIMEOUT_MS, self._stopping)
                if isinstance(changes, set):
                    touched = _touched_objects(changes)
                    if touched:
                        self._rescan_reporting(touched)
        except Exception as exc:  # the notifier itself failed: say so, never die silently
            self.on_error(f"lab watcher stopped: {exc}")
        finally:
            self.ready.set()
            notify.close()

    def _rescan_reporting(self, names: set[str] | None = None) -> None:
        """rescan, surviving anything: whatever the files hold, the watch goes on."""
        try:
            self.rescan(names)
        except Exception as exc:  # noqa: BLE001 - a bug in reading must not end the watch
            self._report("the object files", f"could not read the objects: {exc}")

    def rescan(self, names: set[str] | None = None) -> list[WatchEvent]:
        """Re-read the files `names` (default both) and deliver what changed; returns the events."""
        delivered = []
        for kind, name in _FILES:
            if names is not None and name not in names:
                continue  # untouched since its last read: re-reading it could only yield nothing
            event = self._read(kind, self.store.root / name)
            if event is not None:
                self.handler(event)
                delivered.append(event)
        return delivered

    def _read(self, kind: str, path: Path) -> WatchEvent | None:
        seen_at = time.time()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return self._gone(kind, path, seen_at)
        if not data.strip():
            # An in-place save truncates first and writes next; the write's own event follows.
            return None
        try:
            body = _parse(kind, decode_text(data, str(path)), str(path))
        except (InputError, ValueError, TypeError, RecursionError) as exc:  # any content at all
            self._report(path.name, str(exc) if isinstance(exc, InputError) else _odd(path, exc))
            return (
                None  # keep the previous state: an editor's half-done save must not break the lab
            )
        self._errors.pop(path.name, None)
        return self.tracker.observe(kind, body, seen_at)

    def _gone(self, kind: str, path: Path, seen_at: float) -> WatchEvent | None:
        self._errors.pop(path.name, None)
        known = self.tracker.current(kind)
        return self.tracker.forget(kind, known[0], seen_at) if known else None

    def _report(self, name: str, message: str) -> None:
        # Once per distinct problem: an unrelated write must not repeat the same complaint.
        if self._errors.get(name) != message:
            self._errors[name] = message
            self.on_error(f"{message} (keeping the previous version)")


def _odd(path: Path, exc: Exception) -> str:
    return f"{path}: not a valid object ({type(exc).__name__}: {exc})"


def _touched_objects(changes: set[tuple[int, str]]) -> set[str]:
    """Which object files (service.yaml, endpointslice.yaml) a batch of changes touched."""
    return {Path(path).name for _, path in changes} & {SERVICE_FILE, SLICE_FILE}


def _parse(kind: str, text: str, source: str) -> Mapping[str, Any]:
    """The file's single object as a body, validated like `lab apply -f` would."""
    try:
        body = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError:
        parse_documents(text, source)  # raises the same one-line InputError `lab apply` prints
        raise
    if not isinstance(body, Mapping) or body.get("kind") != kind:
        raise InputError(f"expected one {kind} object", source=source)
    if kind == SERVICE:
        service_from_body(body, source)
    else:
        slice_from_body(body, source)
    return body
