"""The lab: a real mini k3s node in Linux network namespaces, programmed exactly like kube-proxy.

Names are re-exported lazily so that `python -m svcwatch.lab.echo` (the pod's process) starts
without importing the lab's builder, netlink or YAML code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from svcwatch.lab.instances import claim_controller as claim_controller
    from svcwatch.lab.instances import controller_of as controller_of
    from svcwatch.lab.instances import release_controller as release_controller
    from svcwatch.lab.node import LabNode as LabNode
    from svcwatch.lab.node import PodInfo as PodInfo
    from svcwatch.lab.privileges import require_lab_privileges as require_lab_privileges
    from svcwatch.lab.topology import LabSpec as LabSpec

_EXPORTS = {
    "LabSpec": "svcwatch.lab.topology",
    "LabNode": "svcwatch.lab.node",
    "PodInfo": "svcwatch.lab.node",
    "require_lab_privileges": "svcwatch.lab.privileges",
    "claim_controller": "svcwatch.lab.instances",
    "release_controller": "svcwatch.lab.instances",
    "controller_of": "svcwatch.lab.instances",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _EXPORTS:
        raise AttributeError(f"module 'svcwatch.lab' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
