"""Chain names reproduce kube-proxy's hashes: upstream's test vectors and the blog post's chains."""

from __future__ import annotations

import pytest

from svcwatch.kubeproxy.chains import (
    ext_chain,
    fw_chain,
    is_service_chain,
    port_proto_hash,
    sep_chain,
    service_port_name,
    svc_chain,
    svl_chain,
)
from svcwatch.model.service import Service, ServicePort


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        (svc_chain("ns1/svc1:p80", "tcp"), "KUBE-SVC-XPGD46QRK7WJZT7O"),
        (ext_chain("ns2/svc2:p80", "tcp"), "KUBE-EXT-GNZBNJ2PO5MGZ6GT"),
        (fw_chain("ns5/svc5:p80", "tcp"), "KUBE-FW-NUKIZ6OKUXPJNT4C"),
        (sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80"), "KUBE-SEP-SXIVWICOYRO3J4NJ"),
        (svc_chain("ns1/svc1", "tcp"), "KUBE-SVC-AQI2S6QIMU7PVVRP"),
        (sep_chain("ns1/svc1", "tcp", "10.0.1.1:80"), "KUBE-SEP-3JOIVZTXZZRGORX4"),
        (svc_chain("default/kubernetes:https", "tcp"), "KUBE-SVC-NPX46M4PTMTKRN6Y"),
        (svc_chain("default/socat", "tcp"), "KUBE-SVC-6GHM6NOKDRAB634Q"),
        (ext_chain("default/socat", "tcp"), "KUBE-EXT-6GHM6NOKDRAB634Q"),
        (svl_chain("default/socat:http", "tcp"), "KUBE-SVL-4WAC3OQNTN3HK4GU"),
    ],
)
def test_proxier_test_vectors(chain: str, expected: str) -> None:
    assert chain == expected


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("10.42.0.142:12345", "KUBE-SEP-STAYFALK6DPGANUO"),  # the blog post's happy path
        ("10.42.0.143:12345", "KUBE-SEP-L7Q23S57UQHHMQS4"),  # wrong-ip
        ("10.42.0.142:12346", "KUBE-SEP-XVRNL33HWWUQHJC7"),  # wrong-port
    ],
)
def test_seed_endpoint_chains(endpoint: str, expected: str) -> None:
    assert sep_chain("default/socat", "tcp", endpoint) == expected


def test_protocol_is_lower_cased_before_hashing() -> None:
    assert svc_chain("default/socat", "TCP") == svc_chain("default/socat", "tcp")
    assert svc_chain("default/socat", "udp") != svc_chain("default/socat", "tcp")


def test_hash_is_16_base32_characters() -> None:
    digest = port_proto_hash("default/socat", "tcp")
    assert digest == "6GHM6NOKDRAB634Q"
    assert len(digest) == 16 and set(digest) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_service_port_name_appends_only_a_real_port_name() -> None:
    svc = Service("default", "socat", (ServicePort(12345), ServicePort(80, name="http")))
    assert service_port_name(svc, svc.ports[0]) == "default/socat"  # not "default/socat:"
    assert service_port_name(svc, svc.ports[1]) == "default/socat:http"


def test_service_chain_prefixes() -> None:
    assert all(
        is_service_chain(c)
        for c in ("KUBE-SVC-X", "KUBE-SVL-X", "KUBE-EXT-X", "KUBE-FW-X", "KUBE-SEP-X")
    )
    assert not any(
        is_service_chain(c)
        for c in ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-MARK-MASQ", "FLANNEL-FWD")
    )
