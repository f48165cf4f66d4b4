"""The events fan-out: a socket that stops reading is dropped, never waited for."""

from __future__ import annotations

import msgpack

from kitch.api.events import QUEUE_SIZE, Events, Subscriber


async def test_a_client_that_does_not_read_is_dropped_and_others_get_everything() -> None:
    events = Events(viewer_window=30.0)
    stuck, reader = Subscriber(), Subscriber()
    stuck.follows.add("alice")
    reader.follows.add("alice")
    events.sockets |= {stuck, reader}
    received = []
    for n in range(QUEUE_SIZE + 10):
        events.channel_changed("alice", f"title {n}", "Games")  # never blocks
        while not reader.queue.empty():  # the reading client keeps up
            received.append(msgpack.unpackb(reader.queue.get_nowait()))
    assert stuck.too_slow.is_set() and stuck.queue.qsize() == QUEUE_SIZE
    assert [f["title"] for f in received] == [f"title {n}" for n in range(QUEUE_SIZE + 10)]
    assert not reader.too_slow.is_set()
    # Not followed and not live: nothing is sent.
    events.channel_changed("bob", "x", "y")
    assert reader.queue.empty()
