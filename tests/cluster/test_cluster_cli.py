"""`svcwatch cluster ...` as a user runs it: one stderr line, exit 2, for fixable problems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kmock
import pytest

from svcwatch.cluster.faults import SliceEditor
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import CONTEXT, MockCluster, make_pod

pytestmark = pytest.mark.cluster
cluster = kmock_cluster.cluster  # the per-test kmock server fixture


def svcwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if k != "KUBECONFIG"
    }  # never the user's cluster
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "svcwatch", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def state_env(cluster: MockCluster) -> dict[str, str]:
    return {"SVCWATCH_STATE_DIR": os.environ["SVCWATCH_STATE_DIR"]}


def forbid(handler: Any, method: kmock.method, group: str, plural: str) -> None:
    message = (
        f'{plural}.{group} is forbidden: User "demo" cannot {method.value.lower()} resource '
        f'"{plural}" in API group "{group}" in the namespace "default"'
    )
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Forbidden",
        "code": 403,
        "message": message,
    }
    handler[method, kmock.resource(group, "v1", plural)] << 403 << status


def test_rbac_denial_is_one_line_naming_the_missing_verb(cluster: MockCluster) -> None:
    cluster.on_loop(lambda h: forbid(h, kmock.method.POST, "apps", "deployments"))
    done = svcwatch(
        "cluster", "up", "--kubeconfig", str(cluster.kubeconfig), env=state_env(cluster)
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "svcwatch: error: RBAC denied: cannot create deployments.apps in namespace default as "
        "context 'kmock'"
    )
    assert "manifests/rbac.yaml" in done.stderr


def test_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    done = svcwatch("cluster", "status", "--kubeconfig", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr == (
        f"svcwatch: error: no kubeconfig at {tmp_path / 'nope'}: pass --kubeconfig FILE or set "
        "KUBECONFIG "
        "(k3d: `k3d kubeconfig merge NAME --kubeconfig-switch-context`, kind: `kind export "
        "kubeconfig`)\n"
    )


def test_kubeconfig_env_is_honoured(tmp_path: Path) -> None:
    done = svcwatch("cluster", "status", env={"KUBECONFIG": str(tmp_path / "from-env")})
    assert done.returncode == 2
    assert f"no kubeconfig at {tmp_path / 'from-env'}" in done.stderr


def test_unknown_context_is_one_line_listing_the_known_ones(cluster: MockCluster) -> None:
    done = svcwatch(
        "--context", "k3d-nope", "cluster", "status", "--kubeconfig", str(cluster.kubeconfig)
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"svcwatch: error: context 'k3d-nope' is not in {cluster.kubeconfig}: "
        f"pass --context NAME (known: {CONTEXT})\n"
    )


def test_unreachable_api_server_is_one_line(cluster: MockCluster, tmp_path: Path) -> None:
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(cluster.kubeconfig.read_text().replace(cluster.url, "http://127.0.0.1:9"))
    done = svcwatch("cluster", "status", "--kubeconfig", str(dead))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "cannot reach the API server http://127.0.0.1:9 of context 'kmock'" in done.stderr


def test_up_status_restore_down_from_the_shell(cluster: MockCluster) -> None:
    env = state_env(cluster)
    kubeconfig = str(cluster.kubeconfig)
    make_pod(cluster.api(), "default", "socat-1", {"app": "socat"}, ip="10.42.0.5")

    up = svcwatch("cluster", "up", "--kubeconfig", kubeconfig, env=env)
    assert up.returncode == 0, up.stderr
    assert "ready: Service default/socat -> pod socat-1 (10.42.0.5) on node node-1" in up.stdout

    editor = SliceEditor(
        cluster.api(), CONTEXT, "default", "socat"
    )  # a dashboard that then crashes
    editor.attach()
    editor.apply_scenario("wrong-port")
    status = svcwatch("cluster", "status", "--kubeconfig", kubeconfig, env=env)
    assert (
        "EndpointSlice socat (managed by svcwatch; faults patch this one): 10.42.0.5:12346 ready"
        in status.stdout
    )
    assert "saved original of EndpointSlice default/socat" in status.stdout

    restored = svcwatch("cluster", "restore", "--kubeconfig", kubeconfig, env=env)
    assert restored.returncode == 0, restored.stderr
    assert "restored EndpointSlice default/socat" in restored.stdout
    slice_ = cluster.stored("endpointslices", "default", "socat")
    assert slice_ is not None and slice_["ports"][0]["port"] == 12345
    again = svcwatch("cluster", "restore", "--kubeconfig", kubeconfig, env=env)
    assert again.stdout == "nothing to restore in kmock\n"

    down = svcwatch("cluster", "down", "--kubeconfig", kubeconfig, env=env)
    assert down.returncode == 0, down.stderr
    assert cluster.stored("deployments", "default", "socat") is None
    assert cluster.stored("endpointslices", "default", "socat") is None


def test_in_cluster_outside_a_pod_is_one_line_naming_the_fix() -> None:
    done = svcwatch(
        "run", "--cluster", "--in-cluster", "--duration", "1", env={"KUBERNETES_SERVICE_HOST": ""}
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "--in-cluster: this is not a pod with a ServiceAccount (KUBERNETES_SERVICE_HOST/PORT "
        "unset or no token in /var/run/secrets/kubernetes.io/serviceaccount): leave out "
        "--in-cluster to use a kubeconfig"
    )
    assert "Traceback" not in done.stderr
