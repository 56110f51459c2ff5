"""Without the lab's prerequisites every lab entry point says so in one line and builds nothing.

No capabilities: root with CAP_NET_ADMIN/CAP_SYS_ADMIN dropped from the bounding set (setpriv),
which is exactly what root in an unprivileged container sees. No iptables: a private mount
namespace (unshare -m) hides /usr/sbin behind an empty tmpfs, so the host's files are untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
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


def svcwatch(
    argv: list[str], tmp_path: Path, *, prefix: Sequence[str] = (), path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (behind `prefix`) with its own state directory and no terminal."""
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(tmp_path / "state"), "TERM": "dumb"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [*prefix, SVCWATCH, *argv],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.parametrize(
    "args",
    [["run", "-d", "1"], [], ["lab", "up"], ["lab", "scenario", "wrong-ip"]],
    ids=["run", "dashboard", "lab-up", "lab-scenario"],
)
def test_no_capabilities_is_one_line_naming_the_alternatives(
    args: list[str], lab_name: str, tmp_path: Path
) -> None:
    out = svcwatch([*args, "--name", lab_name], tmp_path, prefix=DROP)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "CAP_NET_ADMIN" in lines[0]
    assert "svcwatch --cluster" in lines[0] and "replay --demo" in lines[0]
    assert "Traceback" not in out.stderr + out.stdout
    assert not lab_namespaces(lab_name)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
@pytest.mark.parametrize("args", [["run", "-d", "1"], []], ids=["run", "dashboard"])
def test_missing_iptables_is_one_line_naming_the_package(
    args: list[str], lab_name: str, tmp_path: Path
) -> None:
    assert_missing_tool_is_one_line(
        args, lab_name, tmp_path, 'mount -t tmpfs none /usr/sbin && exec "$@"', "iptables"
    )


def assert_missing_tool_is_one_line(
    args: list[str], lab_name: str, tmp_path: Path, hide: str, package: str
) -> None:
    """Run svcwatch behind `hide` (a shell line in a private mount namespace that hides /usr/sbin
    or part of it): one line naming the Debian package, exit 2, nothing built."""
    # PATH without /usr/sbin: the binaries must be missing, not merely hidden from one lookup.
    prefix = ["unshare", "-m", "sh", "-c", hide, "sh"]
    out = svcwatch([*args, "--name", lab_name], tmp_path, prefix=prefix, path="/usr/bin:/bin")
    assert out.returncode == 2, out
    tool = "iptables-restore" if package == "iptables" else "nft"
    assert out.stderr.strip().splitlines() == [
        f"svcwatch: error: {tool} not found: install the Debian package '{package}' "
        f"(apt-get install {package})"
    ]
    assert not lab_namespaces(lab_name)


@pytest.mark.parametrize("command", [["run", "-d", "1"], []], ids=["run", "dashboard"])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: EndpointSlice\n  bad: [x\n", "line 2: malformed YAML"),
        (None, "-f: no such file or directory"),
    ],
    ids=["malformed-yaml", "missing-file"],
)
def test_bad_manifests_fail_before_the_dashboard_opens(
    command: list[str], content: str | None, message: str, lab_name: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.yaml"
    if content is not None:
        manifest.write_text(content)
    out = svcwatch([*command, "-f", str(manifest), "--name", lab_name], tmp_path)
    assert out.returncode == 2, out
    (line,) = out.stderr.strip().splitlines()
    assert message in line and str(manifest) in line
    assert out.stdout == ""  # nothing drawn, nothing streamed
    assert not lab_namespaces(lab_name)


def test_dashboard_without_a_terminal_says_so_and_builds_nothing(
    lab_name: str, tmp_path: Path
) -> None:
    out = svcwatch(["--name", lab_name], tmp_path)  # stdin is /dev/null, stdout a pipe
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines() == [
        "svcwatch: error: the dashboard needs a terminal (stdin and stdout are not one): "
        "for a text stream use `svcwatch run --plain`, for a browser `svcwatch serve`"
    ]
    assert not lab_namespaces(lab_name)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
@pytest.mark.parametrize(
    "args", [["lab", "up", "--proxy-mode", "nftables"], ["run", "--proxy-mode", "nftables"]]
)
def test_nftables_mode_without_nft_is_one_line_naming_the_package(
    args: list[str], lab_name: str, tmp_path: Path
) -> None:
    # /usr/sbin behind a tmpfs that holds iptables (copied in) but no nft.
    keep_iptables = (
        "d=$(mktemp -d) && for t in iptables iptables-save iptables-restore; do "
        'cp -L /usr/sbin/$t "$d/"; done && mount -t tmpfs none /usr/sbin && '
        'cp "$d"/* /usr/sbin/ && exec "$@"'
    )
    assert_missing_tool_is_one_line(args, lab_name, tmp_path, keep_iptables, "nftables")


def test_proxy_mode_is_for_the_lab_not_a_cluster(lab_name: str, tmp_path: Path) -> None:
    out = svcwatch(["run", "--cluster", "--proxy-mode", "nftables", "-d", "1"], tmp_path)
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines() == [
        "svcwatch: error: --proxy-mode is for the lab; on a cluster svcwatch reads the mode its "
        "kube-proxy runs in from the nodes"
    ]
