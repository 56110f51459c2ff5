"""ObjectTracker: replays are no events, changed replays are MODIFIED, deletions carry the body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from svcwatch.model.errors import InputError
from svcwatch.watch.convert import service_from_body, slice_from_body
from svcwatch.watch.events import ObjectTracker

BODIES = Path(__file__).resolve().parents[1] / "data" / "bodies"


def body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((BODIES / f"{name}.json").read_text())
    return loaded


def test_first_sight_is_added_and_an_identical_replay_is_nothing() -> None:
    tracker = ObjectTracker()
    added = tracker.observe("EndpointSlice", body("endpointslice-socat"), seen_at=10.0)
    assert added is not None and added.type == "ADDED" and added.old is None
    assert added.key == "default/socat" and added.resource_version == "48213"
    assert tracker.observe("EndpointSlice", body("endpointslice-socat"), seen_at=11.0) is None


def test_a_changed_replay_is_modified_with_the_old_body() -> None:
    tracker = ObjectTracker()
    tracker.observe("EndpointSlice", body("endpointslice-socat"), seen_at=10.0)
    changed = body("endpointslice-socat")
    changed["endpoints"] = []
    event = tracker.observe("EndpointSlice", changed, seen_at=12.5)
    assert event is not None and event.type == "MODIFIED" and event.seen_at == 12.5
    assert event.old is not None and len(event.old["endpoints"]) == 1
    assert event.describe() == ("- endpoints[0] 10.42.0.142 ready",)


def test_events_do_not_share_state_with_the_caller() -> None:
    tracker = ObjectTracker()
    raw = body("endpointslice-socat")
    event = tracker.observe("EndpointSlice", raw, seen_at=1.0)
    raw["ports"][0]["port"] = 1
    assert event is not None and event.body["ports"][0]["port"] == 12345
    assert tracker.observe("EndpointSlice", raw, seen_at=2.0) is not None


def test_deletion_of_a_known_object_and_of_an_unknown_one() -> None:
    tracker = ObjectTracker()
    tracker.observe("Service", body("service-socat"), seen_at=1.0)
    gone = tracker.forget("Service", {"metadata": {"name": "socat", "namespace": "default"}}, 2.0)
    assert gone is not None and gone.type == "DELETED" and gone.new is None
    assert gone.body["spec"]["clusterIP"] == "10.43.125.178"
    assert tracker.forget("Service", body("service-socat"), 3.0) is None
    assert tracker.current("Service") == []


def test_same_name_different_kinds_are_different_objects() -> None:
    tracker = ObjectTracker()
    assert tracker.observe("Service", body("service-socat"), 1.0) is not None
    assert tracker.observe("EndpointSlice", body("endpointslice-socat"), 1.0) is not None


def test_recorded_bodies_convert_to_the_model() -> None:
    slice_ = slice_from_body(body("endpointslice-socat"))
    assert slice_.service_name == "socat" and slice_.resource_version == "48213"
    assert slice_.endpoints[0].address == "10.42.0.142"
    assert slice_.endpoints[0].node_name == "k3s-node"
    service = service_from_body(body("service-socat"))
    assert service.key == "default/socat" and service.cluster_ip == "10.43.125.178"
    assert service.ports[0].node_port == 31234


def test_an_invalid_body_names_the_object_and_the_field() -> None:
    with pytest.raises(InputError) as caught:
        slice_from_body(body("endpointslice-socat-broken"))
    message = str(caught.value)
    assert message.startswith("api:EndpointSlice default/socat: endpoints[0].addresses[0]:")
    assert "10.42.0.300" in message


def test_k3s_traefik_load_balancer_converts_with_and_without_node_ports() -> None:
    traefik = service_from_body(body("service-traefik"))
    assert (traefik.type, traefik.load_balancer_ips) == ("LoadBalancer", ("172.18.0.2",))
    assert [p.node_port for p in traefik.ports] == [30476, 31443]
    raw = body("service-traefik")
    raw["spec"]["allocateLoadBalancerNodePorts"] = False
    for port in raw["spec"]["ports"]:
        del port["nodePort"]
    bare = service_from_body(raw)
    assert [p.node_port for p in bare.ports] == [None, None] and not bare.allocate_lb_node_ports
