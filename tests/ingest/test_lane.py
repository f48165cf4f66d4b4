"""The native frame lane (``kitch._ingest.FrameLane``) gives what the hub's Python path gives:
a publish fed lane-first (what the RTMP session does while it is live) and the same publish fed
to ``Hub.feed`` alone end with the same parts, playlists, stats and clocks; and the lane steps
aside whenever that path would do something else with a frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from kitch import _ingest_py, twins
from kitch.hls import HlsRegistry, HlsSettings
from kitch.hls.playlist import media_playlist
from kitch.hls.registry import SOURCE
from kitch.ingest.hub import Broadcast, Hub
from kitch.ingest.passthrough import PassthroughSink
from kitch.ingest.sinks import BroadcastInfo, Sink
from kitch.media import MediaPacket
from tests.hls.live import shifted
from tests.hls.packets import demux_packets
from tests.ingest.peers import Peer
from tests.support.media import Fixture

WALL = 1_700_000_000.0


@dataclass
class Keyframes:
    """A sink like the thumbnails: configurations and video keyframes only (or, with
    ``wants_frames``, every packet, like a running ladder)."""

    name: str = "keys"
    wants_frames: bool = False
    seen: list[tuple[str, int, bool]] = field(default_factory=list)

    def refuse(self, packet: MediaPacket) -> str | None:
        return None

    def packet(self, packet: MediaPacket, now: float) -> None:
        if self.wants_frames or packet.is_config or (packet.kind == "video" and packet.keyframe):
            self.seen.append((packet.kind, packet.dts, packet.keyframe))

    def discontinuity(self, now: float) -> None:
        pass

    def end(self, now: float) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {}


class Run:
    """One hub with a passthrough sink (and ``extra``), one broadcast, a clock moved by hand."""

    def __init__(self, extra: Keyframes | None = None, fmt: str = "fmp4") -> None:
        self.t = 0.0
        self.registry = HlsRegistry(HlsSettings(format=fmt))  # type: ignore[arg-type]
        factories: list[Callable[[BroadcastInfo], Sink]] = []  # after the passthrough sink
        if extra is not None:
            factories.append(lambda info: extra)
        self.hub = Hub(self.registry, sinks=factories, now=0.0)
        self.conn = Peer("1.2.3.4:5")
        assert self.hub.claim("ch", "key", self.conn, 0.0, WALL) is None
        self.b: Broadcast = self.hub.open("ch", 7, 42, "key", self.conn, 0.0, WALL)
        self.lane = self.hub.lane(self.b, self.conn, lambda: self.t, lambda: WALL + self.t)

    def feed(self, packets: list[MediaPacket], lane: bool) -> None:
        for p in packets:
            self.t = 1.0 + p.dts / 1000
            if not (lane and self.lane is not None and self.lane(p)):
                self.hub.feed(self.b, self.conn, p, self.t, WALL + self.t)

    def outcome(self) -> dict[str, Any]:
        stream = self.b.stream
        store = stream.renditions[SOURCE].store
        seg = stream.renditions[SOURCE].segmenter
        parts = [bytes(p.data) for s in store.segments for p in s.parts]
        stats = self.b.stats
        return {
            "parts": parts,
            "playlist": media_playlist(store),
            "stats": (stats.snapshot(), stats.packets_total, stats.av_drift_ms),
            "last_media": self.b.last_media,
            "stream": (stream.first_frame_at, stream.bytes_in),
            "segmenter": (seg.repaired_dts, seg.dropped_packets, seg.part_target),
        }


@pytest.fixture
def publish(av_fixture: Fixture) -> list[MediaPacket]:
    """The fixture's packets four times in a row (timestamps going on): past the first
    seconds, in which the segmenter still moves its clock."""
    return shifted(demux_packets(av_fixture.path), 4, av_fixture.seconds)


@pytest.mark.parametrize("fmt", ["fmp4", "ts"])
def test_lane_first_gives_what_the_hub_gives(publish: list[MediaPacket], fmt: str) -> None:
    alone, first = Run(fmt=fmt), Run(fmt=fmt)
    alone.feed(publish, lane=False)
    first.feed(publish, lane=True)
    assert first.outcome() == alone.outcome()
    assert alone.outcome()["parts"]
    assert first.lane is not None
    frames = sum(not p.is_config and not (p.kind == "video" and p.keyframe) for p in publish)
    print(f"lane took {first.lane.taken} of {frames} frames ({twins.ingest.__name__})")
    if twins.ingest is not _ingest_py:  # the native lane takes the common frames: all but
        # those of the first 4 s, while the segmenter may still move its clock (12 s of 16)
        assert first.lane.taken >= frames * 0.7


def test_sinks_that_read_keyframes_only_let_the_lane_run(publish: list[MediaPacket]) -> None:
    keys_alone, keys_first = Keyframes(), Keyframes()
    alone, first = Run(keys_alone), Run(keys_first)
    alone.feed(publish, lane=False)
    first.feed(publish, lane=True)
    assert first.outcome() == alone.outcome()
    assert keys_first.seen == keys_alone.seen and keys_first.seen


def test_a_sink_that_wants_every_frame_gets_every_frame(publish: list[MediaPacket]) -> None:
    wants = Keyframes(wants_frames=True)
    run = Run(wants)
    run.feed(publish, lane=True)
    assert run.lane is not None and run.lane.taken == 0
    assert len(wants.seen) == len(publish)


def test_the_lane_steps_aside_once_the_publisher_is_gone(publish: list[MediaPacket]) -> None:
    run = Run()
    half = len(publish) // 2
    run.feed(publish[:half], lane=True)
    assert run.lane is not None
    taken = run.lane.taken
    run.hub.dropped(run.b, run.conn, "closed by peer", run.t, WALL + run.t)
    assert not any(run.lane(p) for p in publish[half:])
    assert run.lane.taken == taken


def test_the_lane_steps_aside_once_the_passthrough_sink_is_dropped(
    publish: list[MediaPacket],
) -> None:
    run = Run()
    assert isinstance(run.b.sinks[0], PassthroughSink)
    run.b.sinks.pop(0)  # what the hub does with a sink that raised
    assert run.lane is not None and not any(run.lane(p) for p in publish)
    assert run.hub.lane(run.b, run.conn, lambda: 0.0, lambda: WALL) is None
