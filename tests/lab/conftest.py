"""Lab test fixtures: a unique lab name, a private state directory, a lab torn down whatever
happens, and a snapshot of the host's network configuration to prove the lab never touched it."""

from __future__ import annotations

import gc
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcwatch import netns
from svcwatch.lab import LabNode, LabSpec
from svcwatch.lab.sources import load_manifests
from svcwatch.model.manifest import ManifestSet

# The shared `svcwatch run --json` assertions report their operands like a test's own asserts.
pytest.register_assert_rewrite("tests.lab.stream_helpers")

# The console script of the interpreter running the tests (the project venv, wherever it is).
SVCWATCH = str(Path(sys.executable).with_name("svcwatch"))
HOST_COMMANDS = (
    ["ip", "-o", "link", "show"],
    ["ip", "-o", "addr", "show"],
    ["ip", "route", "show", "table", "all"],
    ["ip", "-6", "route", "show", "table", "all"],
    ["ip", "rule", "show"],
    ["iptables-save"],
    ["ip6tables-save"],
    ["nft", "list", "ruleset"],
    ["sysctl", "net.ipv4.ip_forward"],
)


@pytest.fixture
def lab_name() -> str:
    return "t" + secrets.token_hex(3)[:5]


@pytest.fixture
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "state"
    monkeypatch.setenv("SVCWATCH_STATE_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def manifests() -> ManifestSet:
    return load_manifests()


@pytest.fixture
def spec(lab_name: str, manifests: ManifestSet) -> LabSpec:
    return LabSpec.from_manifests(manifests, lab_name)


@pytest.fixture
def lab(spec: LabSpec, manifests: ManifestSet, state_root: Path) -> Iterator[LabNode]:
    try:
        yield LabNode.up(spec, manifests, state_root)
    finally:
        LabNode.down(spec.name, state_root)
        assert not lab_namespaces(spec.name), "lab namespaces left behind"


def lab_namespaces(name: str) -> list[str]:
    return [n for n in netns.list_names() if n.startswith(f"svcwatch-{name}-")]


def lab_processes(name: str) -> list[int]:
    """Echo processes of lab `name` still running (by their command-line tag)."""
    found = []
    for pid in (p for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            cmdline = (pid / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"svcwatch.lab.echo" in cmdline and name.encode() in cmdline:
            found.append(int(pid.name))
    return found


def host_network() -> dict[str, str]:
    """The host namespace's links, addresses, routes, rules and firewall rulesets, as text."""
    out = {}
    for argv in HOST_COMMANDS:
        if shutil.which(argv[0]) is None:  # e.g. nft without the nftables package
            continue
        proc = subprocess.run(argv, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
        out[" ".join(argv)] = "\n".join(lines)
    return out


# Lab tests may leave a ResourceWarning that is not yet traced, so here (and only here) they are
# shown, not raised. (The lab's echo pods were the many: their Popen handles are now held until
# the echo ends, svcwatch/lab/pods.py; a full run shows at most one "subprocess N is still
# running", not traced to its test yet.) Every other warning is still an error here.
_LAB_DIR = Path(__file__).resolve().parent
_KNOWN_LEAKS = (
    pytest.mark.filterwarnings("default::ResourceWarning"),
    pytest.mark.filterwarnings("default::pytest.PytestUnraisableExceptionWarning"),
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _LAB_DIR in item.path.parents:
            for mark in _KNOWN_LEAKS:
                item.add_marker(mark)


@pytest.fixture(autouse=True)
def _leaks_surface_here() -> Iterator[None]:
    """Collect garbage after each lab test, so its leaks are reported by it (shown, see above),
    not raised later by whichever test the garbage collector happens to run in."""
    yield
    gc.collect()
