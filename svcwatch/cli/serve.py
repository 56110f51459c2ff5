"""`svcwatch serve`: the same dashboard in a web browser, for talks that are screen-shared.

textual-serve runs one `svcwatch` dashboard process per browser tab and relays its terminal over a
websocket. The flags the user typed (the dashboard's own: lab, probe, cluster, theme, captions,
script) are validated here with the very same option definitions and passed through to that
command, so a bad flag is a one-line error now rather than a broken page later. `--demo` or
`--replay FILE` serve a recording instead of a live lab.

The server binds to loopback by default. A lab dashboard is root: its keys rewrite the node's
iptables rules and start and stop pods, so serving it on another address hands that to anyone
who can reach the port; svcwatch says so in one line (use an SSH tunnel instead).
"""

from __future__ import annotations

import ipaddress
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from svcwatch.cli import options
from svcwatch.model.errors import InputError, SetupError

OWN_PARAMS = ("host", "port", "demo", "replay_file")
REPLAY_FLAGS = ("theme",)  # what `svcwatch replay` accepts besides the recording


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; any other name may resolve elsewhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int, replaying: bool) -> str:
    """The one-line warning printed when the server is reachable from other machines."""
    what = (
        "this machine's svcwatch"
        if replaying
        else "a root-owned lab (its keys rewrite iptables rules and start and stop pods)"
    )
    return (
        f"svcwatch: warning: serving on {host}:{port}, not loopback: anyone who can reach this "
        f"port drives {what}; prefer --host 127.0.0.1 and an SSH tunnel (ssh -L {port}:"
        f"127.0.0.1:{port})"
    )


def typed_flags(ctx: click.Context) -> list[str]:
    """The dashboard flags the user gave (command line or environment), as argv again."""
    argv: list[str] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in OWN_PARAMS or param.name is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        value, flag = ctx.params[param.name], max(param.opts, key=len)
        if param.is_flag:
            argv += [flag] if value else []
        elif param.multiple:
            for item in value:
                argv += [flag, str(item)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def served_argv(ctx: click.Context, demo: bool, replay_file: str | None) -> list[str]:
    """The `svcwatch ...` arguments each browser tab runs; InputError for flags that don't fit."""
    flags = typed_flags(ctx)
    from svcwatch.cli.dashboard import require_known_theme

    require_known_theme(ctx.params.get("theme"))  # a typo fails here, not in every browser tab
    if not (demo or replay_file):
        script = ctx.params.get("script")
        if script:
            from svcwatch.talk.script import load_script

            load_script(script)  # a bad talk script fails here, not in the browser
        if not ctx.params.get("cluster"):
            from svcwatch.lab.privileges import require_lab_privileges

            require_lab_privileges()  # the served dashboard builds the lab as this user
        return flags
    if demo and replay_file:
        raise InputError("give --replay FILE or --demo, not both")
    allowed = {max(p.opts, key=len) for p in ctx.command.params if p.name in REPLAY_FLAGS}
    extra = [f for f in flags if f.startswith("-") and f not in allowed]
    if extra:
        raise InputError(f"{extra[0]} does not apply to a replay (it takes only --theme)")
    if replay_file:
        from svcwatch.record.reader import load_recording

        load_recording(Path(replay_file))  # not a recording: one line now, not an empty page
    return ["replay", *(["--demo"] if demo else [replay_file or ""]), *flags]


def require_free_port(host: str, port: int) -> None:
    """A port in use is one line before the "Serving…" banner, not an error after it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SetupError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc} "
                f"(another server there? try --port {port + 1 if port < 65535 else 8000})"
            ) from None


@click.command(
    help="""Serve the dashboard to a web browser (textual-serve), for screen-shared talks.

\b
  sudo svcwatch serve --captions --script examples/talk.yaml   the lab, on http://127.0.0.1:8000
  svcwatch serve --demo --port 8080                            the bundled recording, no root

Each browser tab runs its own dashboard with the flags given here. The server listens on
loopback unless --host says otherwise (then it warns: a lab dashboard drives a root-owned lab).
"""
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option("--demo", is_flag=True, help="Serve a replay of the bundled demo recording.")
@click.option(
    "--replay",
    "replay_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Serve a replay of this recording instead of a live lab.",
)
@options.lab_options
@options.probe_options
@options.cluster_options
@options.dashboard_options
@click.pass_context
def serve(ctx: click.Context, /, host: str, port: int, demo: bool, **_: Any) -> None:
    argv = served_argv(ctx, demo, ctx.params.get("replay_file"))
    command = shlex.join([sys.executable, "-m", "svcwatch", *argv])
    if not is_loopback(host):
        click.echo(
            exposure_warning(host, port, bool(demo or ctx.params.get("replay_file"))), err=True
        )
    require_free_port(host, port)
    from textual_serve.server import Server  # aiohttp and friends: only when serving

    Server(command, host=host, port=port, title="svcwatch").serve()
