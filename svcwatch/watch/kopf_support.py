"""What the embedded kopf needs around it: settings that write nothing, login, watch health.

kopf reconnects broken watch streams and re-lists after "410 Gone" by itself, but keeps no state
a caller can read about it. It does log every failed request attempt (ERROR, with the URL), every
retry that succeeded (DEBUG) and every 410 restart (DEBUG) on its watching/fetching loggers; those
records are the only public trace of the stream's health, so `WatchHealth` reads them (only the
ones from the kopf thread it was attached to) and keeps `stale_since` per resource.

What makes a resource live again depends on how it broke. kopf hands events to the handlers through
per-object queues, so a handler may run *after* the stream broke with an event received *before*:
such an event proves nothing. After a failed request kopf retries that same request and logs the
retry that succeeds, so only that record revives the resource. After a "410 Gone" or a fresh kopf,
kopf re-lists, and the next event delivered is the proof.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from svcwatch.model.endpointslice import SERVICE_NAME_LABEL
from svcwatch.watch.events import ENDPOINT_SLICE, SERVICE

# kopf's loggers whose DEBUG records tell about watch restarts and retries.
_WATCH_LOGGERS = ("kopf._cogs.clients.watching", "kopf._cogs.clients.fetching")
_config_lock = threading.Lock()
_attached: list[WatchHealth] = []
_saved: dict[str, tuple[int, bool]] = {}


class WatchHealth(logging.Handler):
    """Per-resource "broken since" times, read from kopf's log records of one thread."""

    def __init__(
        self,
        on_change: Callable[[float | None], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_watcher_failed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(logging.DEBUG)
        self.on_change = on_change
        self.on_error = on_error
        self.on_watcher_failed = on_watcher_failed
        self.last_problem: str | None = None
        self._broken: dict[str, float] = {}
        self._awaiting_retry: set[str] = set()  # broken by a failed request: only its retry revives
        self._state_lock = threading.Lock()
        self._thread_id: int | None = None

    @property
    def stale_since(self) -> float | None:
        with self._state_lock:
            return min(self._broken.values()) if self._broken else None

    def attach(self, thread_id: int) -> None:
        """Start reading kopf's records from this thread (kopf's loop thread)."""
        self._thread_id = thread_id
        with _config_lock:
            if not _attached:
                _quiet_kopf_logging()
            _attached.append(self)
            logging.getLogger("kopf").addHandler(self)

    def detach(self) -> None:
        with _config_lock:
            logging.getLogger("kopf").removeHandler(self)
            if self in _attached:
                _attached.remove(self)
            if not _attached:
                _restore_kopf_logging()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread_id:
            return
        message = record.getMessage()
        kind = _kind_named_in(message)
        if "Request attempt" in message and "failed" in message:
            self.last_problem = message.split(" -> ", 1)[-1][:200]
            if kind is not None:
                self.broken(kind, record.created, until_retry_succeeds="will retry" in message)
        elif "Restarting the watch-stream" in message and kind is not None:
            self.broken(kind, record.created)  # 410 Gone: kopf re-lists now
        elif "Request attempt" in message and "succeeded" in message and kind is not None:
            self.alive(kind)
        elif "Watcher for" in message and "has failed" in message:
            # kopf keeps running without this watcher (any watch ERROR but 410 does this).
            self.broken(kind or ENDPOINT_SLICE, record.created)
            self._report(message)
            if self.on_watcher_failed is not None:
                self.on_watcher_failed()
        elif "multitasker has failed" in message:
            pass  # the same failure, reported once above
        elif record.levelno >= logging.WARNING:
            if "not in the main thread" not in message:  # expected: kopf has its own thread
                self._report(message or record.levelname)

    def _report(self, message: str) -> None:
        if self.on_error is not None:
            self.on_error(f"kopf: {message.splitlines()[0][:200]}")

    def broken(self, kind: str, since: float, *, until_retry_succeeds: bool = False) -> None:
        """`kind` broke at `since` (kept if it was already broken); with `until_retry_succeeds`,
        events still queued in kopf do not revive it, only the retried request does."""

        def mark(broken: dict[str, float]) -> None:
            broken.setdefault(kind, since)
            if until_retry_succeeds:
                self._awaiting_retry.add(kind)

        self._update(mark)

    def alive(self, kind: str) -> None:
        """A request for `kind` succeeded (kopf logged the successful retry): it is live."""

        def revive(broken: dict[str, float]) -> None:
            broken.pop(kind, None)
            self._awaiting_retry.discard(kind)

        self._update(revive)

    def delivered(self, kind: str) -> None:
        """kopf delivered an event of `kind`: live, unless it may predate a failed request."""
        self._update(
            lambda broken: None if kind in self._awaiting_retry else broken.pop(kind, None)
        )

    def relisting(self) -> None:
        """A fresh kopf starts (and lists everything): its events are all newer than any break."""
        with self._state_lock:
            self._awaiting_retry.clear()

    def _update(self, change: Callable[[dict[str, float]], Any]) -> None:
        with self._state_lock:
            before = min(self._broken.values()) if self._broken else None
            change(self._broken)
            after = min(self._broken.values()) if self._broken else None
        if before != after and self.on_change is not None:
            self.on_change(after)


def _kind_named_in(message: str) -> str | None:
    # URLs (…/endpointslices?watch=true) and kopf's resource names (endpointslices.v1.discovery…).
    if "endpointslices" in message:
        return ENDPOINT_SLICE
    if "services" in message:
        return SERVICE
    return None


def _quiet_kopf_logging() -> None:
    """Let kopf's watch DEBUG records reach WatchHealth, and keep kopf off the root logger.

    Without this, kopf's retry errors would go to the root logger (stderr under the TUI); they are
    shown as "stale" instead, and other warnings through on_error.
    """
    for name in ("kopf", *_WATCH_LOGGERS):
        logger = logging.getLogger(name)
        _saved[name] = (logger.level, logger.propagate)
    logging.getLogger("kopf").propagate = False
    for name in _WATCH_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def _restore_kopf_logging() -> None:
    for name, (level, propagate) in _saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = propagate
    _saved.clear()


class _Backoffs:
    """Retry forever, quickly at first: a watch must come back when the API server does.

    Re-iterable (kopf iterates it anew for every request); not Sized, so kopf never escalates.
    """

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((0.1, 0.25, 0.5), itertools.repeat(1.0))


def build_settings(
    service_name: str, slices: tuple[str, str, str], services: tuple[str, str, str]
) -> Any:
    """kopf settings for a read-only observer of one Service and its slices."""
    # Imported here: kopf is heavy and only cluster mode needs it.
    import kopf

    class NoProgress(kopf.ProgressStorage):
        """Event handlers keep no progress; store nothing on the objects."""

        def fetch(self, **_: Any) -> None:
            return None

        def store(self, **_: Any) -> None:
            pass

        def purge(self, **_: Any) -> None:
            pass

        def touch(self, **_: Any) -> None:
            pass

        def clear(self, *, essence: Any) -> Any:
            return essence

    class NoDiffBase(kopf.DiffBaseStorage):
        """No last-handled-configuration annotation: the watcher diffs in memory."""

        def fetch(self, **_: Any) -> None:
            return None

        def store(self, **_: Any) -> None:
            pass

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # no k8s Events from kopf's logs
    settings.persistence.progress_storage = NoProgress()
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.networking.error_backoffs = _Backoffs()
    # Watch exactly the one namespace: no namespace/CRD scanning (and no RBAC to list namespaces).
    settings.scanning.disabled = True
    # Server-side filtering on real clusters; the handlers filter again (kmock ignores selectors).
    settings.watching.label_selectors[slices] = f"{SERVICE_NAME_LABEL}={service_name}"
    settings.watching.field_selectors[services] = f"metadata.name={service_name}"
    return settings


def kubeconfig_login(*, context: str | None, kubeconfig: str | None) -> Callable[..., Any]:
    """A kopf login handler reading the kubeconfig (file and context chosen like kubectl's)."""

    def load(config: Any) -> None:
        import kubernetes

        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=config
        )

    return configured_login(load)


def configured_login(configure: Callable[[Any], None]) -> Callable[..., Any]:
    """A kopf login handler from a function that fills a kubernetes Configuration (kubeconfig,
    or the pod's ServiceAccount for --in-cluster)."""

    def login(**kwargs: Any) -> Any:
        # Imported here: the kubernetes client and kopf are heavy and only cluster mode needs them.
        import kopf
        import kubernetes

        config = kubernetes.client.Configuration()
        try:
            configure(config)
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise kopf.LoginError(f"cannot read the cluster credentials: {exc}") from None
        header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
            "authorization"
        )
        scheme, _sep, token = (header or "").rpartition(" ")
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            username=config.username or None,
            password=config.password or None,
            scheme=scheme or None,
            token=token or None,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )

    return login
