"""Can this process build a lab? Linux, and root or CAP_NET_ADMIN + CAP_SYS_ADMIN.

Namespaces are mounted under /run/netns (CAP_SYS_ADMIN) and links and rules are made over netlink
(CAP_NET_ADMIN). When either is missing the user gets one line naming the fix and the two ways to
use svcwatch without root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from svcwatch.model.errors import SetupError

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
ALTERNATIVES = "or use a real cluster (svcwatch --cluster) or a recording (svcwatch replay --demo)"


def effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def require_lab_privileges() -> None:
    """SetupError unless the lab can be built here.

    Capabilities are checked even for root: root in an unprivileged container (or under a dropped
    bounding set) has uid 0 but no CAP_NET_ADMIN, and would otherwise fail half-way through a build.
    """
    if not sys.platform.startswith("linux"):
        raise SetupError(
            f"the lab needs Linux network namespaces (this is {sys.platform}): {ALTERNATIVES}"
        )
    caps = effective_caps()
    missing = [
        name
        for name, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
        if not (caps >> bit) & 1
    ]
    if not missing:
        return
    if os.geteuid() == 0:
        raise SetupError(
            f"the lab needs {' and '.join(missing)}, which this root process lacks (an "
            f"unprivileged container? run it with --privileged or --cap-add NET_ADMIN,SYS_ADMIN), "
            f"{ALTERNATIVES}"
        )
    raise SetupError(
        f"the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run it with sudo, {ALTERNATIVES}"
    )
