"""Input a user can get wrong and output that can fail: one line, the right exit code, no traceback.

NaN and infinity pass every `<`/`>` range check, so each numeric flag must refuse them itself;
a binary file, a FIFO nobody writes to or /dev/zero given as a manifest or a talk script must be
named for what it is (not "no such file", not UnicodeDecodeError, not a hang); and a full output
(`> /dev/full`, `export -o /dev/full`) is a one-line error with exit 1, not "internal error".
These run the real CLI in a subprocess, as a user does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

FULL = Path("/dev/full")


def svcwatch(
    *args: str, cwd: Path, stdout: int | IO[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SVCWATCH_STATE_DIR": str(cwd / "state"), "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "svcwatch", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("svcwatch: error: "), done.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["run", "--interval", "nan"], "--interval"),
        (["run", "--timeout", "inf"], "--timeout"),
        (["run", "--sync-delay", "nan"], "--sync-delay"),
        (["run", "-d", "nan"], "--duration"),
        (["run", "-d", "inf"], "--duration"),
        (["--interval", "-inf"], "--interval"),
        (["cluster", "up", "--timeout", "NaN"], "--timeout"),
        (["replay", "--demo", "--speed", "nan"], "--speed"),
    ],
)
def test_nan_and_infinity_are_refused_by_every_numeric_flag(
    tmp_path: Path, args: list[str], flag: str
) -> None:
    done = svcwatch(*args, cwd=tmp_path)
    assert_one_line_error(done, 2, flag)
    assert done.stdout == ""


def test_an_empty_probe_payload_is_refused(tmp_path: Path) -> None:
    """An empty payload "echoes" from anything that accepts and closes: every probe would pass."""
    done = svcwatch("run", "--payload", "", cwd=tmp_path)
    assert_one_line_error(done, 2, "--payload", "must not be empty")


def test_help_answers_to_dash_h_on_every_command(tmp_path: Path) -> None:
    for command in ([], ["run"], ["lab"], ["lab", "up"], ["replay"], ["export"], ["serve"]):
        done = svcwatch(*command, "-h", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Usage: svcwatch {' '.join(command)}".rstrip())


@pytest.fixture
def odd_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Paths a user may give by mistake, each with the words its error must contain."""
    binary = tmp_path / "slice.yaml"
    binary.write_bytes(b"kind: EndpointSlice\n\xff\xfe\x00\x01binary")
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    return {
        "binary": (binary, "not UTF-8 text (byte 0xff at line 2)"),
        "fifo": (fifo, "is a FIFO (named pipe), not a text file"),
        "device": (Path("/dev/zero"), "/dev/zero is a character device, not a text file"),
    }


@pytest.mark.parametrize("kind", ["binary", "fifo", "device"])
@pytest.mark.parametrize(
    "command",
    [["run", "-f"], ["lab", "apply", "-f"], ["replay", "--demo", "--script"]],
    ids=["run -f", "lab apply -f", "replay --script"],
)
def test_binary_fifo_and_device_inputs_are_one_line_errors_with_exit_2(
    tmp_path: Path, odd_inputs: dict[str, tuple[Path, str]], kind: str, command: list[str]
) -> None:
    path, words = odd_inputs[kind]
    done = svcwatch(*command, str(path), cwd=tmp_path)
    assert_one_line_error(done, 2, words)
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*.yaml"))


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
def test_stream_onto_dev_full_says_so_and_exits_1(tmp_path: Path) -> None:
    with FULL.open("w") as full:
        done = svcwatch("replay", "--demo", "--plain", "--speed", "max", cwd=tmp_path, stdout=full)
    assert_one_line_error(done, 1, "cannot write the stream to standard output")
    assert "No space left on device" in done.stderr


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
def test_export_onto_dev_full_says_so_and_exits_1(tmp_path: Path) -> None:
    done = svcwatch("export", "--demo", "-o", str(FULL), cwd=tmp_path)
    assert_one_line_error(done, 1, "/dev/full", "No space left on device")
    assert "wrote" not in done.stdout


def test_shell_completion_completes_subcommands_as_the_readme_says(tmp_path: Path) -> None:
    env = {**os.environ, "COMP_WORDS": "svcwatch re", "COMP_CWORD": "1"}
    env["_SVCWATCH_COMPLETE"] = "bash_complete"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("svcwatch"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "plain,replay" in done.stdout.splitlines()


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("command", [["replay", "--plain"], ["export"]])
def test_a_fifo_or_device_given_as_a_recording_is_one_line_not_a_hang(
    tmp_path: Path, odd_inputs: dict[str, tuple[Path, str]], kind: str, command: list[str]
) -> None:
    path, _ = odd_inputs[kind]
    done = svcwatch(*command, str(path), cwd=tmp_path)
    assert_one_line_error(done, 2, str(path), "not a recording file")


def test_every_float_flag_of_every_command_uses_the_finite_type() -> None:
    """A new float flag declared with a plain FloatRange would let `nan` through again."""
    import click

    from svcwatch.cli import cli
    from svcwatch.cli.options import FiniteFloat

    def commands(command: click.Command, ctx: click.Context) -> list[click.Command]:
        found = [command]
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                found += commands(sub, click.Context(sub, parent=ctx, info_name=name))
        return found

    root = click.Context(cli, info_name="svcwatch")
    floats = [
        (command.name, param.name)
        for command in commands(cli, root)
        for param in command.params
        if isinstance(param.type, click.types.FloatParamType)
        and not isinstance(param.type, FiniteFloat)
    ]
    assert floats == []
