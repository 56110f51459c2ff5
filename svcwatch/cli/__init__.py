"""The `svcwatch` command: with no subcommand it opens the dashboard on the lab (or a cluster).

Subcommands are loaded lazily by name so `svcwatch --help` never imports scapy, kopf, kubernetes or
Textual. Every user-fixable problem (bad YAML, bad address, unknown scenario, no root, a missing
binary, no kubeconfig, RBAC denied) ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

import click

from svcwatch import __version__
from svcwatch.cli import options
from svcwatch.cli.signals import StopRequested, exit_status, process_shutdown
from svcwatch.model.errors import InputError, OutputError, SetupError

# name -> "module:attribute"; each module defines one click command or group.
SUBCOMMANDS: dict[str, str] = {
    "lab": "svcwatch.cli.lab:lab",
    "run": "svcwatch.cli.run:run",
    "cluster": "svcwatch.cli.cluster:cluster",
    "replay": "svcwatch.cli.replay:replay",
    "export": "svcwatch.cli.replay:export",
    "serve": "svcwatch.cli.serve:serve",
}


# kubectl's way to name a Service; `svcwatch --cluster svc/NAME` means `--service NAME`.
SERVICE_TARGET = re.compile(r"^(?:svc|service|services)/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")
NO_SERVICE_TARGET = ("lab", "cluster", "replay", "export")  # subcommands that take none


def service_targets(args: list[str]) -> list[str]:
    """`svc/NAME` -> `--service NAME` for the dashboard, `run` and `serve`; other subcommands'
    arguments and anything after `--` are left alone."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--" or arg in NO_SERVICE_TARGET:
            return out + args[i:]
        found = SERVICE_TARGET.match(arg)
        out += ["--service", found[1]] if found else [arg]
    return out


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used (or listed by --help)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, service_targets(args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


HELP = """Watch a Kubernetes Service break, live, packet by packet.

With no subcommand, svcwatch builds (or reuses) a lab -- a real mini k3s node made of Linux network
namespaces, a cni0 bridge, veth pairs, a socat-like echo pod and kube-proxy's exact iptables
rules -- and opens a dashboard with four panes: the Service's iptables chain, its EndpointSlice,
the packets crossing eth0 -> cni0 -> veth, and TCP echo probes. Keys 1-4 switch between the happy
path and the three breaks of the blog post "Breaking A Kubernetes Service in Three Ways And
Examining The Raw Packets" (Tyler Jarjoura, April 2026): wrong port, wrong IP, good+bad mix; 5-8
add not-ready, no endpoints, pod down and the rollout race. The lab needs root (sudo) on Linux;
without it, use --cluster or `svcwatch replay --demo`.

\b
  sudo svcwatch                      the dashboard on the lab (torn down on quit if it built it)
  sudo svcwatch run --plain -s wrong-port -d 5   the same stream as text lines
  svcwatch --cluster --context k3d-demo        the dashboard on a real cluster
  svcwatch --cluster -n shop svc/cart          any existing Service, read-only
  svcwatch replay --demo             a recorded session: no root, no cluster, any OS
"""


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    help=HELP,
    # -h as well, on every subcommand too (child contexts inherit it).
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="svcwatch")
@options.lab_options
@options.probe_options
@options.cluster_options
@options.dashboard_options
@click.pass_context
def cli(
    ctx: click.Context,
    /,
    theme: str | None,
    captions: bool,
    script: str | None,
    **session_flags: Any,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from svcwatch.cli.dashboard import run_dashboard  # Textual is heavy: import on use
    from svcwatch.session.settings import SessionSettings

    # Every other flag is named by SessionSettings.from_flags: an unknown one is a TypeError.
    settings = SessionSettings.from_flags(**session_flags)
    run_dashboard(settings, theme=theme, captions=captions, script_path=script)


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def silence_stdout() -> None:
    """Point standard output at /dev/null: what could not be written there is dropped, and the
    interpreter's last flush at exit does not fail again with a second message."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no stdout at all: nothing to silence
        pass


def say(line: str) -> None:
    """One line on stderr; when stderr itself is gone (a closed terminal, /dev/full), nothing:
    the exit status still tells."""
    try:
        click.echo(line, err=True)
    except (OSError, ValueError):
        pass


def stop_signal_behind(exc: BaseException) -> int | None:
    """The stop signal this exception arose from handling, if any (click wraps them)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StopRequested):
            return seen.signum
        seen = seen.__cause__ or seen.__context__
    return None


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn every expected failure into one line."""
    shutdown = process_shutdown(fresh=True)
    previous = shutdown.install()  # SIGTERM/SIGINT/SIGHUP at any moment: see cli/signals.py
    try:
        _main(argv)
    finally:
        shutdown.uninstall(previous)


def _main(argv: list[str] | None) -> None:
    """The CLI, with every expected failure turned into one line and its exit status."""
    try:
        cli.main(args=argv, prog_name="svcwatch", standalone_mode=False)
    except StopRequested as exc:
        sys.exit(exit_status(exc.signum))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        say(f"svcwatch: error: {one_line(exc.format_message())}{hint}")
        sys.exit(2)
    except click.exceptions.Abort as exc:  # click's wrapping of a KeyboardInterrupt
        signum = stop_signal_behind(exc)
        sys.exit(exit_status(signum) if signum is not None else 130)
    except KeyboardInterrupt:
        sys.exit(130)
    except (InputError, SetupError) as exc:
        say(f"svcwatch: error: {one_line(str(exc))}")
        sys.exit(2)
    except OutputError as exc:
        silence_stdout()
        say(f"svcwatch: error: {one_line(str(exc))}")
        sys.exit(1)
    except click.ClickException as exc:
        say(f"svcwatch: error: {one_line(exc.format_message())}")
        sys.exit(exc.exit_code or 1)
    except BrokenPipeError:  # the reader left (`| head -3`): end quietly, as Unix tools do
        silence_stdout()
        sys.exit(0)
    except Exception as exc:  # a bug: still one line, the traceback on request
        signum = stop_signal_behind(exc)
        if signum is not None:  # e.g. click's newline after a signal, onto a closed terminal
            sys.exit(exit_status(signum))
        if os.environ.get("SVCWATCH_DEBUG"):
            raise
        say(
            f"svcwatch: internal error: {type(exc).__name__}: {one_line(str(exc))} "
            "(set SVCWATCH_DEBUG=1 for the traceback)"
        )
        sys.exit(1)
