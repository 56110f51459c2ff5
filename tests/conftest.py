"""Shared test setup: root-only lab tests, opt-in e2e, warnings as errors.

Warnings are errors through `filterwarnings = ["error", ...]` in pyproject.toml's pytest section,
where each narrow ignore of a third-party warning says why svcwatch cannot fix it.
"""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--with-e2e",
        action="store_true",
        help="run tests against the real cluster in the kubeconfig",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_root = os.geteuid() == 0
    has_iptables = shutil.which("iptables-restore") is not None
    skip_lab = pytest.mark.skip(reason="lab tests need root and iptables (run as root: make test)")
    skip_e2e = pytest.mark.skip(reason="needs --with-e2e and a real cluster")
    for item in items:
        if "lab" in item.keywords and not (is_root and has_iptables):
            item.add_marker(skip_lab)
        if "e2e" in item.keywords and not config.getoption("--with-e2e"):
            item.add_marker(skip_e2e)
