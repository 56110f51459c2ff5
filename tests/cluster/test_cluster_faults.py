"""Fault keys on a cluster: the right merge patch, to svcwatch's slice only; exact restore."""

from __future__ import annotations

import json
from typing import Any

import pytest

from svcwatch.cluster.api import ClusterApi
from svcwatch.cluster.faults import SliceEditor
from svcwatch.cluster.objects import list_saved
from svcwatch.model.errors import InputError, SetupError
from tests.cluster import kmock_cluster
from tests.cluster.kmock_cluster import MockCluster

pytestmark = pytest.mark.cluster
cluster = kmock_cluster.cluster  # the per-test kmock server fixture

SLICE_PATH = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
HAPPY_ENDPOINTS = [
    {
        "addresses": ["10.42.0.17"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "socat-7d9f", "uid": "d1f0"},
    }
]


def make_slice(api: ClusterApi, name: str, manager: str) -> dict[str, Any]:
    return kmock_cluster.make_slice(api, name, manager, HAPPY_ENDPOINTS)


def slice_patches(cluster: MockCluster) -> list[tuple[str, str, Any]]:
    return [
        (r.url.path.rsplit("/", 1)[-1], r.headers.get("Content-Type", ""), r.data)
        for r in cluster.requests("PATCH", SLICE_PATH)
    ]


def test_each_fault_sends_its_patch_to_the_owned_slice_only(cluster: MockCluster) -> None:
    kube = cluster.api()
    make_slice(kube, "socat", "svcwatch")
    make_slice(
        kube, "socat-abcde", "endpointslice-controller.k8s.io"
    )  # a foreign slice, same Service
    editor = SliceEditor(kube, "kmock", "default", "socat")
    editor.attach()

    editor.apply_scenario("wrong-port")
    editor.apply_scenario("wrong-ip", taken_addresses=["10.42.0.18"])  # .18 is another pod's
    editor.apply_scenario("mixed", taken_addresses=["10.42.0.18"])
    editor.apply_scenario("happy")

    patches = slice_patches(cluster)
    assert [name for name, _, _ in patches] == ["socat"] * 4
    assert {ctype for _, ctype, _ in patches} == {"application/merge-patch+json"}
    wrong_port, wrong_ip, mixed, happy = (data for _, _, data in patches)
    assert wrong_port["ports"] == [{"name": "", "port": 12346, "protocol": "TCP"}]
    assert wrong_port["endpoints"][0]["addresses"] == ["10.42.0.17"]
    assert [e["addresses"] for e in wrong_ip["endpoints"]] == [["10.42.0.19"]]
    assert wrong_ip["ports"][0]["port"] == 12345
    assert [e["addresses"] for e in mixed["endpoints"]] == [["10.42.0.19"], ["10.42.0.17"]]
    assert [e["addresses"] for e in happy["endpoints"]] == [["10.42.0.17"]]
    assert set(wrong_port) == {"endpoints", "ports"}  # never metadata, never another field
    restored = cluster.stored("endpointslices", "default", "socat-abcde")
    assert restored is not None and restored["endpoints"] == HAPPY_ENDPOINTS


def test_quit_restores_exactly_the_original(cluster: MockCluster) -> None:
    kube = cluster.api()
    original = make_slice(kube, "socat", "svcwatch")
    editor = SliceEditor(kube, "kmock", "default", "socat")
    editor.attach()
    editor.apply_scenario("mixed")
    assert (
        list_saved("kmock")[0].original["endpoints"] == HAPPY_ENDPOINTS
    )  # saved before the change

    assert editor.restore() is True

    assert cluster.stored("endpointslices", "default", "socat") == original
    assert list_saved("kmock") == []


def test_cluster_restore_after_a_crash_brings_back_the_original(cluster: MockCluster) -> None:
    kube = cluster.api()
    original = make_slice(kube, "socat", "svcwatch")
    crashed = SliceEditor(kube, "kmock", "default", "socat")
    crashed.attach()
    crashed.apply_scenario("wrong-ip")
    crashed.apply_scenario("wrong-port")  # the original is saved once, before the first change
    # ... the process dies here; a later run attaches and must start from the true happy path:
    later = SliceEditor(kube, "kmock", "default", "socat")
    assert later.attach().endpoints[0].address == "10.42.0.17"

    from svcwatch.cluster.objects import restore

    (saved,) = list_saved("kmock")
    assert restore(kube, saved) is True
    assert cluster.stored("endpointslices", "default", "socat") == original


def test_a_foreign_slice_is_refused_without_take_over(cluster: MockCluster) -> None:
    kube = cluster.api()
    make_slice(kube, "socat-abcde", "endpointslice-controller.k8s.io")
    editor = SliceEditor(kube, "kmock", "default", "socat-abcde")
    with pytest.raises(SetupError, match="pass --take-over to adopt it"):
        editor.attach()
    assert slice_patches(cluster) == []


def test_take_over_adopts_a_foreign_slice_and_restores_it(cluster: MockCluster) -> None:
    kube = cluster.api()
    original = make_slice(kube, "socat-abcde", "endpointslice-controller.k8s.io")
    editor = SliceEditor(kube, "kmock", "default", "socat-abcde", take_over=True)
    editor.attach()
    editor.apply_scenario("wrong-port")
    assert list_saved("kmock")[0].adopted is True
    editor.restore()
    assert cluster.stored("endpointslices", "default", "socat-abcde") == original


def test_kube_system_is_refused_even_with_take_over(cluster: MockCluster) -> None:
    with pytest.raises(SetupError, match="never touches namespace kube-system"):
        SliceEditor(cluster.api(), "kmock", "kube-system", "kube-dns-xyz", take_over=True)
    assert cluster.requests() == []


def test_an_edited_slice_patches_endpoints_and_ports_and_rejects_another_name(
    cluster: MockCluster,
) -> None:
    kube = cluster.api()
    make_slice(kube, "socat", "svcwatch")
    editor = SliceEditor(kube, "kmock", "default", "socat")
    editor.attach()
    text = open_manifest_text().replace("10.42.0.142", "10.42.0.33")
    editor.apply_text(text)
    assert slice_patches(cluster)[-1][2]["endpoints"][0]["addresses"] == ["10.42.0.33"]
    with pytest.raises(InputError, match="edits default/socat only"):
        editor.apply_text(text.replace("name: socat\n  namespace", "name: other\n  namespace"))
    assert len(slice_patches(cluster)) == 1


def open_manifest_text() -> str:
    from svcwatch.locations import package_data_dir

    text = (package_data_dir("manifests") / "socat.yaml").read_text()
    return text[text.index("apiVersion: discovery.k8s.io/v1") :]


def test_saved_state_is_plain_json_naming_context_and_slice(cluster: MockCluster) -> None:
    kube = cluster.api()
    make_slice(kube, "socat", "svcwatch")
    editor = SliceEditor(kube, "kmock", "default", "socat")
    editor.attach()
    editor.apply_scenario("empty")
    (saved,) = list_saved()
    record = json.loads(saved.path.read_text())
    assert (record["context"], record["namespace"], record["name"]) == ("kmock", "default", "socat")
    assert saved.path.parent.parent.name == "cluster"
