"""The layering the architecture promises, checked on the real source and a real interpreter.

`model` and `kubeproxy` stay pure (stdlib + yaml), backends never reach into the UI or into each
other, and `svcwatch --help` never pays for scapy, kopf, kubernetes, pyroute2 or Textual.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "svcwatch"
HEAVY = {"scapy", "kopf", "kubernetes", "pyroute2", "textual", "kmock", "watchfiles"}
BACKENDS = ["lab", "capture", "probe", "watch", "record", "cluster"]


def imports_of(path: Path) -> set[str]:
    """Absolute module names a file imports at module level or in functions."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def files_of(layer: str) -> list[Path]:
    return sorted((PKG / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", ["model", "kubeproxy"])
def test_pure_core_imports_no_io_libraries(layer: str) -> None:
    for path in files_of(layer):
        bad = {n for n in imports_of(path) if n.split(".")[0] in HEAVY}
        bad |= {
            n
            for n in imports_of(path)
            if n.startswith("svcwatch.") and n.split(".")[1] not in ("model", "kubeproxy")
        }
        assert not bad, f"{path.relative_to(PKG.parent)} imports {sorted(bad)}"


@pytest.mark.parametrize("layer", BACKENDS)
def test_backends_never_import_the_layers_above_or_each_other(layer: str) -> None:
    for path in files_of(layer):
        names = imports_of(path)
        above = ("svcwatch.ui", "svcwatch.session", "svcwatch.cli")  # the layers that use backends
        bad = {n for n in names if n.split(".")[0] == "textual" or n.startswith(above)}
        bad |= {
            n
            for n in names
            if n.startswith("svcwatch.") and n.split(".")[1] in set(BACKENDS) - {layer}
        }
        assert not bad, f"{path.relative_to(PKG.parent)} imports {sorted(bad)}"


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from svcwatch.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
