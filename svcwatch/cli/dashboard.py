"""`svcwatch` with no subcommand, and `svcwatch replay`: open the dashboard on a session.

`run_session_dashboard` is the one entry both use, so --theme, --captions and --script mean the
same on a live lab, a cluster and a replay. The session is made before Textual starts, so setup
problems the factory can see up front (not root, a bad manifest, no kubeconfig) still end as one
line and exit 2; problems while starting show inside the dashboard, and the first of them is
repeated on stderr after it closes.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from functools import partial
from typing import TYPE_CHECKING

from svcwatch.cli.signals import StopRequested, TerminalWatch, process_shutdown
from svcwatch.model.errors import InputError, SetupError
from svcwatch.session.base import Session
from svcwatch.session.guard import StartStopGuard

if TYPE_CHECKING:
    from svcwatch.session.settings import SessionSettings
    from svcwatch.talk.script import TalkScript


def run_dashboard(
    settings: SessionSettings, *, theme: str | None, captions: bool, script_path: str | None
) -> None:
    """Open the dashboard on the session `settings` ask for (see svcwatch/cli/options.py)."""
    from svcwatch.session.factory import make_session  # backends are heavy: import on use
    from svcwatch.session.settings import LabSettings
    from svcwatch.talk.script import load_script

    # A bad talk script is a one-line error (exit 2) before the lab is built or Textual starts.
    script = load_script(script_path) if script_path else None
    require_known_theme(theme)
    preflight_cluster(settings)
    session = make_session(settings)
    require_terminal()
    keep = isinstance(settings.backend, LabSettings) and settings.backend.keep
    run_session_dashboard(session, theme=theme, keep=keep, captions=captions, script=script)


def preflight_cluster(settings: SessionSettings) -> None:
    """A missing kubeconfig or context is one line before the dashboard opens, as `run` says it
    at once (the session itself only connects once the dashboard has started it)."""
    from svcwatch.session.settings import ClusterSettings

    backend = settings.backend
    if isinstance(backend, ClusterSettings) and not backend.in_cluster:
        from svcwatch.cluster.kubeconfig import resolve

        resolve(backend.kubeconfig, backend.context)


def require_terminal(
    stream_hint: str = "`svcwatch run --plain`", browser_hint: str = "`svcwatch serve`"
) -> None:
    """The dashboard draws on a terminal (or a browser under `svcwatch serve`); without one, say
    so and point at the stream, instead of building a lab nobody can see or quit."""
    if os.environ.get("TEXTUAL_DRIVER"):  # textual-serve's web driver: a browser is the screen
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise SetupError(
            "the dashboard needs a terminal (stdin and stdout are not one): "
            f"for a text stream use {stream_hint}, for a browser {browser_hint}"
        )


def require_known_theme(theme: str | None) -> None:
    """A mistyped --theme is one line and exit 2 before a lab is built, not a toast on a
    dashboard already running in the default theme."""
    if theme is None:
        return
    from textual.theme import BUILTIN_THEMES

    from svcwatch.ui.themes import default_theme_dirs, load_themes

    ours = load_themes(default_theme_dirs()).names
    if theme not in ours and theme not in BUILTIN_THEMES:
        raise InputError(f"--theme: unknown theme {theme!r} (known: {', '.join(ours)})")


def run_session_dashboard(
    session: Session,
    *,
    theme: str | None,
    captions: bool,
    script: TalkScript | None,
    keep: bool = False,
) -> None:
    """Run the dashboard on `session` until quit. A replay runs on its own clock (the
    recording's time, paused when it is).

    SIGTERM, SIGINT and SIGHUP (and a terminal that went away without one) quit as `q` does:
    the session is stopped, the lab torn down, and the exit status is 128+N. A stop at any
    moment of the start waits for it (StartStopGuard), so nothing is left half built.
    """
    from svcwatch.ui.app import SvcwatchApp  # Textual is heavy: import on use

    capabilities = session.capabilities()
    clock = capabilities.replay.now if capabilities.replay is not None else time.time
    guarded = StartStopGuard(session)
    app = SvcwatchApp(
        guarded,
        theme_name=theme,
        keep=keep,
        captions=captions,
        script=script,
        clock=clock,
        # The stream's +0.000s: a replay's recorded start, a recording's own; None: the app's now.
        t0=capabilities.stream_start,
    )
    shutdown = process_shutdown()
    shutdown.during(guarded.stop, lambda _signum: app.request_quit())
    terminal = TerminalWatch(partial(shutdown.request, signal.SIGHUP, hurry=True))
    if not os.environ.get("TEXTUAL_DRIVER"):  # a terminal is the screen (not a browser)
        terminal.start()
    try:
        app.run()
    finally:
        terminal.stop()
        guarded.stop()  # done already after `q`; else (a browser tab closed, a crash) now
    if app.stop_error is not None:
        raise app.stop_error
    farewell = capabilities.exit_report.exit_line() if capabilities.exit_report else None
    if farewell:  # "lab x torn down" / "lab x kept: it was made by `lab up`"
        from svcwatch.cli import say

        say(f"svcwatch: {farewell}")
    if app.start_error is not None:
        raise SetupError(f"the session did not start: {app.start_error}")
    if shutdown.signum is not None:
        raise StopRequested(shutdown.signum)
