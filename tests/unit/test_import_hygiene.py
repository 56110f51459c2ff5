"""What the import-linter contracts (pyproject.toml, `lint-imports`) cannot say, and that they hold.

The layering itself (cli > ui > session > backends > explain/talk > platform > kubeproxy > model,
backends independent, only named modules importing kubernetes, kopf, scapy, pyroute2, Textual) is
written as import-linter contracts; docs/architecture.md says why. What a static import graph
cannot see is what a command loads when it runs: `svcwatch --help` must not pay for scapy, kopf,
kubernetes, pyroute2 or Textual, which every subcommand module defers to the function using them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"scapy", "kopf", "kubernetes", "pyroute2", "textual", "kmock", "watchfiles"}


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from svcwatch.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_subcommand_help_imports_no_heavy_library() -> None:
    """`svcwatch run --help` and friends load their module, which must defer the heavy ones."""
    code = (
        "import sys\n"
        "from svcwatch.cli import main\n"
        "for cmd in ('run', 'replay', 'lab', 'cluster', 'serve', 'export'):\n"
        "    try:\n        main([cmd, '--help'])\n    except SystemExit:\n        pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
