"""Which cluster to talk to: kubectl's kubeconfig rules, with one-line errors naming the fix.

The order is kubectl's: `--kubeconfig`, then `$KUBECONFIG` (a `:`-separated list, merged), then
`~/.kube/config`; `--context`, else the file's current-context. The context's namespace becomes the
default namespace when `-n` is not given. `--in-cluster` (svcwatch itself in a pod) uses the pod's
ServiceAccount instead: its token and CA under SERVICE_ACCOUNT_DIR and the API server the
KUBERNETES_SERVICE_HOST/PORT variables name. Every failure (no file, unknown context, a file the
client cannot read) is a SetupError whose message says what to pass or run instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svcwatch.model.errors import SetupError

PATH_SEPARATOR = ":"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER = "in-cluster"  # the context name shown for --in-cluster
DEFAULT_KUBECONFIG = "~/.kube/config"
NO_KUBECONFIG_HINT = (
    "pass --kubeconfig FILE or set KUBECONFIG "
    "(k3d: `k3d kubeconfig merge NAME --kubeconfig-switch-context`, kind: `kind export kubeconfig`)"
)


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """A resolved kubeconfig + context: what to connect to and what to call it on screen."""

    kubeconfig: str  # the path (or `:`-separated paths) actually read
    context: str
    namespace: str | None  # the context's namespace, if it sets one
    server: str  # the API server URL, for messages
    service_account: str | None = None  # --in-cluster: the ServiceAccount's directory

    @property
    def label(self) -> str:
        return f"{self.context} ({self.server})"


def kubeconfig_paths(kubeconfig: str | None) -> str:
    """kubectl's kubeconfig path list: the flag, then $KUBECONFIG, then ~/.kube/config."""
    raw = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    parts = [str(Path(p).expanduser()) for p in raw.split(PATH_SEPARATOR) if p]
    return PATH_SEPARATOR.join(parts)


def resolve(kubeconfig: str | None, context: str | None) -> ClusterTarget:
    """Find the kubeconfig and the context, or raise SetupError with the fix.

    Args:
        kubeconfig: `--kubeconfig` (may be a `:`-separated list), None for the default.
        context: `--context`, None for the current-context.
    Returns:
        The resolved target; nothing has contacted the API server yet.
    """
    paths = kubeconfig_paths(kubeconfig)
    existing = [p for p in paths.split(PATH_SEPARATOR) if Path(p).is_file()]
    if not existing:
        raise SetupError(f"no kubeconfig at {paths}: {NO_KUBECONFIG_HINT}")
    paths = PATH_SEPARATOR.join(existing)
    contexts, current = _contexts(paths)
    names = [str(c.get("name")) for c in contexts]
    known = ", ".join(names) or "none"
    if context is None:
        if not current:
            raise SetupError(
                f"{paths} has no current-context: pass --context NAME (known: {known})"
            )
        context = str(current.get("name"))
    elif context not in names:
        raise SetupError(
            f"context {context!r} is not in {paths}: pass --context NAME (known: {known})"
        )
    entry = next(c for c in contexts if c.get("name") == context)
    details: dict[str, Any] = entry.get("context") or {}
    return ClusterTarget(
        kubeconfig=paths,
        context=context,
        namespace=details.get("namespace") or None,
        server=_server_of(paths, str(details.get("cluster", ""))),
    )


def in_cluster_target(directory: str = SERVICE_ACCOUNT_DIR) -> ClusterTarget:
    """svcwatch runs in a pod: its ServiceAccount; SetupError naming the fix when it does not."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port or not (Path(directory) / "token").is_file():
        raise SetupError(
            "--in-cluster: this is not a pod with a ServiceAccount (KUBERNETES_SERVICE_HOST/PORT "
            f"unset or no token in {directory}): leave out --in-cluster to use a kubeconfig"
        )
    namespace_file = Path(directory) / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else None
    server = f"https://{'[' + host + ']' if ':' in host else host}:{port}"
    return ClusterTarget(directory, IN_CLUSTER, namespace or None, server, directory)


def configure(target: ClusterTarget, configuration: Any) -> None:
    """Fill a kubernetes Configuration for the target (kubeconfig, or the ServiceAccount)."""
    from kubernetes import config  # heavy: only cluster mode needs it

    if target.service_account is not None:
        directory = Path(target.service_account)
        loader = config.incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
            token_filename=str(directory / "token"), cert_filename=str(directory / "ca.crt")
        )
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=target.kubeconfig,
            context=target.context,
            client_configuration=configuration,
        )


def new_api_client(target: ClusterTarget) -> Any:
    """A `kubernetes.client.ApiClient` for the target (no request is made yet)."""
    from kubernetes import client  # heavy: only cluster mode needs it

    configuration = client.Configuration()
    try:
        configure(target, configuration)
    except Exception as exc:  # ConfigException, bad certificates, an exec plugin that is missing
        raise SetupError(
            f"cannot use context {target.context!r} from {target.kubeconfig}: {_one_line(exc)}"
        ) from None
    configuration.retries = 1  # a dead API server should fail in a second, not after four tries
    return client.ApiClient(configuration=configuration)


def _contexts(paths: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    from kubernetes import config  # heavy: only cluster mode needs it

    try:
        contexts, current = config.list_kube_config_contexts(config_file=paths)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise SetupError(f"cannot read kubeconfig {paths}: {_one_line(exc)}") from None
    return list(contexts or []), current or None


def _server_of(paths: str, cluster_name: str) -> str:
    """The server URL of `cluster_name` in the first file that defines it (for messages only)."""
    import yaml

    for path in paths.split(PATH_SEPARATOR):
        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for cluster in doc.get("clusters") or []:
            if isinstance(cluster, dict) and cluster.get("name") == cluster_name:
                return str((cluster.get("cluster") or {}).get("server", "?"))
    return "?"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
