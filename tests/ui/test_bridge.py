"""UiSink: batches arrive in order, floods become a count, non-packet events are never dropped."""

from __future__ import annotations

from svcwatch.model.events import Notice, PacketEvent
from svcwatch.ui.bridge import UiSink
from svcwatch.ui.messages import EventsArrived


class Target:
    def __init__(self) -> None:
        self.posted: list[EventsArrived] = []
        self.message_queue_size = 0

    def post_message(self, message: EventsArrived) -> bool:
        self.posted.append(message)
        return True


def packet(i: int) -> PacketEvent:
    return PacketEvent(
        float(i), "tcp-packet", "eth0", "in", "192.168.97.2", "192.168.97.3", i, 31234, "SYN"
    )


def test_one_batch_per_flush_in_emit_order() -> None:
    target = Target()
    sink = UiSink(target)
    sink.emit(packet(1))
    sink.emit_many([packet(2), Notice(3.0, "info", "hi")])
    assert sink.flush() == 3
    assert sink.flush() == 0
    assert len(target.posted) == 1
    assert [e.ts for e in target.posted[0].events] == [1.0, 2.0, 3.0]


def test_packets_beyond_the_cap_are_counted_and_notices_kept() -> None:
    target = Target()
    sink = UiSink(target, max_packets_per_batch=10)
    sink.emit_many([packet(i) for i in range(25)])
    sink.emit(Notice(99.0, "warning", "still here"))
    sink.flush()
    batch = target.posted[0]
    assert len(batch.events) == 11 and batch.dropped == 15
    assert isinstance(batch.events[-1], Notice)


def test_a_busy_app_gets_no_new_batch_until_it_catches_up() -> None:
    target = Target()
    sink = UiSink(target, max_queued_messages=5)
    sink.emit(packet(1))
    target.message_queue_size = 6
    assert sink.flush() == 0 and target.posted == []
    target.message_queue_size = 0
    assert sink.flush() == 1


def test_the_flusher_thread_delivers_and_stops() -> None:
    target = Target()
    sink = UiSink(target, interval=0.01)
    sink.start()
    sink.emit(packet(1))
    sink.close()  # joins after one last flush
    assert [e.ts for m in target.posted for e in m.events] == [1.0]
