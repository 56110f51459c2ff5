"""Without CAP_NET_ADMIN/CAP_SYS_ADMIN every lab entry point says so in one line and builds nothing.

Run as root with those capabilities dropped from the bounding set (setpriv), which is exactly what
root inside an unprivileged container sees: uid 0, no right to make namespaces or links.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab.conftest import SVCWATCH, lab_namespaces

pytestmark = pytest.mark.lab

DROP = [
    "setpriv",
    "--bounding-set",
    "-net_admin,-sys_admin",
    "--inh-caps",
    "-net_admin,-sys_admin",
    "--",
]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.parametrize(
    "args",
    [["run", "-d", "1"], [], ["lab", "up"], ["lab", "scenario", "wrong-ip"]],
    ids=["run", "dashboard", "lab-up", "lab-scenario"],
)
def test_no_capabilities_is_one_line_naming_the_alternatives(
    args: list[str], lab_name: str, tmp_path: Path
) -> None:
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(tmp_path / "state"), "TERM": "dumb"}
    out = subprocess.run(
        [*DROP, SVCWATCH, *args, "--name", lab_name],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "CAP_NET_ADMIN" in lines[0]
    assert "svcwatch --cluster" in lines[0] and "replay --demo" in lines[0]
    assert "Traceback" not in out.stderr + out.stdout
    assert not lab_namespaces(lab_name)
