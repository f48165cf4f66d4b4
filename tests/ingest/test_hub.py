"""The hub's core without I/O: a fake clock, recording sinks, publishers that only note kicks.

The database work comes out as actions, which these tests read; tests/server/test_hub.py runs
the same rules through the asyncio glue on a real SQLite file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kitch.hls import HlsRegistry, HlsSettings
from kitch.ingest.hub import (
    EXPIRE_INTERVAL,
    KEY_RECHECK_INTERVAL,
    REJECTED,
    STATS_INTERVAL,
    TAKEOVER_SILENCE,
    Action,
    Broadcast,
    Hub,
    RecheckKeys,
    RecordEnd,
    Refusal,
    WriteStats,
)
from kitch.ingest.passthrough import PassthroughSink
from kitch.ingest.sinks import BroadcastInfo, Sink
from kitch.media import MediaPacket
from tests.hls.packets import demux_packets
from tests.ingest.peers import Peer
from tests.rtmp.client import ASC, AVCC
from tests.support.media import Fixture

GRACE = 5.0
WALL = 1_700_000_000.0


@dataclass
class Recorder:
    """A sink that writes down every call, in a log shared by all sinks of a test."""

    name: str
    log: list[tuple[str, str, Any]]
    refuses: str | None = None
    fails_on: int | None = None  # raise on this packet number
    packets: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    wants_frames: bool = True

    def refuse(self, packet: MediaPacket) -> str | None:
        self.log.append((self.name, "refuse", packet.codec))
        return self.refuses if packet.kind == "video" else None

    def packet(self, packet: MediaPacket, now: float) -> None:
        self.packets += 1
        if self.fails_on == self.packets:
            raise RuntimeError("sink failure")
        self.log.append((self.name, "packet", packet.dts))

    def discontinuity(self, now: float) -> None:
        self.log.append((self.name, "discontinuity", now))

    def end(self, now: float) -> None:
        self.log.append((self.name, "end", now))

    def health(self) -> dict[str, Any]:
        return self.extra


def config(kind: str = "video", codec: str = "h264") -> MediaPacket:
    data = AVCC if codec == "h264" else ASC if codec == "aac" else b"\x81\x00\x0c\x00"
    return MediaPacket(kind, codec, 0, 0, data, is_config=True)  # type: ignore[arg-type]


def frame(dts: int, keyframe: bool = False) -> MediaPacket:
    return MediaPacket("video", "h264", dts, dts, b"\x00\x00\x00\x02\x65\x88", keyframe)


def actions(hub: Hub) -> list[Action]:
    out = []
    while (a := hub.next_action()) is not None:
        out.append(a)
    return out


class Setup:
    def __init__(self, *recorders: Recorder, fmt: str = "fmp4") -> None:
        self.log: list[tuple[str, str, Any]] = []
        self.sinks = [Recorder(r.name, self.log, r.refuses, r.fails_on) for r in recorders]
        self.registry = HlsRegistry(HlsSettings(format=fmt))  # type: ignore[arg-type]
        factories = [self._factory(s) for s in self.sinks]
        self.hub = Hub(self.registry, sinks=factories, reconnect_grace=GRACE, now=0.0)
        self.infos: list[BroadcastInfo] = []

    def _factory(self, sink: Recorder) -> Any:
        def make(info: BroadcastInfo) -> Sink:
            self.infos.append(info)
            return sink

        return make

    def start(self, conn: Peer, now: float = 0.0, channel: str = "ch") -> Broadcast:
        assert self.hub.claim(channel, "key", conn, now, WALL + now) is None
        return self.hub.open(channel, 7, 42, "key", conn, now, WALL + now)


def test_a_broadcast_fans_every_packet_out_in_order_passthrough_first() -> None:
    s = Setup(Recorder("one", []), Recorder("two", []))
    conn = Peer("p")
    b = s.start(conn)
    assert [sink.name for sink in b.sinks] == ["hls", "one", "two"]
    assert isinstance(b.sinks[0], PassthroughSink)
    assert s.infos == [BroadcastInfo("ch", 7, 42, b.stream)] * 2
    assert s.hub.feed(b, conn, config(), 0.1, WALL) is None
    assert s.hub.feed(b, conn, frame(0, True), 0.2, WALL) is None
    assert s.log == [
        ("one", "refuse", "h264"),
        ("two", "refuse", "h264"),
        ("one", "packet", 0),
        ("two", "packet", 0),
        ("one", "packet", 0),
        ("two", "packet", 0),
    ]
    assert b.stream.bytes_in > 0 and b.last_media == 0.2  # the passthrough sink got them too
    # A packet from a connection that is not the publisher goes nowhere.
    s.log.clear()
    assert s.hub.feed(b, Peer("other"), frame(33), 0.3, WALL) is None
    assert s.log == [] and b.last_media == 0.2


def test_a_refused_codec_is_fed_to_no_sink_and_ends_the_broadcast() -> None:
    s = Setup(Recorder("one", []), Recorder("picky", [], refuses="video codec h264: no"))
    conn = Peer("p")
    b = s.start(conn)
    assert s.hub.feed(b, conn, config("audio", "aac"), 0.1, WALL) is None
    refusal = s.hub.feed(b, conn, config(), 0.2, WALL + 0.2)
    assert refusal == Refusal(REJECTED, "video codec h264: no", "codec")
    # the audio config went to both; the refused video config to neither
    assert [e for e in s.log if e[1] == "packet"] == [("one", "packet", 0), ("picky", "packet", 0)]
    assert b.ended and "ch" not in s.hub.live and b.stream.ended
    assert conn.kicked is None  # the listener answers the encoder itself
    (end,) = actions(s.hub)
    assert isinstance(end, RecordEnd) and end.broadcast_id == 42
    assert end.reason == "publish refused: video codec h264: no"
    # the sinks end in reverse order, the passthrough (which ends the HLS stream) last
    assert [e[0] for e in s.log if e[1] == "end"] == ["picky", "one"]


@pytest.mark.parametrize(
    ("fmt", "codec", "refused"),
    [("ts", "av1", True), ("ts", "vp9", True), ("ts", "h264", False), ("fmp4", "av1", False)],
)
def test_the_passthrough_sink_refuses_what_its_container_cannot_carry(
    fmt: str, codec: str, refused: bool
) -> None:
    stream = HlsRegistry(HlsSettings(format=fmt)).open("ch", WALL)  # type: ignore[arg-type]
    sink = PassthroughSink(BroadcastInfo("ch", 1, 1, stream))
    reason = sink.refuse(config("video", codec))
    if refused:
        assert reason is not None and f"video codec {codec}" in reason and "h264" in reason
    else:
        assert reason is None
    assert sink.refuse(config("audio", "aac")) is None


def test_an_unpublish_ends_at_once_a_drop_waits_for_the_grace() -> None:
    s = Setup()
    first = Peer("first")
    b = s.start(first)
    s.hub.unpublished(b, first, WALL + 1)
    assert b.ended and b.stream.ended and "ch" not in s.hub.live
    (end,) = actions(s.hub)
    assert isinstance(end, RecordEnd) and end.reason == "unpublished"

    second = Peer("second")
    b2 = s.start(second, now=10.0)
    assert b2 is not b and b2.stream is not b.stream
    s.hub.dropped(b2, second, "closed by peer", 11.0, WALL + 11)
    assert not b2.ended and b2.grace_until == 11.0 + GRACE
    assert s.hub.next_deadline() <= 11.0 + GRACE
    s.hub.poll(11.0 + GRACE - 0.01, WALL)
    assert not b2.ended and not [a for a in actions(s.hub) if isinstance(a, RecordEnd)]
    s.hub.poll(11.0 + GRACE, WALL)
    assert b2.ended
    ends = [a for a in actions(s.hub) if isinstance(a, RecordEnd)]
    assert [e.reason for e in ends] == ["publisher did not come back"]


def test_a_reconnect_within_the_grace_resumes_with_a_discontinuity() -> None:
    s = Setup(Recorder("one", []))
    first = Peer("first")
    b = s.start(first)
    s.hub.feed(b, first, config(), 0.1, WALL)
    s.hub.dropped(b, first, "closed by peer", 1.0, WALL + 1)
    second = Peer("second")
    assert s.hub.claim("ch", "key2", second, 3.0, WALL + 3) is b
    assert b.publisher is second and b.key == "key2" and b.grace_until is None
    assert ("one", "discontinuity", WALL + 3) in s.log
    s.hub.poll(1.0 + GRACE + 1, WALL)
    assert not b.ended and not [a for a in actions(s.hub) if isinstance(a, RecordEnd)]


def test_a_second_publisher_is_refused_until_the_first_falls_silent() -> None:
    s = Setup()
    first, second = Peer("first"), Peer("second")
    b = s.start(first)
    s.hub.feed(b, first, config(), 1.0, WALL)
    got = s.hub.claim("ch", "key", second, 1.0 + TAKEOVER_SILENCE - 0.1, WALL)
    assert isinstance(got, Refusal) and got.reason == "already_live" and got.code == REJECTED
    assert first.kicked is None
    assert s.hub.claim("ch", "key", second, 1.0 + TAKEOVER_SILENCE, WALL) is b
    assert first.kicked == "taken over by a new publisher" and b.publisher is second
    # the old connection's departure no longer concerns the broadcast
    s.hub.dropped(b, first, "kicked", 4.0, WALL)
    s.hub.unpublished(b, first, WALL)
    assert b.publisher is second and b.grace_until is None and not b.ended


def test_timers_are_data_and_queue_the_database_work() -> None:
    s = Setup()
    conn = Peer("p")
    b = s.start(conn)
    assert s.hub.next_deadline() == EXPIRE_INTERVAL
    s.hub.poll(KEY_RECHECK_INTERVAL, WALL)
    assert actions(s.hub) == [RecheckKeys((("ch", "key"),))]
    s.hub.poll(STATS_INTERVAL, WALL)
    (write,) = actions(s.hub)
    assert isinstance(write, WriteStats) and write.rows[0][0] == 42
    assert write.rows[0][1]["hls"]["bytes_held"] == 0
    # a revoked key drops the publisher and ends; a key changed meanwhile does not
    s.hub.revoked("ch", "old-key", WALL)
    assert not b.ended and conn.kicked is None
    s.hub.revoked("ch", "key", WALL)
    assert b.ended and conn.kicked == "stream key revoked"
    (end,) = actions(s.hub)
    assert isinstance(end, RecordEnd) and end.reason == "stream key revoked"


def test_stop_ends_everything_and_refuses_what_comes_after() -> None:
    s = Setup()
    a, b_conn = Peer("a"), Peer("b")
    one = s.start(a, channel="one")
    two = s.start(b_conn, channel="two")
    s.hub.dropped(two, b_conn, "closed by peer", 1.0, WALL)
    s.hub.stop(WALL + 2)
    assert one.ended and two.ended and s.hub.live == {}
    assert a.kicked == "server shutting down"
    ends = actions(s.hub)
    assert sorted((e.channel, e.reason) for e in ends if isinstance(e, RecordEnd)) == [
        ("one", "server shutdown"),
        ("two", "server shutdown"),
    ]
    got = s.hub.claim("one", "key", Peer("late"), 3.0, WALL)
    assert isinstance(got, Refusal) and got.reason == "shutting_down"


def test_a_failing_sink_is_dropped_and_the_others_go_on() -> None:
    s = Setup(Recorder("flaky", [], fails_on=2), Recorder("steady", []))
    conn = Peer("p")
    b = s.start(conn)
    for i in range(4):
        s.hub.feed(b, conn, config() if i == 0 else frame(i * 33), 0.1 * i, WALL)
    assert [sink.name for sink in b.sinks] == ["hls", "steady"]
    assert [e[2] for e in s.log if e[:2] == ("steady", "packet")] == [0, 33, 66, 99]
    assert ("flaky", "end", WALL) in s.log


def test_health_joins_the_sinks_figures(av_fixture: Fixture) -> None:
    s = Setup()
    assert s.hub.health("ch") is None
    conn = Peer("p")
    b = s.start(conn)
    for p in demux_packets(av_fixture.path):  # 4 s of 320x240 H.264 at 30 fps + AAC
        s.hub.feed(b, conn, p, p.dts / 1000, WALL + p.dts / 1000)
    h = s.hub.health("ch")
    assert h is not None
    assert h["live"] is True and h["since"] == "2023-11-14T22:13:20.000Z"
    ingest = h["ingest"]
    assert (ingest["video_codec"], ingest["audio_codec"]) == ("h264", "aac")
    assert (ingest["width"], ingest["height"]) == (320, 240)
    assert ingest["fps"] == pytest.approx(30, abs=1) and ingest["bitrate_kbps"] > 0
    assert ingest["keyframe_interval"] == pytest.approx(1.0, abs=0.05)
    assert abs(ingest["av_drift_ms"]) < 50
    assert h["ladder"] == {
        "state": "off",
        "reason": None,
        "decode_cpu_seconds": 0.0,
        "dropped_packets": 0,
        "decoder_restarts": 0,
    }
    (source,) = h["renditions"]
    assert source["name"] == "source" and source["encode_speed"] is None
    assert set(source) == {
        "name", "width", "height", "bitrate_kbps", "fps", "encode_speed",
        "dropped_frames", "restarts", "cpu_seconds", "bytes_held", "window_bytes", "error",
    }  # fmt: skip
    assert (source["width"], source["height"]) == (320, 240)
    assert source["fps"] == pytest.approx(30, abs=0.1) and source["bitrate_kbps"] > 0
    assert source["bytes_held"] == b.stream.stats["bytes_held"] > 0
    assert 0 < source["window_bytes"] == b.stream.stats["window_bytes"] <= source["bytes_held"]
    assert source["dropped_frames"] == 0 and source["error"] is None


def test_a_sink_adds_its_section_and_renditions_to_the_health() -> None:
    ladder = Recorder("ladder", [])
    s = Setup(ladder)
    s.sinks[0].extra = {
        "ladder": {"state": "running", "reason": None, "decode_cpu_seconds": 1.5,
                   "dropped_packets": 0, "decoder_restarts": 0},
        "renditions": [{"name": "720p"}, {"name": "480p"}],
    }  # fmt: skip
    s.start(Peer("p"))
    h = s.hub.health("ch")
    assert h is not None and h["ladder"]["state"] == "running"
    assert [r["name"] for r in h["renditions"]] == ["source", "720p", "480p"]
