"""The worker processes' mirror of the HLS registry: a real stream through the real registry,
its changes framed, read back and applied; the mirror's playlists and media must be the same
bytes as the registry's at every point, for a mirror there from the start and one that joins
late (snapshot, then live messages)."""

from __future__ import annotations

import msgpack
import pytest

from kitch.hls import HlsRegistry, HlsSettings, Resume
from kitch.hls.mirror import (
    FrameReader,
    MirrorError,
    MirrorRegistry,
    MirrorTap,
    Op,
    encode,
    snapshot_frames,
)
from kitch.media import MediaPacket
from tests.hls.live import shifted
from tests.hls.packets import demux_packets
from tests.support.media import Fixture


class Wire:
    """Frames from a tap to a mirror through a reader, fed in odd-sized pieces."""

    def __init__(self, settings: HlsSettings) -> None:
        self.mirror = MirrorRegistry(settings)
        self.reader = FrameReader()
        self.frames = 0
        self.paused = False
        self.pending = b""

    def send(self, frame: bytes) -> None:
        self.frames += 1
        if self.paused:
            return  # lost (a worker that fell behind and was dropped)
        data = self.pending + frame
        cut = len(data) * 2 // 3
        for piece in (data[:cut], data[cut:]):
            for message in self.reader.feed(piece):
                self.mirror.apply(message)
        self.pending = b""


def state(registry: HlsRegistry) -> dict[str, object]:
    """Everything a viewer can read: playlists (plain and delta), every file's bytes."""
    out: dict[str, object] = {}
    for channel in registry.channels():
        stream = registry.get(channel)
        assert stream is not None
        out[channel] = (stream.broadcast_id, stream.ended, stream.master_playlist())
        for name, r in stream.renditions.items():
            s = r.store
            out[f"{channel}/{name}"] = (
                stream.media_playlist(name),
                stream.media_playlist(name, skip=True),
                {n: bytes(p.data) for n, p in s.parts.items()},
                {m: bytes(d.body()) for m, d in s.departed.items()},
                {n: i.data for n, i in s.inits.items()},
                [(g.msn, g.complete, bytes(g.body() if g.complete else b"")) for g in s.segments],
                s.next_part_number,
                s.memory_drops,
            )
    return out


def _broadcast(fixture: Fixture, loops: int) -> list[tuple[str, MediaPacket | None]]:
    """Source packets, each also given (three packets later) to a rung; a reconnect midway."""
    packets = shifted(demux_packets(fixture.path), loops, fixture.seconds)
    steps: list[tuple[str, MediaPacket | None]] = []
    delayed: list[MediaPacket] = []
    for i, p in enumerate(packets):
        steps.append(("source", p))
        delayed.append(p)
        if len(delayed) > 3:
            steps.append(("720p", delayed.pop(0)))
        if i == len(packets) // 2:
            steps.append(("reconnect", None))
    return steps


@pytest.mark.parametrize(
    ("memory", "retention", "loops", "resume"),
    [
        (256 * 1024 * 1024, 3.0, 3, None),
        (1024 * 1024, 1000.0, 12, None),
        (256 * 1024 * 1024, 3.0, 3, Resume(500, 7)),
    ],
)
def test_mirror_renders_the_same_playlists_and_media(
    av_fixture: Fixture, memory: int, retention: float, loops: int, resume: Resume | None
) -> None:
    """Expiry, a reconnect, a rung, (second case) the memory cap shedding media, and (third) a
    broadcast numbered on from one that ran on another node."""
    settings = HlsSettings(segment_count=3, max_stream_memory=memory, departed_retention=retention)
    registry = HlsRegistry(settings)
    early = Wire(settings)
    late = Wire(settings)
    late.paused = True
    taps = [early.send, late.send]
    MirrorTap(registry, lambda frame: [t(frame) for t in taps])
    stream = registry.open("alice", 1000.0, resume)
    stream.add_rung("720p")
    steps = _broadcast(av_fixture, loops)
    compared = 0
    first_listed = -1
    for i, (what, p) in enumerate(steps):
        now = 1000.0 + (p.dts / 1000 if p is not None else 0)
        if what == "source" and p is not None:
            stream.feed(p, now)
        elif what == "720p" and p is not None:
            stream.feed_rung("720p", p, now)
        else:
            stream.discontinuity(now)
        if i % 40 == 0:
            registry.expire(now)
        if i == len(steps) // 3:  # the late mirror joins: snapshot, then live messages
            late.paused = False
            for frame in snapshot_frames(registry):
                late.send(frame)
            assert late.mirror.synced
        if first_listed < 0 and stream.renditions["source"].store.segments:
            first_listed = stream.renditions["source"].store.segments[0].msn
        if i % 25 == 0:
            want = state(registry)
            assert state(early.mirror) == want, f"step {i}"
            if not late.paused:
                assert state(late.mirror) == want, f"step {i} (late mirror)"
            compared += 1
    assert compared > 20
    assert first_listed == (0 if resume is None else resume.next_msn)
    src = stream.renditions["source"].store
    assert src.departed or src.memory_drops  # segments left the window
    if memory == 1024 * 1024:
        assert sum(r.store.memory_drops for r in stream.renditions.values()) > 0
    playlist = stream.media_playlist("source") or ""
    assert "#EXT-X-DISCONTINUITY" in playlist or src.discontinuity_sequence > 0
    stream.end(2000.0)
    assert state(early.mirror) == state(late.mirror) == state(registry)
    assert "#EXT-X-ENDLIST" in (early.mirror.get("alice").media_playlist("720p") or "")  # type: ignore[union-attr]
    # a new broadcast replaces the ended one, then everything expires
    registry.open("alice", 2001.0)
    assert state(early.mirror) == state(registry)
    registry.open("bob", 2002.0).feed(steps[0][1], 2002.0)  # type: ignore[arg-type]
    registry.get("alice").end(2003.0)  # type: ignore[union-attr]
    registry.expire(2003.0 + settings.ended_retention + 1)
    assert registry.channels() == early.mirror.channels() == late.mirror.channels() == ["bob"]


def test_a_mirror_that_lost_messages_is_made_equal_by_a_snapshot(av_fixture: Fixture) -> None:
    settings = HlsSettings(segment_count=2)
    registry = HlsRegistry(settings)
    wire = Wire(settings)
    MirrorTap(registry, wire.send)
    stream = registry.open("alice", 0.0)
    packets = demux_packets(av_fixture.path)
    third = len(packets) // 3
    for p in packets[:third]:
        stream.feed(p, p.dts / 1000)
    wire.paused = True  # its pipe backed up: dropped
    for p in packets[third : 2 * third]:
        stream.feed(p, p.dts / 1000)
    assert state(wire.mirror) != state(registry)
    wire.paused = False
    for frame in snapshot_frames(registry):
        wire.send(frame)
    assert state(wire.mirror) == state(registry)
    for p in packets[2 * third :]:
        stream.feed(p, p.dts / 1000)
    assert state(wire.mirror) == state(registry)
    assert wire.mirror.get("alice").media_playlist("source")  # type: ignore[union-attr]


def test_changes_of_a_replaced_broadcast_are_not_sent(av_fixture: Fixture) -> None:
    registry = HlsRegistry(HlsSettings())
    wire = Wire(registry.settings)
    MirrorTap(registry, wire.send)
    old = registry.open("alice", 0.0)
    registry.open("alice", 1.0)  # ends and replaces the old one
    old.discontinuity(2.0)  # a late call on the old stream must not reach the new mirror one
    packets = demux_packets(av_fixture.path)
    for p in packets:
        old.feed(p, p.dts / 1000)
    assert state(wire.mirror) == state(registry)


def test_frame_reader_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    messages = [
        [Op.OPEN, "alice", "abc", 1.5, None],
        [Op.EXPIRE, 2.0],
        [Op.SIGHTINGS, [["a", "b"]]],
    ]
    data = b"".join(encode(m) for m in messages)
    assert list(FrameReader().feed(data)) == messages
    reader = FrameReader()
    got = [m for i in range(len(data)) for m in reader.feed(data[i : i + 1])]
    assert got == messages and reader.buffered == 0
    reader = FrameReader()
    assert list(reader.feed(data + data[:5])) == messages
    assert reader.buffered == 5


@pytest.mark.parametrize(
    "frame",
    [
        (10_000).to_bytes(4, "big") + b"x",  # over the bound
        (3).to_bytes(4, "big") + b"\xc1\xc1\xc1",  # not msgpack
        encode([]),  # no op
        encode({"op": 1}),  # type: ignore[arg-type]
        (2).to_bytes(4, "big") + msgpack.packb("x"),  # a string
    ],
)
def test_frame_reader_refuses_bad_frames(frame: bytes) -> None:
    with pytest.raises(MirrorError):
        list(FrameReader(max_frame=1000).feed(frame))


@pytest.mark.parametrize(
    "message",
    [
        [Op.PART, "nobody", "source", 0.0, b"x", 0.2, True, True, False, 0.0, None, None, None],
        [Op.SETTLED, "nobody", "source", 0.0, 0.2, 2, 30.0],
        [Op.STREAM_END, "nobody", 1.0],
        [Op.OPEN, "alice"],
        [999],
        [Op.SNAPSHOT_RENDITION, "alice", "source", False, 0.0, [1, 2]],
    ],
)
def test_mirror_refuses_messages_it_cannot_apply(message: list[object]) -> None:
    mirror = MirrorRegistry(HlsSettings())
    mirror.apply([Op.OPEN, "alice", "abc", 0.0, None])
    with pytest.raises(MirrorError):
        mirror.apply(message)
