"""run_in: run a command inside a network namespace and wait for it (tests and benchmarks).

svcwatch itself starts its long-running commands with `svcwatch.netns.popen_in`; only tests and
benchmarks need the one-shot form, so it lives here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from svcwatch.netns import preexec_into


def run_in(name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run `argv` inside namespace `name` and wait for it."""
    return subprocess.run(list(argv), preexec_fn=preexec_into(name), **kwargs)  # noqa: PLW1509
