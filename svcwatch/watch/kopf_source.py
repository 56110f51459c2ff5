"""The cluster's watch: kopf, embedded, observing one Service and its EndpointSlices.

kopf runs in its own thread with its own event loop (never Textual's: kopf installs signal
handlers on the main thread and, on shutdown, waits for every task of its loop), standalone (no
peering objects), with a private registry holding two `@kopf.on.event` handlers: the demo Service
by name, and the EndpointSlices labelled `kubernetes.io/service-name=<svc>`. Event handlers record
nothing on the objects, and kopf is told to store nothing either (no-op progress and diff-base
storages, no k8s Event posting): the watcher only ever GETs, LISTs and WATCHes.

kopf already reconnects a broken watch and re-lists after "410 Gone"; what it does not expose is
whether the stream is currently broken. That is read from kopf's own watch/request log records
(`kopf_support.WatchHealth`), so the UI can say "stale for 4s" while the API server is away. Raw
events go through an ObjectTracker: the initial listing, replays on reconnect (kmock replays every
object as ADDED; real servers can) and re-lists after 410 become ADDED/MODIFIED only when
something actually changed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from svcwatch.model.endpointslice import SERVICE_NAME_LABEL
from svcwatch.model.errors import SetupError
from svcwatch.watch.events import DELETED, ENDPOINT_SLICE, SERVICE, Handler, ObjectTracker
from svcwatch.watch.kopf_support import WatchHealth, build_settings, kubeconfig_login

SLICES = ("discovery.k8s.io", "v1", "endpointslices")
SERVICES = ("", "v1", "services")
# Seconds before a fresh kopf replaces one that stopped on an error.
RESTART_BACKOFF = 1.0
# Seconds stop() waits for kopf to finish its tasks before leaving its daemon thread behind.
STOP_TIMEOUT = 10.0
_STOPPED_FIRST = "cannot watch the cluster: stopped before it was up"


class KopfSource:
    """Delivers the demo Service's and its EndpointSlices' changes from a cluster to `handler`."""

    def __init__(
        self,
        *,
        namespace: str,
        service_name: str,
        handler: Handler,
        on_error: Callable[[str], None],
        login: Callable[..., Any] | None = None,
        context: str | None = None,
        kubeconfig: str | None = None,
        on_stale: Callable[[float | None], None] | None = None,
    ) -> None:
        """
        Args:
            login: a kopf login handler (returns `kopf.ConnectionInfo`); tests point it at kmock.
                Default: the kubeconfig (`kubeconfig` file, `context`), as kubectl would.
            on_stale: called with the time the watch broke, and with None once it is live again.
        """
        self.namespace = namespace
        self.service_name = service_name
        self.handler = handler
        self.on_error = on_error
        self.login = login or kubeconfig_login(context=context, kubeconfig=kubeconfig)
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.tracker = ObjectTracker()
        self.health = WatchHealth(
            on_change=on_stale, on_error=on_error, on_watcher_failed=self._restart
        )
        self._stop_flag = threading.Event()  # stop() was called
        self._run_stop = threading.Event()  # stop the current kopf run (to stop or to restart)
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._failure: str | None = None

    @property
    def stale_since(self) -> float | None:
        """When the watch stream broke (time.time()), or None while it is live."""
        return self.health.stale_since

    @property
    def is_stale(self) -> bool:
        return self.health.stale_since is not None

    def start(self, timeout: float = 30.0) -> None:
        """Start kopf in its thread and wait until it is up; SetupError if it could not start
        (or was stopped before it was up)."""
        with self._thread_lock:  # a stop() from another thread sees no thread, or a started one
            if self._stop_flag.is_set():
                raise SetupError(_STOPPED_FIRST)
            self._thread = threading.Thread(target=self._run, name="svcwatch-kopf", daemon=True)
            self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.stopped.is_set() or time.monotonic() > deadline:
                asked = self._stop_flag.is_set()
                self.stop()
                if asked:
                    raise SetupError(_STOPPED_FIRST)
                reason = (
                    self._failure or self.health.last_problem or f"not ready within {timeout:.0f}s"
                )
                raise SetupError(
                    f"cannot watch the cluster: {reason} (check --context/--kubeconfig)"
                )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask kopf to stop and wait for its thread (kopf finishes its tasks first). Safe from
        any thread, at any moment of start(), and twice.

        The wait is bounded: a kopf that does not finish (a request retrying against an API server
        that went away) must not hold the dashboard's quit or the run's exit. The thread is a
        daemon, so it ends with the process; the user is told in one line.
        """
        self._stop_flag.set()
        self._run_stop.set()
        with self._thread_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                self.on_error(f"cluster watch did not stop within {timeout:.0f}s; left to exit")

    def _run(self) -> None:
        self.health.attach(threading.get_ident())
        try:
            while True:
                # Clear, then look: a stop() that lands between the two is seen here, and one
                # after them sets _run_stop for this run. (The other order could wipe a stop.)
                self._run_stop.clear()
                if self._stop_flag.is_set():
                    break
                self._run_once()
                if self._stop_flag.is_set() or not self.ready.is_set():
                    break  # asked to stop, or never came up (start() reports why)
                # A watcher died (kopf gives up a watch on any stream ERROR but 410) or kopf
                # itself did: the data is stale until a fresh kopf has re-listed.
                if not self.is_stale:  # kopf itself failed, not one watcher: both are stale
                    self.health.broken(ENDPOINT_SLICE, time.time())
                    self.health.broken(SERVICE, time.time())
                self._stop_flag.wait(RESTART_BACKOFF)
                self.health.relisting()
        finally:
            self.health.detach()
            self.stopped.set()

    def _run_once(self) -> None:
        try:
            asyncio.run(self._operate())
        except Exception as exc:  # kopf gave up (e.g. no credentials): say why, in one line
            self._failure = _one_line(exc)
            self.on_error(f"cluster watch stopped: {self._failure}")

    async def _operate(self) -> None:
        # Imported here: kopf pulls in aiohttp and friends; `svcwatch --help` must stay fast.
        import kopf

        registry = kopf.OperatorRegistry()
        kopf.on.login(registry=registry)(self.login)
        kopf.on.event(*SLICES, registry=registry, labels={SERVICE_NAME_LABEL: self.service_name})(
            self._on_slice
        )
        kopf.on.event(*SERVICES, registry=registry, when=self._is_demo_service)(self._on_service)
        await kopf.operator(
            registry=registry,
            settings=build_settings(self.service_name, SLICES, SERVICES),
            standalone=True,
            clusterwide=False,
            namespaces=[self.namespace],
            ready_flag=self.ready,
            stop_flag=self._run_stop,
        )

    def _restart(self) -> None:
        """Called from kopf's thread when one of its watchers died: replace this kopf run."""
        self._run_stop.set()

    def _is_demo_service(self, name: str, **_: Any) -> bool:
        return name == self.service_name

    async def _on_slice(self, body: Mapping[str, Any], **kwargs: Any) -> None:
        # kopf passes the event type as `type` (None for the initial listing).
        self._deliver(ENDPOINT_SLICE, kwargs.get("type"), body)

    async def _on_service(self, body: Mapping[str, Any], **kwargs: Any) -> None:
        self._deliver(SERVICE, kwargs.get("type"), body)

    def _deliver(self, kind: str, raw_type: str | None, body: Mapping[str, Any]) -> None:
        """kopf's raw event -> WatchEvent (or nothing, for a replay of what we already have)."""
        seen_at = time.time()
        self.health.delivered(kind)
        plain = _plain(body)
        if raw_type == DELETED:
            event = self.tracker.forget(kind, plain, seen_at)
        else:  # None (initial listing or re-list), ADDED (incl. replays), MODIFIED
            event = self.tracker.observe(kind, plain, seen_at)
        if event is None:
            return
        try:
            self.handler(event)
        except Exception as exc:  # a downstream bug must not kill kopf's worker for this object
            self.on_error(f"watch handler failed on {event.kind} {event.key}: {_one_line(exc)}")


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """kopf's Body view -> a plain dict (the tracker deep-copies it)."""
    return {key: value for key, value in body.items()}


def _one_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
