"""Opt-in: the blog post's four scenarios on whatever cluster the current kubeconfig points at.

Run with `pytest --with-e2e -m e2e tests/e2e` after
`k3d cluster create demo -p "31234:31234@server:0"`
(or kind with extraPortMappings for 31234). Skipped without --with-e2e, and skipped when no
kubeconfig/cluster answers. Set SVCWATCH_E2E_PROBE=HOST:PORT when the NodePort is mapped elsewhere.
It runs `cluster up`, a ClusterSession per scenario, checks the probes, then `cluster down`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from svcwatch.model.errors import SetupError
from svcwatch.model.events import ProbeEvent
from tests.helpers.sinks import CollectingSink

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

PROBE = os.environ.get("SVCWATCH_E2E_PROBE", "127.0.0.1:31234")
NAMESPACE = os.environ.get("SVCWATCH_E2E_NAMESPACE", "default")


@pytest.fixture(scope="module")
def demo() -> Iterator[None]:
    from svcwatch.cluster.api import connect
    from svcwatch.cluster.demo import demo_documents, down, up

    try:
        target, api = connect(None, None)
        api.list("Service", NAMESPACE)
    except SetupError as exc:
        pytest.skip(f"no cluster: {exc}")
    docs = demo_documents(None, NAMESPACE)
    up(api, docs, progress=print, timeout=300)
    try:
        yield
    finally:
        down(api, docs, target.context, progress=print)


def probes_during(scenario: str, seconds: float = 6.0) -> list[ProbeEvent]:
    from svcwatch.session.cluster import ClusterSession
    from svcwatch.session.settings import ClusterSettings, ProbeFlags

    probes = ProbeFlags(probe_target=PROBE, interval=0.5, timeout=1.5)
    session = ClusterSession(ClusterSettings(namespace=NAMESPACE, probes=probes, scenario=scenario))
    sink = CollectingSink()
    session.start(sink)
    try:
        time.sleep(2.0)  # kube-proxy's minSyncPeriod: let the rules follow the slice
        settled = len(sink.snapshot())
        time.sleep(seconds)
        return [e for e in sink.snapshot()[settled:] if isinstance(e, ProbeEvent)]
    finally:
        session.stop()


def test_happy_path_echoes(demo: None) -> None:
    probes = probes_during("happy")
    assert probes and all(p.ok for p in probes)


def test_wrong_port_is_refused(demo: None) -> None:
    probes = probes_during("wrong-port")
    assert probes and all(not p.ok and p.errno == "ECONNREFUSED" for p in probes)


def test_wrong_ip_times_out_or_is_unreachable(demo: None) -> None:
    probes = probes_during("wrong-ip")
    assert probes and all(not p.ok for p in probes)
    assert {p.errno for p in probes} <= {"ETIMEDOUT", "EHOSTUNREACH", None}


def test_mixed_fails_sometimes(demo: None) -> None:
    probes = probes_during("mixed", seconds=12.0)
    assert any(p.ok for p in probes) and any(not p.ok for p in probes)
