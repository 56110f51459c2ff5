"""Option sets shared by the dashboard (`svcwatch`) and the headless stream (`svcwatch run`).

Defining each option once keeps the two entry points' flags, defaults and help identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LAB_NAME = "default"


def _nonempty_payload(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Probe payload: at least one byte. An empty one would be "echoed" by any listener that
    accepts and closes, so every probe would read echo-ok and prove nothing."""
    if not value:
        raise click.BadParameter("must not be empty: a probe proves the echo by what comes back")
    return value


class FiniteFloat(click.FloatRange):
    """A number in a range that is also finite: `nan` passes every `<`/`>` check (so a range
    alone lets `--interval nan` send probes in a tight loop) and `inf` means "never". Every
    numeric flag uses this type, so none can slip either through."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def _apply(decorators: list[Callable[[F], F]]) -> Callable[[F], F]:
    def wrap(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return wrap


# The lab's flags one by one, for `svcwatch lab ...` subcommands that take only some of them.
lab_name_option = click.option(
    "--name",
    "lab_name",
    default=DEFAULT_LAB_NAME,
    show_default=True,
    envvar="SVCWATCH_LAB",
    help="Which lab (namespaces svcwatch-NAME-*); labs with different names coexist.",
    show_envvar=True,
)
manifests_option = click.option(
    "-f",
    "--filename",
    "manifests",
    multiple=True,
    type=click.Path(),
    help="Manifest file or directory (repeatable). Default: the bundled manifests/.",
)
pods_option = click.option(
    "--pods",
    type=click.IntRange(0, 64),
    default=7,
    show_default=True,
    help="Idle pods on the bridge besides the echo pod (each gets a veth, so ARP floods show).",
)
proxy_mode_option = click.option(
    "--proxy-mode",
    type=click.Choice(["iptables", "nftables"]),
    default=None,
    help="kube-proxy's mode on the lab: iptables (a new lab's default) or nftables (one "
    "`table ip kube-proxy`, no KUBE-* iptables chains). A reused lab keeps its mode unless this "
    "is given; then its rules are swapped.",
)

lab_options = _apply(
    [
        lab_name_option,
        manifests_option,
        pods_option,
        proxy_mode_option,
        click.option(
            "-s",
            "--scenario",
            default=None,
            help="Start in this scenario: happy, wrong-port, wrong-ip, mixed, not-ready, empty, "
            "pod-down, rollout-race.",
        ),
        click.option(
            "--sync-delay",
            type=FiniteFloat(0, 60),
            default=0.0,
            show_default=True,
            help="Seconds between a slice change and the rules changing "
            "(kube-proxy's minSyncPeriod is 1).",
        ),
        click.option(
            "--keep", is_flag=True, help="Leave the lab running on exit (the next run reuses it)."
        ),
    ]
)

probe_options = _apply(
    [
        click.option(
            "--interval",
            type=FiniteFloat(0.05, 60),
            default=1.0,
            show_default=True,
            help="Seconds between TCP echo probes.",
        ),
        click.option(
            "--timeout",
            type=FiniteFloat(0.05, 60),
            default=2.0,
            show_default=True,
            help="Seconds a probe waits to connect, and then for the echo.",
        ),
        click.option(
            "--payload",
            callback=_nonempty_payload,
            default="hello",
            show_default=True,
            help="What each probe sends and expects back.",
        ),
        click.option(
            "--probe",
            "probe_target",
            default=None,
            metavar="HOST:PORT",
            help="Probe this address instead of the node's IP:nodePort.",
        ),
    ]
)

# How to reach a cluster, for the dashboard, `run --cluster` and `svcwatch cluster ...` alike.
connection_options = _apply(
    [
        click.option(
            "--context", default=None, help="kubeconfig context (default: the current one)."
        ),
        click.option(
            "--kubeconfig",
            default=None,
            type=click.Path(),
            envvar="KUBECONFIG",
            help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
        ),
        click.option(
            "-n",
            "--namespace",
            default=None,
            help="Namespace of the demo objects (default: the manifests').",
        ),
    ]
)

cluster_options = _apply(
    [
        click.option(
            "--cluster", is_flag=True, help="Use a real cluster (kubeconfig) instead of the lab."
        ),
        connection_options,
        click.option(
            "--agent-image",
            default="nicolaka/netshoot:latest",
            show_default=True,
            help="Image of the short-lived node agent pod (needs tcpdump and iptables).",
        ),
        click.option(
            "--in-cluster",
            is_flag=True,
            help="svcwatch runs in a pod: use its ServiceAccount instead of a kubeconfig.",
        ),
        click.option(
            "--agent-namespace",
            default=None,
            help="Namespace for the node agent pods (privileged, hostNetwork; default: -n's). "
            "Pod Security must allow privileged pods there.",
        ),
        click.option(
            "--take-over",
            is_flag=True,
            help="Adopt an EndpointSlice svcwatch did not create (restored on exit).",
        ),
        click.option(
            "--service",
            default=None,
            metavar="NAME",
            help="Watch this existing Service (also given as svc/NAME), read-only unless "
            "svcwatch created it or --take-over: all its EndpointSlices, any type.",
        ),
    ]
)

dashboard_options = _apply(
    [
        click.option(
            "--theme",
            default=None,
            help="Theme name (svcwatch-dark, svcwatch-light, svcwatch-projector, or a user theme).",
        ),
        click.option(
            "--record",
            type=click.Path(dir_okay=False),
            default=None,
            help="Record everything shown to this file (replay with `svcwatch replay FILE`).",
        ),
        click.option(
            "--pcap",
            type=click.Path(dir_okay=False),
            default=None,
            help="Also write every captured packet to this pcapng file.",
        ),
        click.option(
            "--captions",
            is_flag=True,
            help="Show a caption bar explaining each scenario to an audience.",
        ),
        click.option(
            "--script",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="A talk script (YAML list of scenes) stepped with the right-arrow key.",
        ),
    ]
)
