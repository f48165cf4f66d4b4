"""Rungs cut where the source cuts: the ladder's output through the HLS follower renditions."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import av
import m3u8
import pytest

from kitch.hls import HlsRegistry, HlsSettings
from kitch.hls.registry import LiveStream
from kitch.media import MediaPacket
from kitch.transcode.ladder import Rung, VideoLadder, plan_ladder
from tests.hls.packets import demux_packets
from tests.support.media import make_fixture

RUNGS = [Rung("240p", 240, 400), Rung("160p", 160, 200)]


def _broadcast(
    packets: list[MediaPacket], settings: HlsSettings
) -> tuple[LiveStream, dict[str, str]]:
    """Feed the source and, a few frames later (as a real encoder is), the ladder's rungs;
    AAC audio is shared with every rung as it is."""
    stream = HlsRegistry(settings).open("alice", 0.0)
    vconfig = next(p for p in packets if p.is_config and p.kind == "video")
    ladder = VideoLadder(vconfig, plan_ladder(640, 360, 30, RUNGS))
    for name in ("240p", "160p"):
        stream.add_rung(name)
    for p in packets:
        now = p.dts / 1000
        stream.feed(p, now)
        if p.kind == "audio":
            for name in stream.rungs:
                stream.feed_rung(name, p, now)
        elif not p.is_config:
            for name, out in ladder.feed(p).items():
                for q in out:
                    stream.feed_rung(name, q, now)
    for name, out in ladder.feed(None).items():
        for q in out:
            stream.feed_rung(name, q, 99.0)
    live = {name: stream.media_playlist(name) or "" for name in stream.renditions}
    stream.end(99.0)
    return stream, live


def _playlist(stream: LiveStream, name: str) -> m3u8.M3U8:
    text = stream.media_playlist(name)
    assert text is not None, name
    return m3u8.loads(text)


@pytest.mark.parametrize(("gop", "bframes"), [(30, 0), (120, 2)])
def test_every_rendition_has_the_same_segments_and_parts(
    media_dir: Path, gop: int, bframes: int
) -> None:
    # with a 4 s GOP (gop=120) the source's segments last 4 s (TARGETDURATION follows the GOP);
    # the rungs, whose IDRs come only from the source's keyframes, cut at the same instants
    fx = make_fixture(
        media_dir, seconds=6, width=640, height=360, gop=gop, bframes=bframes, container="mp4"
    )
    settings = HlsSettings(segment_duration=2.0, segment_count=10)
    stream, live = _broadcast(demux_packets(fx.path), settings)
    source = _playlist(stream, "source")
    assert len(source.segments) >= 2
    for name, height in (("240p", 240), ("160p", 160)):
        pl = _playlist(stream, name)
        assert pl.media_sequence == source.media_sequence, name
        assert pl.target_duration == source.target_duration
        assert [round(s.duration, 5) for s in pl.segments] == [
            round(s.duration, 5) for s in source.segments
        ], name
        assert [len(s.parts) for s in pl.segments] == [len(s.parts) for s in source.segments]
        for a, b in zip(pl.segments, source.segments, strict=True):
            assert [round(p.duration, 5) for p in a.parts] == [
                round(p.duration, 5) for p in b.parts
            ]
            assert a.discontinuity == b.discontinuity
        reports = m3u8.loads(live[name]).rendition_reports  # live playlists report the others
        assert sorted(r.uri for r in reports) == sorted(
            f"../{o}/index.m3u8" for o in ("source", "240p", "160p") if o != name
        )
        # the rung reads back whole: its resolution, every frame, a keyframe at each segment
        # start that has one in the source
        store = stream.renditions[name].store
        body = io.BytesIO(store.inits[0].data + b"".join(s.body() for s in store.segments))
        with av.open(body) as inp:
            frames = list(inp.decode(video=0))
        assert {(f.width, f.height) for f in frames} == {(plan_width(height), height)}
        assert len(frames) == 180  # 6 s at 30 fps: nothing lost
    master = stream.master_playlist()
    assert master is not None
    uris = [line for line in master.splitlines() if line.endswith(".m3u8")]
    assert uris == ["source/index.m3u8", "240p/index.m3u8", "160p/index.m3u8"]


def plan_width(height: int) -> int:
    return round(640 * height / 360 / 2) * 2


def test_a_rung_that_starts_late_joins_at_a_segment_start_with_the_same_numbers(
    media_dir: Path,
) -> None:
    fx = make_fixture(media_dir, seconds=6, width=640, height=360, gop=30, container="mp4")
    packets = demux_packets(fx.path)
    stream = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=10)).open("bob", 0.0)
    vconfig = next(p for p in packets if p.is_config and p.kind == "video")
    aconfig = next(p for p in packets if p.is_config and p.kind == "audio")
    ladder = VideoLadder(vconfig, plan_ladder(640, 360, 30, RUNGS[:1]))
    rung = None
    for p in packets:
        stream.feed(p, p.dts / 1000)
        if rung is None and p.dts >= 2500:
            # the ladder gets its slot 2.5 s in: its first IDR is the source's next keyframe
            rung = stream.add_rung("240p")
            rung.feed(aconfig, 0.0)
        if rung is None or p.is_config:
            continue
        if p.kind == "audio":
            rung.feed(p, 0.0)
        else:
            for q in ladder.feed(p).get("240p", []):
                rung.feed(q, 0.0)
    assert rung is not None
    stream.end(99.0)
    src = {s.msn: s.duration for s in stream.renditions["source"].store.segments}
    got = {s.msn: s.duration for s in rung.store.segments}
    assert got and min(got) == 3  # segments 0-2 passed before the rung had a keyframe
    # the rung only saw the cuts the source made after it was added: it joined at a segment
    # start it had a keyframe for, with that segment's number
    assert all(abs(got[m] - src[m]) < 1e-6 for m in got if m < max(got))


def test_a_rung_drops_surplus_audio_as_the_source_does(media_dir: Path) -> None:
    """AAC is shared with every rung as it is; with an audio clock running 5 % fast against
    its stamps the source's segmenter drops frames to stay in sync with the video, and a rung
    follows the same rules: its audio stays gapless and never steps back (a step back would
    overlap audio already listed), and it ends as close to the source's as their tolerance.
    The rung here gets the source's own video frames: what is checked is the audio."""
    fx = make_fixture(media_dir, seconds=8, gop=30)
    packets = demux_packets(fx.path)
    first = next(p.dts for p in packets if p.kind == "audio" and not p.is_config)

    def fast(t: int) -> int:
        return first + round((t - first) / 1.05)

    skewed = [
        p._replace(dts=fast(p.dts), pts=fast(p.pts)) if p.kind == "audio" and not p.is_config else p
        for p in packets
    ]
    skewed.sort(key=lambda p: (not p.is_config, p.dts))
    stream = HlsRegistry(HlsSettings(segment_duration=2.0, segment_count=10)).open("alice", 0.0)
    stream.add_rung("copy")
    for p in skewed:
        stream.feed(p, p.dts / 1000)
        stream.feed_rung("copy", p, p.dts / 1000)
    stream.end(99.0)

    def audio_pts(name: str) -> list[int]:
        store = stream.renditions[name].store
        body = io.BytesIO(store.inits[0].data + b"".join(s.body() for s in store.segments))
        with av.open(body) as inp:
            return [pk.pts for pk in inp.demux(audio=0) if pk.pts is not None]

    source, rung = audio_pts("source"), audio_pts("copy")
    dropped = (
        stream.renditions["source"].segmenter.dropped_packets,
        stream.renditions["copy"].segmenter.dropped_packets,
    )
    print(f"audio frames: source {len(source)}, rung {len(rung)}; dropped {dropped}")
    # 8 s 5 % fast: ~380 ms of surplus audio, caught up 100 ms at a time
    assert stream.renditions["source"].segmenter.audio_resyncs >= 2
    assert dropped[0] >= 5 and dropped[1] >= 5
    for pts in (source, rung):
        assert {b - a for a, b in itertools.pairwise(pts)} == {1024}  # gapless, never back
    assert abs(source[-1] - rung[-1]) <= 44100 * 0.1 + 1024
