"""Segmenter and playlist rules, sans-IO: packets in, parts/segments/playlists checked."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import m3u8
import pytest

from kitch.hls import HlsRegistry, HlsSettings
from kitch.hls.events import Event, InitReady, PartReady, SegmentEnded
from kitch.hls.segmenter import Segmenter
from kitch.media import MediaPacket
from tests.hls.live import shifted
from tests.hls.packets import demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.native  # the segmenter drives the core: runs again on the twin


def _run(
    packets: list[MediaPacket], settings: HlsSettings
) -> tuple[Segmenter, list[tuple[MediaPacket | None, Event]]]:
    seg = Segmenter(settings)
    events: list[tuple[MediaPacket | None, Event]] = []
    for p in packets:
        events.extend((p, e) for e in seg.feed(p))
    events.extend((None, e) for e in seg.end())
    return seg, events


def _segments(events: list[tuple[MediaPacket | None, Event]]) -> list[list[PartReady]]:
    segs: list[list[PartReady]] = [[]]
    for _, e in events:
        if isinstance(e, PartReady):
            if e.first_in_segment and segs[-1]:
                segs.append([])
            segs[-1].append(e)
        elif isinstance(e, SegmentEnded):
            segs.append([])
    return [s for s in segs if s]


def _check_rules(seg: Segmenter, events: list[tuple[MediaPacket | None, Event]]) -> None:
    target = seg.part_target
    td = seg.target_duration
    assert target is not None and td is not None
    for parts in _segments(events):
        assert parts[0].first_in_segment and parts[0].independent
        assert round(sum(p.duration for p in parts)) <= td  # RFC 8216bis: EXTINF rounded
        for i, p in enumerate(parts):
            assert 0 < p.duration <= target + 1e-9
            if i < len(parts) - 1:
                assert p.duration >= 0.85 * target, (i, p.duration, target)


def _readback(
    events: list[tuple[MediaPacket | None, Event]], path: Path
) -> av.container.InputContainer:
    init = next(e.data for _, e in events if isinstance(e, InitReady))
    path.write_bytes(init + b"".join(e.data for _, e in events if isinstance(e, PartReady)))
    return av.open(str(path))


@pytest.mark.parametrize("which", ["plain", "bframes"])
def test_parts_and_segments_follow_ll_hls_rules(
    which: str, av_fixture: Fixture, bframes_fixture: Fixture, tmp_path: Path
) -> None:
    fx = av_fixture if which == "plain" else bframes_fixture
    packets = demux_packets(fx.path)
    seg, events = _run(packets, HlsSettings(segment_duration=1.0))
    assert seg.part_target == 0.2  # 6 frames at 30 fps: stamps snapped to the frame grid
    assert seg.target_duration == 1 and seg.gop_seconds == pytest.approx(1.0)
    _check_rules(seg, events)
    assert len(_segments(events)) == 4
    # a part is out as soon as its last frame is in: the packet that completed it is the
    # last video frame it holds, and the part ends one frame duration after that frame
    base = next(p.dts for p in packets if p.kind == "video" and not p.is_config)
    for pkt, e in events:
        if isinstance(e, PartReady) and pkt is not None and pkt.kind == "video":
            end = e.media_time + e.duration
            if pkt.keyframe:  # a new segment began: the part ended at this keyframe
                assert end <= (pkt.dts - base) / 1000 + 0.0011
            else:
                assert end == pytest.approx((pkt.dts - base) / 1000 + 1 / 30, abs=0.002)
    # the fMP4 reads back frame for frame, composition offsets kept (B-frames)
    vids = [p for p in packets if p.kind == "video" and not p.is_config]
    with _readback(events, tmp_path / "out.mp4") as inp:
        got = [(p.dts, p.pts, p.is_keyframe) for p in inp.demux(video=0) if p.size]
    assert len(got) == len(vids)
    assert [g[2] for g in got] == [p.keyframe for p in vids]
    assert all(b[0] > a[0] for a, b in itertools.pairwise(got))
    offsets = [g[1] - g[0] for g in got]
    want = [round((p.pts - p.dts) * 30 / 1000) * 3000 for p in vids]  # on the 30 fps grid
    shift = offsets[0] - want[0]  # FFmpeg may shift all pts by a constant
    assert [o - shift for o in offsets] == want
    # the B-frames' composition offsets survived the muxer (and nothing invented any)
    assert (len(set(offsets)) > 1) == (which == "bframes")


def test_part_target_at_2997_fps_is_six_frames() -> None:
    avcc = _synthetic_config()
    packets = [MediaPacket("video", "h264", 0, 0, avcc, True, True)]
    for k in range(300):
        t = round(k * 1001 / 30)
        packets.append(MediaPacket("video", "h264", t, t, b"\x00\x00\x00\x01\x65", k % 60 == 0))
    seg, events = _run(packets, HlsSettings(segment_duration=2.0))
    assert seg.part_target is not None
    assert 0.2002 <= seg.part_target <= 0.2025
    assert seg.frame_rate == pytest.approx(29.97, abs=0.01)
    _check_rules(seg, events)
    sizes = {len([e for e in s]) for s in _segments(events)[:-1]}
    assert sizes == {10}  # 60-frame GOP = 2.002 s = 10 parts of 6 frames


@pytest.mark.parametrize("skew", [1.01, 0.99], ids=["audio-clock-fast", "audio-clock-slow"])
def test_audio_stays_in_sync_when_its_stamps_drift_from_its_samples(skew: float) -> None:
    """An encoder whose audio clock runs 1 % off its stamps, for 60 s: audio is placed by
    sample count, so without correction it would drift 600 ms from the video. Stamps that fall
    behind drop frames until audio is back in step (fast clock); stamps that run ahead re-anchor
    it past the gap (slow clock). Either way the placed audio stays within the tolerances of its
    stamps, and each correction counts once, not once per frame."""
    seg = Segmenter(HlsSettings())
    seg.feed(MediaPacket("video", "h264", 0, 0, _synthetic_config(), True, True))
    seg.feed(MediaPacket("audio", "aac", 0, 0, bytes([0x11, 0x90]), True, True))  # 48 kHz
    worst = 0.0
    j = 0
    frames = 60 * 30
    for k in range(frames):
        t = round(k * 1000 / 30)
        seg.feed(MediaPacket("video", "h264", t, t, b"\x00\x00\x00\x01\x65", k % 60 == 0))
        while j * 1024 / 48 / skew < t + 1000 / 30:
            ms = round(j * 1024 / 48 / skew)  # 1024 samples at 48 kHz, stamped by a skewed clock
            seg.feed(MediaPacket("audio", "aac", ms, ms, b"\x21\x00", True))
            if seg._a_next is not None:  # where the next frame goes against its stamp
                worst = max(worst, abs(seg._a_next * 1000 / 48000 - (ms + 1024 / 48)))
            j += 1
    print(
        f"skew {skew}: worst audio offset {worst:.1f} ms, {seg.audio_resyncs} resyncs, "
        f"{seg.dropped_packets} frames dropped of {j}"
    )
    assert worst <= 200 + 1024 / 48
    if skew > 1:  # 600 ms of surplus audio over 60 s: about that much dropped, in ~6 catch-ups
        assert worst <= 100 + 1024 / 48
        assert 0.5 * 600 / (1024 / 48) <= seg.dropped_packets <= 1.2 * 600 / (1024 / 48)
        assert 3 <= seg.audio_resyncs <= 10
    else:  # 600 ms missing: re-anchored past ~3 gaps of 200 ms, nothing dropped
        assert seg.dropped_packets == 0
        assert 2 <= seg.audio_resyncs <= 4


def test_an_audio_config_with_another_sample_rate_keeps_audio_in_step() -> None:
    """A new AudioSpecificConfig mid-publish (48 kHz -> 44.1 kHz) restarts the output at the
    next keyframe without a rebase: the audio clock goes over to the new rate's units and
    anchors at the next frame's stamp, so the frames sent at the new rate before the restart
    (laid out at the old one) leave no lasting offset, and nothing is dropped to catch up."""
    seg = Segmenter(HlsSettings())
    seg.feed(MediaPacket("video", "h264", 0, 0, _synthetic_config(), True, True))
    seg.feed(MediaPacket("audio", "aac", 0, 0, bytes([0x11, 0x90]), True, True))  # 48 kHz
    rate, j, base, t = 48000, 0, 0.0, 0
    for k in range(20 * 30):
        t = round(k * 1000 / 30)
        if k == 10 * 30 + 5:  # mid-GOP: the restart waits for the next keyframe
            seg.feed(MediaPacket("audio", "aac", t, t, bytes([0x12, 0x10]), True, True))
            rate, j, base = 44100, 0, t
        seg.feed(MediaPacket("video", "h264", t, t, b"\x00\x00\x00\x01\x65", k % 60 == 0))
        while base + j * 1024 * 1000 / rate < t + 1000 / 30:
            ms = round(base + j * 1024 * 1000 / rate)
            seg.feed(MediaPacket("audio", "aac", ms, ms, b"\x21\x00", True))
            j += 1
    assert seg._sample_rate == 44100 and seg._a_next is not None
    offset = seg._a_next * 1000 / 44100 - (base + j * 1024 * 1000 / 44100)
    print(
        f"audio {offset:+.1f} ms from its stamps, {seg.dropped_packets} frames dropped, "
        f"{seg.audio_resyncs} resyncs"
    )
    assert abs(offset) <= 1024 * 1000 / 44100
    assert seg.audio_resyncs <= 1 and seg.dropped_packets <= 2


def _synthetic_config() -> bytes:
    # avcC of x264 baseline 320x240 (SPS/PPS from the fixture encoder's output)
    sps = bytes.fromhex("6742c00dda0507ec04400000030040000f03c50aa8")
    pps = bytes.fromhex("68ce0f2c80")
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
        + len(sps).to_bytes(2, "big")
        + sps
        + b"\x01"
        + len(pps).to_bytes(2, "big")
        + pps
    )


def test_long_gop_grows_target_duration_and_is_reported(av_fixture: Fixture) -> None:
    packets = shifted(demux_packets(av_fixture.path), 5, av_fixture.seconds)
    frame = itertools.count()
    long_gop = [
        p._replace(keyframe=next(frame) % 150 == 0) if p.kind == "video" and not p.is_config else p
        for p in packets
    ]
    registry = HlsRegistry(HlsSettings(segment_duration=2.0))
    stream = registry.open("long", 0.0)
    for p in long_gop:
        stream.feed(p, p.dts / 1000)
    seg = stream.renditions["source"].segmenter
    assert seg.gop_seconds == pytest.approx(5.0, abs=0.01)
    assert seg.target_duration == 5
    assert stream.stats["gop_too_long"] is True
    assert stream.stats["gop_seconds"] == pytest.approx(5.0, abs=0.01)
    pl = m3u8.loads(stream.media_playlist("source"))
    assert pl.target_duration == 5
    assert all(s.duration <= 5 for s in pl.segments if s.uri)
    assert all(p.duration <= pl.part_inf.part_target for s in pl.segments for p in s.parts)


def test_non_monotonic_dts_is_repaired_and_counted(av_fixture: Fixture, tmp_path: Path) -> None:
    packets = demux_packets(av_fixture.path)
    vids = [i for i, p in enumerate(packets) if p.kind == "video" and not p.is_config]
    broken = list(packets)
    for i in (vids[40], vids[41], vids[70]):
        p = broken[i]
        broken[i] = p._replace(dts=p.dts - 80, pts=p.pts - 80)
    seg, events = _run(broken, HlsSettings(segment_duration=1.0))
    assert seg.repaired_dts >= 2
    _check_rules(seg, events)
    with _readback(events, tmp_path / "r.mp4") as inp:
        dts = [p.dts for p in inp.demux(video=0) if p.size]
    assert len(dts) == len(vids)
    assert all(b > a for a, b in itertools.pairwise(dts))


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_single_track_streams_declare_only_that_track(
    kind: str, av_fixture: Fixture, tmp_path: Path
) -> None:
    packets = [p for p in demux_packets(av_fixture.path) if p.kind == kind]
    seg, events = _run(packets, HlsSettings(segment_duration=1.0))
    _check_rules(seg, events)
    init = next(e for _, e in events if isinstance(e, InitReady))
    assert (init.has_video, init.has_audio) == (kind == "video", kind == "audio")
    assert init.codecs == ("mp4a.40.2" if kind == "audio" else "avc1.42c00d")
    with _readback(events, tmp_path / "one.mp4") as inp:
        assert [s.type for s in inp.streams] == [kind]
        n = sum(1 for p in inp.demux() if p.size)
    assert n == len([p for p in packets if not p.is_config])
    if kind == "audio":
        assert seg.part_target == pytest.approx(9 * 1024 / 44100, abs=1e-4)
        assert all(e.independent for _, e in events if isinstance(e, PartReady))


def test_reconnect_continues_media_sequence_with_discontinuity(
    av_fixture: Fixture, bframes_fixture: Fixture
) -> None:
    plain = demux_packets(av_fixture.path)
    other = demux_packets(bframes_fixture.path)  # a different avcC (main profile)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=4))
    stream = registry.open("eve", 0.0)
    playlists: list[str] = []
    registry.add_listener(lambda ch: playlists.append(stream.media_playlist("source") or ""))
    clock = 0.0

    def feed(packets: list[MediaPacket]) -> None:
        nonlocal clock
        start = clock
        for p in packets:
            clock = start + max(p.dts, 0) / 1000
            stream.feed(p, clock)

    feed(plain)
    first = m3u8.loads(stream.media_playlist("source"))
    last_msn = first.media_sequence + len(first.segments) - 1
    stream.discontinuity(clock + 1)
    feed(plain)  # same config: same init, timestamps restart at 0
    mid = stream.media_playlist("source")
    assert mid.count("#EXT-X-DISCONTINUITY\n") == 1
    assert mid.count("#EXT-X-MAP") == 1
    stream.discontinuity(clock + 1)
    feed(other)  # new SPS: new init segment
    text = stream.media_playlist("source")
    pl = m3u8.loads(text)
    assert text.count("#EXT-X-MAP") == 2
    assert pl.media_sequence + len(pl.segments) - 1 > last_msn + 4
    # DISCONTINUITY-SEQUENCE counts the tags that slid out of the window
    assert pl.discontinuity_sequence + text.count("#EXT-X-DISCONTINUITY\n") == 2
    seqs = [m3u8.loads(t) for t in playlists if t]
    for a, b in itertools.pairwise(seqs):
        assert b.media_sequence >= a.media_sequence
        assert b.discontinuity_sequence >= a.discontinuity_sequence
    # the output timeline never goes back
    times = [s.program_date_time for s in pl.segments if s.program_date_time is not None]
    assert times == sorted(times)


def test_every_playlist_parses_and_departed_segments_stay_fetchable(
    av_fixture: Fixture,
) -> None:
    packets = shifted(demux_packets(av_fixture.path), 3, av_fixture.seconds)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=3))
    stream = registry.open("frank", 100.0)
    store = stream.renditions["source"].store
    count = 0
    for p in packets:
        stream.feed(p, 100 + max(p.dts, 0) / 1000)
        text = stream.media_playlist("source")
        if text is None:
            continue
        pl = m3u8.loads(text)
        count += 1
        assert pl.version == 9 and pl.target_duration == 1
        assert pl.server_control.can_block_reload == "YES"
        assert pl.server_control.part_hold_back >= 3 * pl.part_inf.part_target
        assert pl.server_control.can_skip_until >= 6 * pl.target_duration
        assert pl.preload_hint is not None
        assert len([s for s in pl.segments if s.uri]) <= 3
        assert pl.segments[0].init_section is not None
        assert pl.program_date_time is not None
    assert count > 300
    gone = store.media_sequence - 1
    now = 100 + 12.5
    assert store.segment(gone) is not None  # left the playlist, still fetchable
    # held in memory, but not part of the window
    assert store.window_bytes < store.bytes_held
    # kept for a segment's duration plus the playlist's (RFC 8216 6.2.2): 3 listed + 1 targets
    assert store.retention() == (3 + 1) * store.target_duration
    registry.expire(now + store.retention() + 1)
    assert store.segment(gone) is None
    assert store.window_bytes == store.bytes_held  # one init only
    assert store.segment(store.media_sequence) is not None


def test_complete_segments_are_held_once_and_joined_only_when_asked_for(
    av_fixture: Fixture,
) -> None:
    """Parts are never copied when their segment completes: a segment is joined into one
    buffer only when asked for whole, and its parts then view that buffer (held once)."""
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=3))
    stream = registry.open("once", 0.0)
    for p in demux_packets(av_fixture.path):
        stream.feed(p, max(p.dts, 0) / 1000)
    store = stream.renditions["source"].store
    done = [s for s in store.segments if s.complete]
    assert done and not store.segments[-1].complete
    everything = [*done, *store.departed.values(), store.segments[-1]]
    assert all(
        s.data is None and all(isinstance(p.data, bytes) for p in s.parts) for s in everything
    )
    inits = sum(len(i.data) for i in store.inits.values())
    held = sum(len(p.data) for s in everything for p in s.parts) + inits
    assert store.bytes_held == held
    # the window: listed segments and the parts of the one in progress, and the newest init
    window = held - inits + len(store.inits[max(store.inits)].data)
    window -= sum(s.size for s in store.departed.values())
    assert store.window_bytes == window <= store.bytes_held
    for seg in [*done, *store.departed.values()]:
        whole = seg.body()
        assert whole is seg.body() and len(seg.parts) > 1  # joined once
        assert all(isinstance(p.data, memoryview) and p.data.obj is whole for p in seg.parts)
        assert b"".join(p.data for p in seg.parts) == whole
    assert store.bytes_held == held  # the same bytes, now one buffer per segment
    assert all(isinstance(p.data, bytes) for p in store.segments[-1].parts)


def test_memory_cap_drops_oldest_media(av_fixture: Fixture) -> None:
    packets = shifted(demux_packets(av_fixture.path), 16, av_fixture.seconds)
    limit = 1024 * 1024
    registry = HlsRegistry(
        HlsSettings(segment_duration=1.0, segment_count=20, max_stream_memory=limit)
    )
    stream = registry.open("greedy", 0.0)
    for p in packets:
        stream.feed(p, max(p.dts, 0) / 1000)
        assert stream.stats["bytes_held"] <= limit
    assert stream.stats["memory_drops"] > 0
    assert m3u8.loads(stream.media_playlist("source")).segments


def test_listeners_hear_every_part_and_the_end(av_fixture: Fixture) -> None:
    registry = HlsRegistry(HlsSettings(segment_duration=1.0))
    heard: list[str] = []
    registry.add_listener(heard.append)
    stream = registry.open("gina", 0.0)
    for p in demux_packets(av_fixture.path):
        stream.feed(p, max(p.dts, 0) / 1000)
    n = len(heard)
    assert n >= stream.stats["parts"]
    stream.end(5.0)
    assert len(heard) > n and set(heard) == {"gina"}
    assert "#EXT-X-ENDLIST" in (stream.media_playlist("source") or "")
    replacement = registry.open("gina", 6.0)
    assert registry.get("gina") is replacement and replacement.broadcast_id != stream.broadcast_id


def test_a_broadcast_resumed_elsewhere_numbers_on_after_a_discontinuity(
    av_fixture: Fixture,
) -> None:
    """A channel that moves to another node: the new broadcast's playlists carry on where the
    old one's stopped (media sequence past every segment it started, one discontinuity later),
    so a player reloading across the move reads forward."""
    packets = demux_packets(av_fixture.path)
    settings = HlsSettings(segment_duration=1.0, segment_count=4)
    old_node, new_node = HlsRegistry(settings), HlsRegistry(settings)
    old = old_node.open("eve", 0.0)
    old.add_rung("low")
    for p in packets:
        old.feed(p, max(p.dts, 0) / 1000)
        old.feed_rung("low", p, max(p.dts, 0) / 1000)
    old.discontinuity(10.0)  # one reconnect on the old node: its tag is in the window
    for p in packets[: len(packets) // 2]:
        old.feed(p, 10.0 + max(p.dts, 0) / 1000)
    before = m3u8.loads(old.media_playlist("source"))
    before_disc = before.discontinuity_sequence + sum(s.discontinuity for s in before.segments)
    assert before_disc == 1
    point = old.resume_point()
    assert point.next_msn == before.media_sequence + len(before.segments)
    assert point.discontinuity_sequence == before_disc + 1
    moved = new_node.open("eve", 20.0, point)
    moved.add_rung("low")
    for p in packets:
        moved.feed(p, 20.0 + max(p.dts, 0) / 1000)
        moved.feed_rung("low", p, 20.0 + max(p.dts, 0) / 1000)
    for name in ("source", "low"):
        after = m3u8.loads(moved.media_playlist(name))
        assert after.media_sequence >= point.next_msn, name
        if name == "source":  # its window has not slid yet
            assert after.media_sequence == point.next_msn
        assert after.discontinuity_sequence == point.discontinuity_sequence, name
        assert not any(s.discontinuity for s in after.segments)  # the sequence says it
        assert all(s.uri.startswith(moved.broadcast_id) for s in after.segments if s.uri)
    assert moved.broadcast_id != old.broadcast_id
    assert new_node.open("ann", 30.0).renditions["source"].store.next_msn == 0


def test_sequence_header_change_mid_stream_gives_new_init_and_discontinuity(
    av_fixture: Fixture, bframes_fixture: Fixture
) -> None:
    plain = demux_packets(av_fixture.path)
    other = demux_packets(bframes_fixture.path)
    end = max(p.dts for p in plain) + 33
    # the same publisher switches encoder settings: new avcC, timestamps keep going
    later = [p._replace(dts=p.dts + end + 67, pts=p.pts + end + 67) for p in other]
    registry = HlsRegistry(HlsSettings(segment_duration=1.0))
    stream = registry.open("henry", 0.0)
    for p in plain + later:
        stream.feed(p, max(p.dts, 0) / 1000)
    text = stream.media_playlist("source") or ""
    assert text.count("#EXT-X-MAP") == 2
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    after = text.split("#EXT-X-DISCONTINUITY\n", 1)[1]
    assert after.startswith("#EXT-X-MAP:") and "-i1.mp4" in after.splitlines()[0]
    inits = stream.renditions["source"].store.inits
    assert [i.codecs.split(",")[0][:7] for i in inits.values()] == ["avc1.42", "avc1.4d"]
    pl = m3u8.loads(text)
    assert all(s.duration <= pl.target_duration for s in pl.segments if s.uri)


def _synthetic_video(
    frames: int, key_every: int, fps: float = 30.0, start_ms: int = 0
) -> list[MediaPacket]:
    """A config packet and ``frames`` tiny H.264 frames (a keyframe every ``key_every``)."""
    out = [MediaPacket("video", "h264", 0, 0, _synthetic_config(), True, True)]
    for k in range(frames):
        t = start_ms + round(k * 1000 / fps)
        out.append(MediaPacket("video", "h264", t, t, b"\x00\x00\x00\x01\x65", k % key_every == 0))
    return out


def _spec_rules(text: str) -> m3u8.M3U8:
    """Parse a media playlist and check the segment-duration rule of RFC 8216bis (EXTINF
    rounded to the nearest integer <= TARGETDURATION); returns the parsed playlist."""
    pl = m3u8.loads(text)
    for s in pl.segments:
        if s.uri:
            assert round(s.duration) <= pl.target_duration, (s.duration, pl.target_duration)
    return pl


def test_target_duration_never_changes_when_the_gop_grows(
    av_fixture: Fixture, tmp_path: Path
) -> None:
    """1 s GOP for 4 s, then 3 s: TARGETDURATION (decided at the second keyframe) stays 1 and
    segments are cut without a keyframe instead (not independent, so no INDEPENDENT-SEGMENTS
    while one is listed)."""
    packets = shifted(demux_packets(av_fixture.path), 5, av_fixture.seconds)
    frame = itertools.count()

    def key(n: int) -> bool:
        return n % 30 == 0 if n < 120 else n % 90 == 0

    grown = [
        p._replace(keyframe=key(next(frame))) if p.kind == "video" and not p.is_config else p
        for p in packets
    ]
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=4))
    stream = registry.open("grow", 0.0)
    targets: set[int] = set()
    saw_dependent = False
    for p in grown:
        stream.feed(p, p.dts / 1000)
        text = stream.media_playlist("source")
        if text is None:
            continue
        pl = _spec_rules(text)
        targets.add(pl.target_duration)
        independent = all(s.parts[0].independent == "YES" for s in pl.segments if s.parts)
        if not independent:
            saw_dependent = True
            assert "#EXT-X-INDEPENDENT-SEGMENTS" not in text
    seg = stream.renditions["source"].segmenter
    print("targets", targets, "forced cuts", seg.forced_cuts, "gop", seg.gop_seconds)
    assert targets == {1}
    assert seg.forced_cuts > 0 and saw_dependent
    assert stream.stats["forced_cuts"] == seg.forced_cuts
    # every frame is still there, in order
    seg2, events = _run(grown, HlsSettings(segment_duration=1.0))
    assert seg2.target_duration == 1
    with _readback(events, tmp_path / "grown.mp4") as inp:
        n = sum(1 for p in inp.demux(video=0) if p.size)
    assert n == sum(1 for p in grown if p.kind == "video" and not p.is_config)


def test_stream_without_periodic_keyframes_gets_capped_target_and_bounded_segments() -> None:
    """One keyframe, then none (intra refresh): the playlist appears once max_target_duration
    of media is in, with that target, and segments keep coming (memory stays bounded)."""
    packets = _synthetic_video(30 * 14, key_every=10**9)
    settings = HlsSettings(segment_duration=1.0, segment_count=2, max_target_duration=3)
    registry = HlsRegistry(settings)
    stream = registry.open("refresh", 0.0)
    first_at: float | None = None
    for p in packets:
        stream.feed(p, p.dts / 1000)
        if first_at is None and stream.media_playlist("source") is not None:
            first_at = p.dts / 1000
    print("playlist from", first_at)
    assert first_at is not None and first_at <= 3.5
    pl = _spec_rules(stream.media_playlist("source") or "")
    assert pl.target_duration == 3
    store = stream.renditions["source"].store
    assert store.next_msn >= 4  # 14 s in segments of at most ~3.4 s
    assert all(s.duration <= 3.4 + 1e-9 for s in store.segments)
    assert len(store.segments) <= settings.segment_count + 1


def test_program_date_time_is_the_arrival_of_the_first_frame(av_fixture: Fixture) -> None:
    """PROGRAM-DATE-TIME of the first segment is the wall clock at which its first frame (the
    first keyframe) reached the server; after a reconnect, that of the first frame after it."""
    packets = demux_packets(av_fixture.path)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=10))
    stream = registry.open("pdt", 0.0)
    first_key = next(p for p in packets if p.kind == "video" and p.keyframe and not p.is_config)
    wall = 1_700_000_000.0
    for p in packets:  # each packet arrives 250 ms after its stamp (a steady network delay)
        stream.feed(p, wall + p.dts / 1000 + 0.25)
    pl = m3u8.loads(stream.media_playlist("source") or "")
    got = pl.segments[0].current_program_date_time.timestamp()
    want = wall + first_key.dts / 1000 + 0.25
    print("pdt", got, "want", want)
    assert got == pytest.approx(want, abs=0.0015)
    # segment n starts n seconds (its media time) later
    for s in pl.segments:
        if s.current_program_date_time is None:  # the segment in progress
            continue
        start = s.current_program_date_time.timestamp() - got
        assert start == pytest.approx(round(start), abs=0.0015)
    later = wall + 100.0
    stream.discontinuity(later)
    for p in packets:
        stream.feed(p, later + p.dts / 1000 + 0.1)
    text = stream.media_playlist("source") or ""
    after = m3u8.loads(text.split("#EXT-X-DISCONTINUITY\n", 1)[1])
    assert after.segments[0].program_date_time is not None
    got2 = after.segments[0].program_date_time.timestamp()
    print("after reconnect", got2, "want", later + first_key.dts / 1000 + 0.1)
    assert got2 == pytest.approx(later + first_key.dts / 1000 + 0.1, abs=0.0015)


def test_a_late_first_keyframe_does_not_put_the_clock_ahead(av_fixture: Fixture) -> None:
    """The first keyframe is handled 0.6 s late (a busy server), every later packet 50 ms after
    its stamp: PROGRAM-DATE-TIME of the segments that follow is that steady arrival, not the
    late one (which would put the playlist's clock ahead of the wall clock for the whole
    broadcast); after the first seconds the anchor stays put."""
    packets = demux_packets(av_fixture.path)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=10))
    stream = registry.open("late", 0.0)
    first_key = next(p for p in packets if p.kind == "video" and p.keyframe and not p.is_config)
    wall = 1_700_000_000.0
    for p in packets:
        late = 0.6 if p is first_key else 0.0
        stream.feed(p, wall + p.dts / 1000 + 0.05 + late)
    pl = m3u8.loads(stream.media_playlist("source") or "")
    listed = [s for s in pl.segments if s.current_program_date_time is not None]
    assert listed
    for s in listed:
        start = s.current_program_date_time.timestamp()
        media = round(start - wall - first_key.dts / 1000 - 0.05)
        print(
            "segment",
            s.uri,
            "pdt - steady arrival",
            start - (wall + first_key.dts / 1000 + 0.05 + media),
        )
        assert start == pytest.approx(wall + first_key.dts / 1000 + 0.05 + media, abs=0.0015)


def test_the_clock_is_not_pulled_back_after_the_first_seconds(av_fixture: Fixture) -> None:
    """A packet that arrives early long after the start (a burst after a stall) leaves the
    anchor alone: only the first seconds of a broadcast set it."""
    packets = demux_packets(av_fixture.path)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=20))
    stream = registry.open("burst", 0.0)
    first_key = next(p for p in packets if p.kind == "video" and p.keyframe and not p.is_config)
    wall = 1_700_000_000.0
    cut = first_key.dts + 5000
    for p in packets:  # steady 0.2 s delay, then from 5 s on everything 0.15 s early
        stream.feed(p, wall + p.dts / 1000 + (0.2 if p.dts < cut else 0.05))
    pl = m3u8.loads(stream.media_playlist("source") or "")
    for s in pl.segments:
        if s.program_date_time is not None:
            media = s.program_date_time.timestamp() - (wall + first_key.dts / 1000 + 0.2)
            assert media == pytest.approx(round(media), abs=0.0015)


def test_delta_updates_keep_the_tags_of_the_first_segment_they_list(av_fixture: Fixture) -> None:
    """Every delta update lists the same segments as the full playlist minus the skipped ones,
    with the same discontinuities, and an EXT-X-MAP before the first one it lists."""
    one = demux_packets(av_fixture.path)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=12))
    stream = registry.open("delta", 0.0)
    checked = with_disc = 0
    clock = 0.0
    for round_ in range(3):
        if round_:
            stream.discontinuity(clock)
        start = clock
        for p in one:
            clock = start + max(p.dts, 0) / 1000
            stream.feed(p, clock)
            delta_text = stream.media_playlist("source", skip=True) or ""
            if "#EXT-X-SKIP" not in delta_text:
                continue
            full = m3u8.loads(stream.media_playlist("source") or "")
            delta = m3u8.loads(delta_text)
            skipped = delta.skip.skipped_segments
            kept = full.segments[skipped:]
            assert [s.uri for s in delta.segments] == [s.uri for s in kept]
            assert [s.discontinuity for s in delta.segments] == [s.discontinuity for s in kept]
            assert delta.segments[0].init_section is not None
            checked += 1
            with_disc += kept[0].discontinuity
    print("delta updates checked", checked, "starting at a discontinuity", with_disc)
    assert checked > 50 and with_disc > 0


@pytest.mark.parametrize(("fps", "frames_per_part"), [(30.0, 6), (30000 / 1001, 6), (60.0, 12)])
def test_millisecond_stamps_give_exact_durations_and_no_holes(
    fps: float, frames_per_part: int
) -> None:
    # OBS at 30 fps stamps 0, 33, 67, 100 ms ...: each part must last 6 frames exactly, not
    # 6 x the rounded 33 ms gap, and each part must start where the one before it ended. This
    # SPS has no VUI timing, so 29.97 is first taken for 30 and corrected once the stamps drift.
    packets = _synthetic_video(600, round(2 * fps), fps=fps)
    seg, events = _run(packets, HlsSettings(segment_duration=2.0))
    _check_rules(seg, events)
    parts = [e for _, e in events if isinstance(e, PartReady)]
    for a, b in itertools.pairwise(parts):
        assert a.media_time + a.duration == pytest.approx(b.media_time, abs=1e-9)
    part = round(frames_per_part / fps * 90000) / 90000
    later = [p for p in parts if p.media_time > 2.5][:-1]  # past the correction; not the end
    assert later and {round(p.duration, 7) for p in later} == {round(part, 7)}
    reg = HlsRegistry(HlsSettings(segment_duration=2.0))
    stream = reg.open("obs", 0.0)
    for p in packets:
        stream.feed(p, 0.0)
    text = stream.media_playlist("source")
    assert text is not None
    extinf = [line for line in text.splitlines() if line.startswith("#EXTINF")]
    assert extinf and set(extinf[1:]) == {f"#EXTINF:{10 * part:.5f},"}, extinf
