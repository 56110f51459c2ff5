"""`svcwatch replay` (the dashboard or the stream from a recording), `svcwatch export` (pcapng).

Neither needs root, a lab or a cluster. A damaged recording replays up to the damage and says
where in one line on stderr; a file that cannot be replayed at all is a one-line error, exit 2.
"""

from __future__ import annotations

import errno
import math
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from svcwatch.model.errors import InputError, OutputError, SetupError

if TYPE_CHECKING:
    from svcwatch.session.replay import ReplaySession
    from svcwatch.talk.script import TalkScript


class SpeedType(click.ParamType):  # type: ignore[type-arg]  # generic only in click stubs
    """A positive factor (0.5, 2, 10) or `max` (no waiting: as fast as the output goes)."""

    name = "X"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        if str(value).lower() in ("max", "inf"):
            return math.inf
        try:
            speed = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number or 'max'", param, ctx)
        if not speed > 0:
            self.fail(f"{value!r} must be > 0", param, ctx)
        return speed


def _recording_path(recording: str | None, demo: bool) -> Path:
    from svcwatch.record import DEMO_RECORDING

    if demo and recording:
        raise InputError("give a recording file or --demo, not both")
    if demo:
        if not DEMO_RECORDING.is_file():
            raise SetupError(
                f"the bundled demo recording is missing ({DEMO_RECORDING}); reinstall svcwatch"
            )
        return DEMO_RECORDING
    if not recording:
        raise InputError("which recording? give a FILE (or --demo for the bundled one)")
    return Path(recording)


@click.command(
    help="""Replay a recording: the same dashboard, no root, no lab, no cluster.

\b
Keys: space pause/resume, . step one event, [ ] slower/faster, 1-4 jump to the next moment that
scenario started. --plain/--json print the stream instead (like `svcwatch run`), at the
recorded pace scaled by --speed (`--speed max`: no waiting).

\b
  svcwatch replay --demo                 the bundled recording of the four scenarios
  svcwatch replay talk.svcrec.gz --speed 2
  svcwatch replay --plain --speed max talk.svcrec
"""
)
@click.argument("recording", required=False, type=click.Path(dir_okay=False))
@click.option("--demo", is_flag=True, help="Play the recording bundled with svcwatch.")
@click.option(
    "--speed",
    type=SpeedType(),
    default="1",
    show_default=True,
    help="Playback speed factor, or 'max'.",
)
@click.option(
    "--plain",
    is_flag=True,
    help="Print the stream in the blog post's format instead of the dashboard.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per event instead of the dashboard.",
)
@click.option("--theme", default=None, help="Dashboard theme (as for `svcwatch`).")
@click.option("--captions", is_flag=True, help="Show the caption bar (as for `svcwatch`).")
@click.option(
    "--script",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A talk script stepped with the right-arrow key (as for `svcwatch`).",
)
def replay(
    recording: str | None,
    demo: bool,
    speed: float,
    plain: bool,
    as_json: bool,
    theme: str | None,
    captions: bool,
    script: str | None,
) -> None:
    from svcwatch.session.replay import ReplaySession

    output = one_output_format(plain=plain, as_json=as_json)
    path = _recording_path(recording, demo)
    if output is None and math.isinf(speed):
        raise InputError("--speed max is for --plain/--json; the dashboard needs a finite speed")
    if output is not None and (captions or script):
        raise InputError("--captions and --script are for the dashboard, not --plain/--json")
    talk = _load_script(script)
    session = ReplaySession(path, speed=speed)
    if output is None:
        from svcwatch.cli.dashboard import (
            require_known_theme,
            require_terminal,
            run_session_dashboard,
        )

        require_known_theme(theme)
        source = "--demo" if demo else shlex.quote(str(path))
        serve = "--demo" if demo else f"--replay {source}"
        require_terminal(f"`svcwatch replay --plain {source}`", f"`svcwatch serve {serve}`")
        run_session_dashboard(session, theme=theme, captions=captions, script=talk)
    else:
        _print_stream(session, as_json=output == "json")
    warning = session.recording.warning()
    if warning:
        click.echo(f"svcwatch: warning: {warning}", err=True)


def one_output_format(*, plain: bool, as_json: bool) -> str | None:
    """ "plain", "json" or None (the dashboard); both at once is a one-line error."""
    if plain and as_json:
        raise click.UsageError("--plain and --json are mutually exclusive: pick one")
    return "json" if as_json else "plain" if plain else None


def _load_script(script: str | None) -> TalkScript | None:
    """A bad talk script is a one-line error before the recording is read or Textual starts."""
    if not script:
        return None
    from svcwatch.talk.script import load_script

    return load_script(script)


def _print_stream(session: ReplaySession, as_json: bool) -> None:
    """Print the recorded events exactly as `svcwatch run --plain/--json` printed them live."""
    from svcwatch.cli.run import StreamPrinter  # the same time-ordering window and line format
    from svcwatch.session.replay import REPLAY_ORIGIN
    from svcwatch.sinks import QueueSink

    queue = QueueSink()
    printer = StreamPrinter(sys.stdout, as_json=as_json, t0=session.recording.start_ts)
    session.start(queue)
    try:
        done = False
        while not done:
            done = session.finished  # read first: events emitted before `finished` are queued
            events = queue.drain(timeout=0.1)
            printer.add([e for e in events if getattr(e, "origin", None) != REPLAY_ORIGIN])
            printer.release(None if done else session.now())
    except BrokenPipeError:  # the reader left (`| head -3`): end quietly, exit 0, as Unix tools
        from svcwatch.cli import silence_stdout

        silence_stdout()
    finally:
        session.stop()


def _default_output(recording: Path) -> Path:
    name = recording.name
    for suffix in (".gz", ".svcrec", ".jsonl"):
        name = name.removesuffix(suffix)
    return Path(name + ".pcapng")


@click.command(
    help="""Write a recording's packets to a pcapng file for Wireshark or tshark.

Each interface (eth0, cni0, the veths) gets its own interface block with its name, and each
packet its direction (inbound/outbound), so `tshark -r OUT -T fields -e frame.interface_name`
shows them as the dashboard did.

\b
  svcwatch export talk.svcrec.gz -o talk.pcapng
  svcwatch export --demo -o demo.pcapng && tshark -r demo.pcapng -Y tcp.flags.reset==1
"""
)
@click.argument("recording", required=False, type=click.Path(dir_okay=False))
@click.option("--demo", is_flag=True, help="Export the recording bundled with svcwatch.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="The pcapng file to write (default: the recording's name with .pcapng; - for stdout).",
)
def export(recording: str | None, demo: bool, output: str | None) -> None:
    from svcwatch.record.pcap import PcapngSink
    from svcwatch.record.reader import load_recording

    path = _recording_path(recording, demo)
    loaded = load_recording(path)
    to_stdout = output == "-"  # as every Unix tool: `-o -` is standard output (| tshark -r -)
    target = Path("/dev/stdout") if to_stdout else Path(output or _default_output(path))
    sink = PcapngSink(target)
    sink.emit_many(loaded.events)
    sink.close()
    if sink.error is not None and to_stdout and sink.error.endswith(os.strerror(errno.EPIPE)):
        return  # the reader left (`| tshark -r - -c 5`): quietly, as Unix tools do
    if sink.error is not None:
        if target.is_file() and not to_stdout:  # a half-written export is no export
            target.unlink()
        raise OutputError(sink.error)
    names = ", ".join(dict.fromkeys(sink.interface_names)) or "none"
    where = "standard output" if to_stdout else str(target)
    click.echo(f"wrote {sink.packets} packets to {where} (interfaces: {names})", err=to_stdout)
    warning = loaded.warning()
    if warning:
        click.echo(f"svcwatch: warning: {warning}", err=True)
