"""diff/describe: kopf-style field diffs of bodies, and the lines the slice pane prints."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from svcwatch.watch.diff import describe, diff, format_path

BODIES = Path(__file__).resolve().parents[1] / "data" / "bodies"


def socat() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((BODIES / "endpointslice-socat.json").read_text())
    return loaded


def test_identical_bodies_and_server_bookkeeping_are_no_diff() -> None:
    before, after = socat(), socat()
    after["metadata"]["resourceVersion"] = "99999"
    after["metadata"]["managedFields"] = []
    assert diff(before, after) == ()


def test_a_changed_port_is_one_change_with_its_path() -> None:
    before, after = socat(), socat()
    after["ports"][0]["port"] = 12346
    assert diff(before, after) == (("change", ("ports", 0, "port"), 12345, 12346),)
    assert describe(diff(before, after)) == ("ports[0].port: 12345 -> 12346",)


def test_added_and_removed_endpoints_read_as_address_and_conditions() -> None:
    before, after = socat(), socat()
    second = {"addresses": ["10.42.0.143"], "conditions": {"ready": False, "terminating": True}}
    after["endpoints"].append(second)
    assert describe(diff(before, after)) == ("+ endpoints[1] 10.42.0.143 not-ready terminating",)
    assert describe(diff(after, before)) == ("- endpoints[1] 10.42.0.143 not-ready terminating",)


def test_a_condition_flip_and_a_label_change() -> None:
    before, after = socat(), copy.deepcopy(socat())
    after["endpoints"][0]["conditions"]["ready"] = False
    after["metadata"]["labels"]["kubernetes.io/service-name"] = "socat-v2"
    assert describe(diff(before, after)) == (
        "metadata.labels.kubernetes.io/service-name: socat -> socat-v2",
        "endpoints[0].conditions.ready: true -> false",
    )


def test_whole_objects_and_the_write_stamp() -> None:
    body = socat()
    assert diff(None, body)[0][:3] == ("add", (), None)
    assert describe(diff(None, body)) == ("+ EndpointSlice default/socat",)
    stamped = copy.deepcopy(body)
    stamped["metadata"]["annotations"] = {"svcwatch.dev/written-at": "1736845975.5"}
    # The stamp is a real diff (a write happened) but not a line anyone needs to read.
    assert len(diff(body, stamped)) == 1
    assert describe(diff(body, stamped)) == ()


def test_paths_format_like_kubectl_jsonpath() -> None:
    assert format_path(("endpoints", 0, "addresses", 1)) == "endpoints[0].addresses[1]"
    assert format_path(()) == "."
