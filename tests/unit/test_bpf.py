"""The capture filter has the blog post's shape for every scenario, and compiles to real BPF."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from svcwatch.capture import bpf
from svcwatch.capture.bpf import compile_filter, filter_for, instruction_count
from svcwatch.model.errors import InputError
from svcwatch.model.manifest import collect, parse_documents
from svcwatch.model.scenario import ScenarioContext, apply_scenario
from svcwatch.model.service import Service, ServicePort

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "socat.yaml"
ICMP_CLAUSE = " or (icmp and icmp[icmptype] == icmp-unreach)"

# The blog post's capture-started lines, verbatim.
SEED_HAPPY = (
    "(ip and ((host 10.43.161.224 and port 12345) or ((net 10.42.0.0/24) and port 12345) or "
    "((host 192.168.97.3) and port 31234))) or (arp and (host 10.42.0.142))"
)
SEED_WRONG_PORT = (
    "(ip and ((host 10.43.161.224 and port 12345) or ((net 10.42.0.0/24) and port 12346) or "
    "((host 192.168.97.3) and port 31234))) or (arp and (host 10.42.0.142))"
)
SEED_WRONG_IP = (
    "(ip and ((host 10.43.161.224 and port 12345) or ((net 10.42.0.0/24) and port 12345) or "
    "((host 192.168.97.3) and port 31234))) or (arp and (host 10.42.0.143))"
)
MIXED = (
    "(ip and ((host 10.43.161.224 and port 12345) or ((net 10.42.0.0/24) and port 12345) or "
    "((host 192.168.97.3) and port 31234))) or (arp and (host 10.42.0.143 or host 10.42.0.142))"
)


def seed_text(scenario: str) -> str:
    objs = collect(parse_documents(MANIFESTS.read_text(), "socat.yaml"))
    service = replace(objs.services[0], cluster_ip="10.43.161.224")
    slice_ = apply_scenario(scenario, ScenarioContext(baseline=objs.slices_for(service)[0]))
    return filter_for(service, slice_, node_ip="192.168.97.3", pod_cidr="10.42.0.0/24")


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("happy", SEED_HAPPY),
        ("wrong-port", SEED_WRONG_PORT),
        ("wrong-ip", SEED_WRONG_IP),
        ("mixed", MIXED),
    ],
)
def test_filter_is_the_seeds_text_plus_icmp_errors(scenario: str, expected: str) -> None:
    assert seed_text(scenario) == expected + ICMP_CLAUSE


def test_empty_slice_keeps_service_and_nodeport_clauses_without_arp() -> None:
    text = seed_text("empty")
    assert "(arp and" not in text
    assert "((host 192.168.97.3) and port 31234)" in text


def test_client_ip_narrows_icmp_and_several_ports_are_grouped() -> None:
    objs = collect(parse_documents(MANIFESTS.read_text(), "socat.yaml"))
    service = Service(
        "default",
        "two",
        (ServicePort(80, node_port=30080), ServicePort(443, node_port=30443)),
        type="NodePort",
        cluster_ip=None,
    )
    text = filter_for(
        service,
        objs.slices[0],
        node_ip="192.168.97.3",
        pod_cidr="10.42.0.0/24",
        client_ip="192.168.97.2",
    )
    assert text.startswith(
        "(ip and (((net 10.42.0.0/24) and port 12345) or ((host 192.168.97.3) and "
        "(port 30080 or port 30443))))"
    )
    assert text.endswith("(icmp and icmp[icmptype] == icmp-unreach and host 192.168.97.2)")


def test_compiled_program_is_whole_instructions() -> None:
    program = compile_filter(SEED_HAPPY + ICMP_CLAUSE)
    assert len(program) % 8 == 0 and instruction_count(program) > 10


def test_bad_filter_is_an_input_error() -> None:
    with pytest.raises(InputError, match="invalid capture filter"):
        compile_filter("host and and")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
def test_tcpdump_fallback_compiles_the_same_instructions() -> None:
    text = SEED_HAPPY + ICMP_CLAUSE
    via_libpcap = compile_filter(text)
    via_tcpdump = bpf._compile_with_tcpdump(text, bpf.DLT_EN10MB)
    # Only the snapshot length returned by the accept instruction differs between the two.
    assert instruction_count(via_tcpdump) == instruction_count(via_libpcap)
    assert via_tcpdump[:-16] == via_libpcap[:-16]
