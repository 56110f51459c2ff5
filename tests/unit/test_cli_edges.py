"""Hints and edges a user hits from a shell (issue 11 item 6): each is one line or the
conventional behaviour, checked the way a user meets it, through the real CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SVCWATCH = [sys.executable, "-m", "svcwatch"]
WAIT = 60


def svcwatch(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("capture_output", True)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*SVCWATCH, *args], text=True, timeout=WAIT, **kwargs
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("svcwatch: error: "), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    for word in words:
        assert word in lines[0]


def test_replay_demo_without_a_terminal_suggests_the_replay_stream() -> None:
    done = svcwatch("replay", "--demo")
    one_line_error(done, 2, "svcwatch replay --plain --demo", "svcwatch serve --demo")
    assert "run --plain" not in done.stderr


def test_serve_replay_of_a_file_that_is_not_a_recording_fails_before_serving(
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "garbage.svcrec"
    garbage.write_text("garbage\n")
    done = svcwatch("serve", "--replay", str(garbage), "--port", "1")
    one_line_error(done, 2, "not a svcwatch recording")
    assert "Serving" not in done.stdout


def test_serve_on_a_busy_port_fails_before_the_banner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = svcwatch("serve", "--demo", "--port", str(port))
    one_line_error(done, 2, f"cannot serve on 127.0.0.1:{port}", "in use")
    assert "Serving" not in done.stdout


def test_export_to_dash_writes_the_pcapng_to_stdout(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SVCWATCH, "export", "--demo", "-o", "-"], capture_output=True, timeout=WAIT, cwd=tmp_path
    )
    assert done.returncode == 0 and done.stdout[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng's SHB
    assert b"to standard output" in done.stderr and not (tmp_path / "-").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [("export", "--demo", "-o", "/dev/full"), ("replay", "--demo", "--plain", "--speed", "max")],
    ids=["export-o-dev-full", "stdout-dev-full"],
)
def test_a_full_device_is_one_line(args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        done = svcwatch(*args, stdout=full, capture_output=False, stderr=subprocess.PIPE)
    one_line_error(done, 1, "No space left on device")


def test_a_binary_talk_script_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "talk.yaml"
    script.write_bytes(bytes(range(256)) * 4)
    one_line_error(svcwatch("replay", "--demo", "--script", str(script)), 2, "talk.yaml")


@pytest.mark.parametrize(
    "args", [("replay", "--demo", "--plain", "--speed", "max"), ("export", "--demo", "-o", "-")]
)
def test_a_closed_pipe_ends_quietly_with_status_0(args: tuple[str, ...]) -> None:
    shell = " ".join([*SVCWATCH, *args]) + " | head -c 200 >/dev/null; echo ${PIPESTATUS[0]}"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=WAIT)
    assert done.stdout.strip() == "0" and done.stderr == ""


@pytest.mark.parametrize("command", [("replay", "--demo", "--speed", "max"), ("run",)])
def test_plain_and_json_together_are_rejected(command: tuple[str, ...]) -> None:
    one_line_error(svcwatch(*command, "--plain", "--json"), 2, "mutually exclusive")


def test_a_missing_kubeconfig_fails_before_the_dashboard_starts() -> None:
    done = svcwatch("--cluster", "--kubeconfig", "/nonexistent")
    one_line_error(done, 2, "no kubeconfig at /nonexistent")


@pytest.mark.parametrize(
    "command", [["replay", "--demo"], ["--name", "qatheme"], ["serve", "--demo", "--port", "18479"]]
)
def test_a_mistyped_theme_is_one_line_before_anything_starts(
    command: list[str], tmp_path: Path
) -> None:
    """`--theme projecter` names the themes there are, instead of a toast on a dashboard (and,
    for the lab, before a lab is built)."""
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(tmp_path), "SVCWATCH_CONFIG_DIR": str(tmp_path)}
    done = svcwatch(*command, "--theme", "projecter", env=env)
    one_line_error(done, 2, "unknown theme 'projecter'", "svcwatch-projector")
    assert not (tmp_path / "labs" / "qatheme").exists()


@pytest.mark.parametrize("command", ["down", "status", "scenario", "apply", "exec", "list"])
def test_lab_help_says_what_name_means_there(command: str) -> None:
    """`lab down -h` must not say --name picks a lab "to build or reuse"; it names the env var."""
    done = svcwatch("lab", command, "-h")
    assert done.returncode == 0
    assert "build" not in done.stdout.split("Options:")[1]
    if command != "list":
        assert "SVCWATCH_LAB" in done.stdout
