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
import threading
from types import FrameType
from typing import Any

from svcwatch.model.errors import SetupError
from svcwatch.session.base import Session


def run_dashboard(**kwargs: Any) -> None:
    """Open the dashboard with the CLI's flags (see svcwatch/cli/options.py)."""
    from svcwatch.session.factory import make_session  # backends are heavy: import on use
    from svcwatch.talk.script import load_script

    theme = kwargs.get("theme")
    captions, script_path = bool(kwargs.pop("captions", False)), kwargs.pop("script", None)
    # A bad talk script is a one-line error (exit 2) before the lab is built or Textual starts.
    script = load_script(script_path) if script_path else None
    session = make_session(**kwargs)
    require_terminal()
    run_session_dashboard(
        session, theme=theme, keep=bool(kwargs.get("keep")), captions=captions, script=script
    )


def require_terminal() -> None:
    """The dashboard draws on a terminal (or a browser under `svcwatch serve`); without one, say
    so and point at the stream, instead of building a lab nobody can see or quit."""
    if os.environ.get("TEXTUAL_DRIVER"):  # textual-serve's web driver: a browser is the screen
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise SetupError(
            "the dashboard needs a terminal (stdin and stdout are not one): "
            "for a text stream use `svcwatch run --plain`, for a browser `svcwatch serve`"
        )


def run_session_dashboard(session: Session, **opts: Any) -> None:
    """Run the dashboard on `session` until quit; `opts` are SvcwatchApp's (theme, keep,
    captions, script). A replay runs on its own clock (the recording's time, paused when it is).
    """
    from svcwatch.ui.app import SvcwatchApp  # Textual is heavy: import on use

    theme = opts.pop("theme", None)
    capabilities = session.capabilities()
    if capabilities.replay is not None:
        opts.setdefault("clock", capabilities.replay.now)
    # The stream's +0.000s: a replay's recorded start, a recording's own; None: the app's now.
    app = SvcwatchApp(session, theme_name=theme, t0=capabilities.stream_start, **opts)
    quit_on_signals(app)
    app.run()
    if not app.stopping:  # closed without `q` (a browser tab under `svcwatch serve`, a signal)
        session.stop()
    farewell = capabilities.exit_report.exit_line() if capabilities.exit_report else None
    if farewell:  # "lab x torn down" / "lab x kept: it was made by `lab up`"
        print(f"svcwatch: {farewell}", file=sys.stderr)
    if app.start_error is not None:
        raise SetupError(f"the session did not start: {app.start_error}")


def quit_on_signals(app: Any) -> None:
    """SIGTERM (kill, systemd, `timeout`) and SIGHUP (the terminal went away) end the dashboard
    like `q`, so the session is stopped and the lab torn down instead of being left behind.

    The handler runs on the main thread, inside Textual's event loop, where `call_from_thread`
    refuses to run; a short-lived thread hands the exit to the loop the thread-safe way.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=app.call_from_thread, args=(app.exit,), daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
