"""`svcwatch` with no subcommand: build or attach a session and open the dashboard on it.

The session is made before Textual starts, so setup problems the factory can see up front (not
root, a bad manifest, no kubeconfig) still end as one line and exit 2; problems while starting
show inside the dashboard, and the first of them is repeated on stderr after it closes.
"""

from __future__ import annotations

from typing import Any

from svcwatch.model.errors import SetupError


def run_dashboard(**kwargs: Any) -> None:
    """Open the dashboard with the CLI's flags (see svcwatch/cli/options.py)."""
    from svcwatch.session.factory import make_session  # backends are heavy: import on use
    from svcwatch.ui.app import SvcwatchApp  # Textual is heavy: import on use
    from svcwatch.ui.script import load_script

    theme = kwargs.get("theme")
    captions, script_path = bool(kwargs.pop("captions", False)), kwargs.pop("script", None)
    # A bad talk script is a one-line error (exit 2) before the lab is built or Textual starts.
    script = load_script(script_path) if script_path else None
    session = make_session(**kwargs)
    app = SvcwatchApp(
        session, theme_name=theme, keep=bool(kwargs.get("keep")), captions=captions, script=script
    )
    app.run()
    if not app.stopping:  # closed without `q` (a browser tab under `svcwatch serve`, a signal)
        session.stop()
    if app.start_error is not None:
        raise SetupError(f"the session did not start: {app.start_error}")
