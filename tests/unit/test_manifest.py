"""Manifests parse like the API server reads them, and bad input names file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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


TRAEFIK = """
apiVersion: v1
kind: Service
metadata: {name: traefik, namespace: kube-system}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  clusterIP: 10.43.22.7
  clusterIPs: [10.43.22.7]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: PreferDualStack
  selector: {app.kubernetes.io/name: traefik}
  sessionAffinity: None
  ports:
  - {name: web, port: 80, protocol: TCP, targetPort: web}
  - {name: websecure, port: 443, protocol: TCP, targetPort: websecure}
status:
  loadBalancer:
    ingress:
    - {ip: 172.18.0.2, ipMode: VIP}
    - {ip: 172.18.0.3, ipMode: Proxy}
    - {hostname: lb.example.com}
"""

STICKY = """
apiVersion: v1
kind: Service
metadata: {name: front, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.43.9.9
  externalIPs: [192.168.97.50]
  loadBalancerSourceRanges: [" 203.0.113.5/25", 192.168.97.0/24]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports:
  - {name: http, port: 80, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
  - {name: sctp, port: 9, protocol: SCTP, nodePort: 30009}
"""


def one_service(text: str):  # type: ignore[no-untyped-def]
    (svc,) = parse_documents(text, "svc.yaml")
    return svc


def test_a_load_balancer_without_node_ports_like_k3s_traefik_parses() -> None:
    svc = one_service(TRAEFIK)
    assert (svc.type, svc.allocate_lb_node_ports) == ("LoadBalancer", False)
    assert [p.node_port for p in svc.ports] == [None, None]
    assert svc.load_balancer_ips == ("172.18.0.2",)  # Proxy-mode and hostname ingress: no VIP
    assert svc.external_policy_local and svc.health_check_port is None
    assert one_service(yaml.safe_dump(svc.to_manifest())) == svc


def test_every_field_kube_proxy_reads_parses_and_round_trips() -> None:
    svc = one_service(STICKY)
    assert svc.external_ips == ("192.168.97.50",)
    assert svc.source_ranges == ("203.0.113.0/25", "192.168.97.0/24")  # trimmed, host bits off
    assert (svc.session_affinity, svc.sticky_seconds, svc.health_check_port) == (
        "ClientIP",
        600,
        32000,
    )
    assert [p.protocol for p in svc.ports] == ["TCP", "UDP", "SCTP"]
    assert one_service(yaml.safe_dump(svc.to_manifest())) == svc


def test_external_name_and_headless_services_parse_without_rules_to_write() -> None:
    alias = one_service(
        "kind: Service\nmetadata: {name: db}\n"
        "spec: {type: ExternalName, externalName: db.example.com}\n"
    )
    assert (alias.type, alias.external_name, alias.cluster_ip, alias.ports) == (
        "ExternalName",
        "db.example.com",
        None,
        (),
    )
    headless = one_service("kind: Service\nmetadata: {name: h}\nspec: {clusterIP: None}\n")
    assert headless.cluster_ip is None and headless.ports == ()


@pytest.mark.parametrize(
    ("base", "change", "message"),
    [
        (
            TRAEFIK,
            ("allocateLoadBalancerNodePorts: false", "allocateLoadBalancerNodePorts: true"),
            "svc.yaml: spec.ports[0].nodePort: a LoadBalancer Service needs a nodePort "
            "(svcwatch does not allocate one)",
        ),
        (
            TRAEFIK,
            ("type: LoadBalancer", "type: NodePort"),
            "svc.yaml: spec.allocateLoadBalancerNodePorts: may only be used when type is "
            "LoadBalancer",
        ),
        (
            TRAEFIK,
            ("ipMode: Proxy", "ipMode: Tunnel"),
            "svc.yaml: status.loadBalancer.ingress[1].ipMode: must be VIP or Proxy, not 'Tunnel'",
        ),
        (
            TRAEFIK,
            ("internalTrafficPolicy: Cluster", "internalTrafficPolicy: Nearby"),
            "svc.yaml: spec.internalTrafficPolicy: must be one of Cluster, Local, not 'Nearby'",
        ),
        (
            TRAEFIK,
            ("sessionAffinity: None", "sessionAffinity: Sticky"),
            "svc.yaml: spec.sessionAffinity: must be one of None, ClientIP, not 'Sticky'",
        ),
        (
            TRAEFIK,
            ("{ip: 172.18.0.2, ipMode: VIP}", "{ip: 172.18.0.999}"),
            "svc.yaml: status.loadBalancer.ingress[0].ip: '172.18.0.999' is not an IP address",
        ),
        (
            STICKY,
            ("timeoutSeconds: 600", "timeoutSeconds: 0"),
            "svc.yaml: spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be 1-86400, not 0",
        ),
        (
            STICKY,
            ("sessionAffinity: ClientIP", "sessionAffinity: None"),
            "svc.yaml: spec.sessionAffinityConfig.clientIP.timeoutSeconds: may only be set with "
            "sessionAffinity ClientIP",
        ),
        (
            STICKY,
            ('" 203.0.113.5/25"', "203.0.113.0/33"),
            "svc.yaml: spec.loadBalancerSourceRanges[0]: '203.0.113.0/33' is not a CIDR",
        ),
        (
            STICKY,
            ("externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster"),
            "svc.yaml: spec.healthCheckNodePort: may only be set when type is LoadBalancer and "
            "externalTrafficPolicy is Local",
        ),
        (
            STICKY,
            ("externalIPs: [192.168.97.50]", "externalIPs: [192.168.97.500]"),
            "svc.yaml: spec.externalIPs[0]: '192.168.97.500' is not an IP address",
        ),
        (
            STICKY,
            ("type: LoadBalancer", "type: ClusterIP"),
            "svc.yaml: spec.ports[0].nodePort: may not be used when type is ClusterIP",
        ),
    ],
)
def test_invalid_service_fields_are_one_line_errors(
    base: str, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(InputError) as err:
        parse_documents(base.replace(*change), "svc.yaml")
    assert str(err.value) == message


def test_zone_hints_parse_and_round_trip() -> None:
    text = (SLICE % ("10.42.0.142", "ready: true", "12345")).replace(
        "  conditions: {ready: true}",
        "  conditions: {ready: true}\n  hints: {forZones: [{name: zone-a}]}",
    )
    (s,) = parse_documents(text, "s.yaml")
    assert s.endpoints[0].zone_hints == ("zone-a",)  # type: ignore[union-attr]
    (again,) = parse_documents(dump_slice(s), "again.yaml")  # type: ignore[arg-type]
    assert again == s
    with pytest.raises(InputError) as err:
        parse_documents(text.replace("{name: zone-a}", "{zone: a}"), "s.yaml")
    assert str(err.value) == (
        "s.yaml: endpoints[0].hints.forZones[0]: a zone hint needs a name, got {'zone': 'a'}"
    )
