"""Manifests parse like the API server reads them, and bad input names file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from svcwatch.model.errors import InputError
from svcwatch.model.manifest import collect, dump_slice, parse_documents

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "socat.yaml"

SLICE = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: socat
  labels: {kubernetes.io/service-name: socat}
addressType: IPv4
endpoints:
- addresses: [%s]
  conditions: {%s}
ports:
- name: ""
  port: %s
  protocol: TCP
"""


def test_seed_manifests_parse_into_the_seed_objects() -> None:
    objs = collect(parse_documents(MANIFESTS.read_text(), "socat.yaml"))
    (svc,) = objs.services
    assert svc.key == "default/socat" and svc.type == "NodePort" and svc.selector == {}
    assert (svc.ports[0].port, svc.ports[0].node_port, svc.ports[0].name) == (12345, 31234, "")
    (slice_,) = objs.slices_for(svc)
    assert slice_.endpoints[0].address == "10.42.0.142"
    assert slice_.ports[0].port == 12345
    (dep,) = objs.deployments
    assert dep.args == ("TCP-LISTEN:12345,fork,reuseaddr", "EXEC:/bin/cat")


def test_conditions_default_like_kubernetes() -> None:
    (s,) = parse_documents(SLICE % ("10.42.0.142", "", "12345"), "s.yaml")
    c = s.endpoints[0].conditions  # type: ignore[union-attr]
    assert (c.is_ready, c.is_serving, c.is_terminating) == (True, True, False)
    (s,) = parse_documents(
        SLICE % ("10.42.0.142", "ready: false, terminating: true", "1"), "s.yaml"
    )
    c = s.endpoints[0].conditions  # type: ignore[union-attr]
    assert (c.is_ready, c.is_serving, c.is_terminating) == (False, True, True)


def test_slice_round_trips_through_yaml() -> None:
    (s,) = parse_documents(SLICE % ("10.42.0.142", "ready: true", "12345"), "s.yaml")
    (again,) = parse_documents(dump_slice(s), "again.yaml")  # type: ignore[arg-type]
    assert again == s


@pytest.mark.parametrize(
    ("address", "conditions", "port", "message"),
    [
        (
            "10.42.0.999",
            "",
            "12345",
            "s.yaml: endpoints[0].addresses[0]: '10.42.0.999' is not an IPv4 address",
        ),
        ("10.42.0.142", "", "0", "s.yaml: ports[0].port: port must be 1-65535, not 0"),
        ("10.42.0.142", "", "70000", "s.yaml: ports[0].port: port must be 1-65535, not 70000"),
        (
            "10.42.0.142",
            "ready: maybe",
            "1",
            "s.yaml: endpoints[0].conditions.ready: must be true or false, not 'maybe'",
        ),
    ],
)
def test_bad_values_name_file_field_and_value(
    address: str, conditions: str, port: str, message: str
) -> None:
    with pytest.raises(InputError) as err:
        parse_documents(SLICE % (address, conditions, port), "s.yaml")
    assert str(err.value) == message


def test_malformed_yaml_is_one_line_with_the_line_number() -> None:
    with pytest.raises(InputError) as err:
        parse_documents("kind: EndpointSlice\n  bad: [unclosed\n", "broken.yaml")
    assert str(err.value).startswith("broken.yaml: line ")
    assert "\n" not in str(err.value)


def test_slice_without_service_name_label_is_refused() -> None:
    text = (SLICE % ("10.42.0.142", "", "1")).replace(
        "labels: {kubernetes.io/service-name: socat}", "labels: {}"
    )
    with pytest.raises(InputError, match="kubernetes.io/service-name"):
        parse_documents(text, "s.yaml")
