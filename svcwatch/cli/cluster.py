"""`svcwatch cluster up|down|restore|status`: the demo objects and leftovers on a cluster.

These commands need no root and no dashboard: they create what the blog post's demo needs, show what
svcwatch owns there, put a slice back after a crash, and remove everything svcwatch made. Each one
reads kubectl's kubeconfig and context (also when given before the subcommand:
`svcwatch --context k3d-demo cluster up`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from svcwatch.cli import options


@dataclass(frozen=True)
class _ClusterFlags:
    """The connection flags of a cluster subcommand, else those given to `svcwatch` itself."""

    context: str | None
    kubeconfig: str | None
    namespace: str | None
    manifests: tuple[str, ...]

    def connect(self) -> tuple[Any, Any]:
        from svcwatch.cluster.api import connect

        return connect(self.kubeconfig, self.context)


def _cluster_flags(func: Callable[..., None]) -> Callable[..., None]:
    """Adds --context/--kubeconfig/-n/-f and hands `func` them as one `_ClusterFlags`."""

    @options.connection_options
    @options.manifests_option
    @click.pass_context
    @functools.wraps(func)
    def command(
        ctx: click.Context,
        /,
        context: str | None,
        kubeconfig: str | None,
        namespace: str | None,
        manifests: tuple[str, ...],
        **rest: Any,
    ) -> None:
        root = ctx.find_root().params
        flags = _ClusterFlags(
            context or root.get("context"),
            kubeconfig or root.get("kubeconfig"),
            namespace or root.get("namespace"),
            manifests,
        )
        func(flags, **rest)

    return command


@click.group()
def cluster() -> None:
    """The demo on a real cluster (k3d, kind, any kubeconfig): create it, inspect it, clean up.

    \b
      svcwatch cluster up        Deployment, Service, svcwatch's EndpointSlice; waits for the pod
      svcwatch --cluster         the dashboard on it (faults patch only svcwatch's slice)
      svcwatch cluster restore   put a slice back after a crash (saved before the first change)
      svcwatch cluster status    what svcwatch owns and has saved there
      svcwatch cluster down      delete what svcwatch created, agent pods included
    """


@cluster.command()
@_cluster_flags
@click.option(
    "--timeout",
    type=options.FiniteFloat(1, 3600),
    default=180.0,
    show_default=True,
    help="Seconds to wait for the socat pod to become Ready.",
)
def up(flags: _ClusterFlags, timeout: float) -> None:
    """Apply manifests/ and fill svcwatch's EndpointSlice with the Ready socat pod's IP."""
    from svcwatch.cluster.demo import demo_documents
    from svcwatch.cluster.demo import up as cluster_up

    docs = demo_documents(flags.manifests, flags.namespace)
    target, api = flags.connect()
    click.echo(f"cluster {target.label}")
    result = cluster_up(api, docs, progress=click.echo, timeout=timeout)
    click.echo(
        f"ready: Service {result.namespace}/{result.service} -> pod {result.pod} ({result.pod_ip}) "
        f"on node {result.node or '?'}; now run `svcwatch --cluster --context {target.context}`"
    )


@cluster.command()
@_cluster_flags
def down(flags: _ClusterFlags) -> None:
    """Delete the demo objects svcwatch created (labelled) and its node agent pods."""
    from svcwatch.cluster.demo import demo_documents
    from svcwatch.cluster.demo import down as cluster_down

    docs = demo_documents(flags.manifests, flags.namespace)
    target, api = flags.connect()
    removed = cluster_down(api, docs, target.context, progress=click.echo)
    click.echo(
        f"removed {len(removed)} object(s) from {target.context}"
        if removed
        else "nothing to remove"
    )


@cluster.command()
@_cluster_flags
def restore(flags: _ClusterFlags) -> None:
    """Put every slice svcwatch changed in this context back to its saved original content."""
    from svcwatch.cluster.objects import list_saved
    from svcwatch.cluster.objects import restore as restore_slice

    target, api = flags.connect()
    wanted = flags.namespace
    saved = [s for s in list_saved(target.context) if wanted is None or s.namespace == wanted]
    if not saved:
        click.echo(f"nothing to restore in {target.context}")
        return
    for record in saved:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.saved_at))
        if restore_slice(api, record):
            click.echo(
                f"restored EndpointSlice {record.namespace}/{record.name} to its content of {when}"
            )
        else:
            click.echo(
                f"EndpointSlice {record.namespace}/{record.name} no longer exists: forgot its "
                "saved copy"
            )


@cluster.command()
@_cluster_flags
def status(flags: _ClusterFlags) -> None:
    """The demo Service, its slices (and who manages them), agent pods and saved originals."""
    from svcwatch.cluster.status import describe

    target, api = flags.connect()
    for line in describe(api, target.context, flags.manifests, flags.namespace):
        click.echo(line)
