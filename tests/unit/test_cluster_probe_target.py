"""Where cluster mode probes: the node's nodePort, or a LoadBalancer's IP when it has none."""

from __future__ import annotations

import pytest

from svcwatch.model.errors import InputError
from svcwatch.model.service import Service, ServicePort
from svcwatch.session.cluster_setup import probe_target

POD = {"spec": {"nodeName": "k3s-node"}, "status": {"hostIP": "172.18.0.2"}}


def test_a_node_port_is_probed_on_the_pods_node() -> None:
    svc = Service(
        "default", "socat", (ServicePort(12345, node_port=31234),), "NodePort", "10.43.0.9"
    )
    assert probe_target(None, svc, POD) == (("172.18.0.2", 31234), "k3s-node")


def test_a_load_balancer_without_node_ports_is_probed_on_its_ingress_ip() -> None:
    traefik = Service(
        "kube-system",
        "traefik",
        (ServicePort(80, name="web"), ServicePort(443, name="websecure")),
        "LoadBalancer",
        "10.43.80.104",
        load_balancer_ips=("172.18.0.3",),
        allocate_lb_node_ports=False,
    )
    assert probe_target(None, traefik, POD) == (("172.18.0.3", 80), "k3s-node")


def test_nothing_to_probe_is_a_one_line_error() -> None:
    plain = Service("default", "db", (ServicePort(5432),), cluster_ip="10.43.0.10")
    with pytest.raises(InputError, match="pass --probe HOST:PORT"):
        probe_target(None, plain, POD)
