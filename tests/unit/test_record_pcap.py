"""Exported pcapng opens in tshark with the real interface names, directions and RSTs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from svcwatch.model.events import Notice, PacketEvent
from svcwatch.record.pcap import PcapngSink, write_pcapng
from tests.helpers.tshark import tshark
from tests.unit.record_samples import T0, packet, scripted_stream, wrong_port_exchange

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="needs tshark (Debian package tshark)"
)


def test_each_interface_gets_its_name_and_every_packet_is_listed(tmp_path: Path) -> None:
    events = scripted_stream()
    path = tmp_path / "out.pcapng"
    packets = [e for e in events if isinstance(e, PacketEvent)]
    assert write_pcapng(path, events) == len(packets) == 12
    rows = tshark(
        path,
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
        "-e",
        "tcp.flags.reset",
        "-e",
        "tcp.dstport",
    )
    assert [row[0] for row in rows] == [p.iface for p in packets]
    assert [row[1] == "1" for row in rows] == ["RST" in p.flags for p in packets]
    assert [int(row[2]) for row in rows] == [p.dport for p in packets]


def test_the_rsts_of_a_wrong_port_capture_are_found_by_a_display_filter(tmp_path: Path) -> None:
    path = tmp_path / "wrong-port.pcapng"
    write_pcapng(path, wrong_port_exchange(T0) + wrong_port_exchange(T0 + 1, sport=40001))
    rows = tshark(
        path,
        "-Y",
        "tcp.flags.reset==1",
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
    )
    assert (
        rows
        == [
            ["veth1", "10.42.0.142", "12346"],
            ["cni0", "10.42.0.142", "12346"],
            ["eth0", "192.168.97.3", "31234"],
        ]
        * 2
    )


def test_directions_and_timestamps_survive(tmp_path: Path) -> None:
    path = tmp_path / "dir.pcapng"
    events = wrong_port_exchange(T0 + 0.123456)
    write_pcapng(path, events)
    rows = tshark(
        path,
        "-T",
        "fields",
        "-e",
        "frame.packet_flags_direction",
        "-e",
        "frame.packet_flags_reception_type",
        "-e",
        "frame.time_epoch",
    )
    want_direction = {
        "in": ("0x00000001", "0"),
        "out": ("0x00000002", "0"),
        "other": ("0x00000001", "4"),
    }  # OTHERHOST: promiscuous
    packets = [e for e in events if isinstance(e, PacketEvent)]
    assert [tuple(row[:2]) for row in rows] == [want_direction[p.direction] for p in packets]
    assert [round(float(row[2]), 6) for row in rows] == [round(p.ts, 6) for p in packets]


def test_cooked_sll2_frames_from_a_cluster_node_get_their_own_interface(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcapng"
    sink = PcapngSink(path)
    sink.emit(packet(T0, "eth0", "in", "10.0.0.5", "10.0.0.6", 40000, 31234, "S"))
    sink.emit_many(
        [packet(T0 + 1, "eth0", "in", "10.0.0.5", "10.0.0.6", 40000, 31234, "S", sll2=True)]
    )
    sink.emit(Notice(ts=T0 + 2, kind="info", message="not a packet"))
    sink.emit(
        PacketEvent(ts=T0 + 3, kind="tcp-packet", iface="eth0", direction="in", src="a", dst="b")
    )  # no raw
    sink.close()
    assert (sink.packets, sink.skipped) == (2, 1)
    rows = tshark(
        path,
        "-T",
        "fields",
        "-e",
        "frame.interface_id",
        "-e",
        "frame.interface_name",
        "-e",
        "frame.protocols",
    )
    assert [row[:2] for row in rows] == [["0", "eth0"], ["1", "eth0"]]
    assert rows[0][2].startswith("eth:") and rows[1][2].startswith("sll:")
