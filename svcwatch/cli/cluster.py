"""`svcwatch cluster up|down|restore|status`: the demo objects and leftovers on a cluster.

These commands need no root and no dashboard: they create what the seed's demo needs, show what
svcwatch owns there, put a slice back after a crash, and remove everything svcwatch made. Each one
reads kubectl's kubeconfig and context (also when given before the subcommand:
`svcwatch --context k3d-demo cluster up`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from svcwatch.cli import options

F = TypeVar("F", bound=Callable[..., Any])


def _connection_options(func: F) -> F:
    return options.connection_options(options.manifests_option(func))


def _connect(ctx: click.Context, kubeconfig: str | None, context: str | None) -> tuple[Any, Any]:
    """Connect with the subcommand's flags, else those given to `svcwatch` itself."""
    from svcwatch.cluster.api import connect

    parent = ctx.find_root().params
    return connect(kubeconfig or parent.get("kubeconfig"), context or parent.get("context"))


def _namespace(ctx: click.Context, namespace: str | None) -> str | None:
    return namespace or ctx.find_root().params.get("namespace")


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
@_connection_options
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=180.0,
    show_default=True,
    help="Seconds to wait for the socat pod to become Ready.",
)
@click.pass_context
def up(
    ctx: click.Context,
    context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    manifests: tuple[str, ...],
    timeout: float,
) -> None:
    """Apply manifests/ and fill svcwatch's EndpointSlice with the Ready socat pod's IP."""
    from svcwatch.cluster.demo import demo_documents
    from svcwatch.cluster.demo import up as cluster_up

    docs = demo_documents(manifests, _namespace(ctx, namespace))
    target, api = _connect(ctx, kubeconfig, context)
    click.echo(f"cluster {target.label}")
    result = cluster_up(api, docs, progress=click.echo, timeout=timeout)
    click.echo(
        f"ready: Service {result.namespace}/{result.service} -> pod {result.pod} ({result.pod_ip}) "
        f"on node {result.node or '?'}; now run `svcwatch --cluster --context {target.context}`"
    )


@cluster.command()
@_connection_options
@click.pass_context
def down(
    ctx: click.Context,
    context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    manifests: tuple[str, ...],
) -> None:
    """Delete the demo objects svcwatch created (labelled) and its node agent pods."""
    from svcwatch.cluster.demo import demo_documents
    from svcwatch.cluster.demo import down as cluster_down

    docs = demo_documents(manifests, _namespace(ctx, namespace))
    target, api = _connect(ctx, kubeconfig, context)
    removed = cluster_down(api, docs, target.context, progress=click.echo)
    click.echo(
        f"removed {len(removed)} object(s) from {target.context}"
        if removed
        else "nothing to remove"
    )


@cluster.command()
@_connection_options
@click.pass_context
def restore(
    ctx: click.Context,
    context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    manifests: tuple[str, ...],
) -> None:
    """Put every slice svcwatch changed in this context back to its saved original content."""
    from svcwatch.cluster.objects import list_saved
    from svcwatch.cluster.objects import restore as restore_slice

    target, api = _connect(ctx, kubeconfig, context)
    wanted = _namespace(ctx, namespace)
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
@_connection_options
@click.pass_context
def status(
    ctx: click.Context,
    context: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    manifests: tuple[str, ...],
) -> None:
    """The demo Service, its slices (and who manages them), agent pods and saved originals."""
    from svcwatch.cluster.status import describe

    docs_namespace = _namespace(ctx, namespace)
    target, api = _connect(ctx, kubeconfig, context)
    for line in describe(api, target.context, manifests, docs_namespace):
        click.echo(line)
