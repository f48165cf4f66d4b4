"""The ladder core on real media: decode once, scale and encode each rung with libx264."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest

from kitch.hls.codecs import annexb_to_avcc
from kitch.media import MediaPacket
from kitch.transcode.ladder import (
    DEFAULT_RUNGS,
    Rung,
    VideoDecoder,
    VideoLadder,
    avc_config_from_annexb,
    h264_level,
    plan_ladder,
)
from tests.hls.packets import demux_packets
from tests.support.media import make_fixture
from tests.transcode.test_thumbnails import VIDEO_CODECS, keyframe_of


def test_plan_skips_rungs_at_or_above_the_source_and_keeps_the_aspect_ratio() -> None:
    plans = plan_ladder(1920, 1080, 60, DEFAULT_RUNGS)
    assert [(p.name, p.width, p.height, p.fps) for p in plans] == [
        ("720p", 1280, 720, 30),
        ("480p", 854, 480, 30),
        ("360p", 640, 360, 30),
    ]
    assert [p.name for p in plan_ladder(1280, 720, 30, DEFAULT_RUNGS)] == ["480p", "360p"]
    assert plan_ladder(640, 360, 30, DEFAULT_RUNGS) == []
    # 4:3 and odd sizes give even widths
    (p,) = plan_ladder(1440, 1080, 25, [Rung("361", 361, 500)])
    assert (p.width, p.height, p.fps) == (480, 360, 25)


def test_levels_fit_phones() -> None:
    assert h264_level(1280, 720, 30, 3000) == 31
    assert h264_level(854, 480, 30, 1400) == 31  # 1620 macroblocks x 30 > level 3.0's rate
    assert h264_level(640, 360, 30, 800) == 30
    assert h264_level(1280, 720, 60, 4500) == 32
    assert h264_level(1920, 1080, 30, 6000) == 40


def _decode_rung(config: MediaPacket, packets: list[MediaPacket]) -> list[av.VideoFrame]:
    """Decode a rung's output with an independent FFmpeg decoder (through an MP4 file)."""
    dec = av.CodecContext.create("h264", "r")
    dec.extradata = config.data
    frames = []
    for p in packets:
        pkt = av.Packet(p.data)
        pkt.pts, pkt.dts = p.pts, p.dts
        frames += dec.decode(pkt)
    frames += dec.decode(None)
    return frames


@pytest.mark.parametrize("bframes", [0, 2])
def test_rungs_have_idrs_where_the_source_has_keyframes(media_dir: Path, bframes: int) -> None:
    fx = make_fixture(
        media_dir,
        seconds=3,
        width=640,
        height=360,
        gop=20,
        bframes=bframes,
        audio=False,
        container="mp4",
    )
    packets = demux_packets(fx.path)
    config, media = packets[0], [p for p in packets if not p.is_config and p.kind == "video"]
    plans = plan_ladder(640, 360, 30, [Rung("240p", 240, 400), Rung("160p", 160, 200)])
    ladder = VideoLadder(config, plans)
    out: dict[str, list[MediaPacket]] = {p.name: [] for p in plans}
    for pkt in [*media, None]:
        for name, got in ladder.feed(pkt).items():
            out[name] += got
    source_keys = [p.dts for p in media if p.keyframe]
    assert len(source_keys) >= 4
    for plan in plans:
        got = out[plan.name]
        assert got[0].is_config
        rung_config, rung_media = got[0], got[1:]
        assert [p.dts for p in rung_media if p.keyframe] == source_keys, plan.name
        assert all(p.dts <= p.pts for p in rung_media)
        assert [p.dts for p in rung_media] == sorted(p.dts for p in rung_media)
        frames = _decode_rung(rung_config, rung_media)
        assert len(frames) == len(media), plan.name
        assert {(f.width, f.height) for f in frames} == {(plan.width, plan.height)}
        seconds = (rung_media[-1].pts - rung_media[0].pts) / 1000 + 1 / 30
        kbps = sum(len(p.data) for p in rung_media) * 8 / seconds / 1000
        print(f"{plan.name}: {len(frames)} frames, {kbps:.0f} kbit/s (aim {plan.rung.video_kbps})")
        assert kbps < plan.rung.video_kbps * 2


def test_frame_rate_cap_drops_frames_but_never_keyframes(media_dir: Path) -> None:
    fx = make_fixture(media_dir, seconds=2, width=320, height=240, fps=60, gop=30, audio=False)
    packets = demux_packets(fx.path)
    config, media = packets[0], [p for p in packets if not p.is_config]
    (plan,) = plan_ladder(320, 240, 60, [Rung("120p", 120, 200, max_fps=30)])
    ladder = VideoLadder(config, [plan])
    got = [p for pkt in [*media, None] for p in ladder.feed(pkt).get("120p", [])]
    frames = [p for p in got if not p.is_config]
    assert abs(len(frames) - len(media) / 2) <= 2, (len(frames), len(media))
    assert [p.dts for p in frames if p.keyframe] == [p.dts for p in media if p.keyframe]


def _avcc_packet(p: av.Packet) -> av.Packet:
    return av.Packet(annexb_to_avcc(bytes(p)))


def test_avc_config_from_annexb_round_trips_through_ffmpeg() -> None:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 64, 64, "yuv420p"
    enc.time_base = av.time_base  # any
    enc.flags |= av.codec.context.Flags.global_header
    enc.options = {"profile": "high"}
    enc.open()
    avcc = avc_config_from_annexb(bytes(enc.extradata))
    assert avcc[0] == 1 and avcc[1] == 100 and avcc[4] == 0xFF and avcc[5] == 0xE1
    assert avcc[-4:] == bytes([0xFD, 0xF8, 0xF8, 0])  # high profile: 4:2:0, 8 bit
    dec = av.CodecContext.create("h264", "r")
    dec.extradata = avcc  # FFmpeg accepts the record as it would from an MP4 file
    frame = av.VideoFrame(64, 64, "yuv420p")
    frame.pts = 0
    encoded = enc.encode(frame) + enc.encode(None)
    frames = [f for p in encoded for f in dec.decode(_avcc_packet(p))] + dec.decode(None)
    assert [(f.width, f.height) for f in frames] == [(64, 64)]


def test_opus_becomes_aac_once_with_sample_counted_timestamps(media_dir: Path) -> None:
    from kitch.hls.codecs import aac_info
    from kitch.transcode.audio import AudioToAac
    from tests.hls.clips import clip_packets, make_clip

    packets = clip_packets(make_clip(media_dir, None, "opus"))
    config = next(p for p in packets if p.is_config and p.kind == "audio")
    audio = [p for p in packets if not p.is_config and p.kind == "audio"]
    to_aac = AudioToAac(config)
    out = [q for p in [*audio, None] for q in to_aac.feed(p)]
    assert out[0].is_config and aac_info(out[0].data).sample_rate == 48000
    frames = out[1:]
    source_ms = audio[-1].dts - audio[0].dts + 20
    assert abs(len(frames) * 1024 / 48 - source_ms) < 1024 / 48 * 3, (len(frames), source_ms)
    steps = {b.dts - a.dts for a, b in itertools.pairwise(frames)}
    assert steps <= {21, 22}  # 1024 samples at 48 kHz = 21.33 ms, counted in samples
    dec = av.CodecContext.create("aac", "r")
    dec.extradata = out[0].data
    decoded = [f for p in frames for f in dec.decode(av.Packet(p.data))]
    assert decoded and decoded[0].sample_rate == 48000


def test_the_default_ladder_setting_is_the_default_rungs() -> None:
    from kitch.config import DEFAULT_LADDER, parse_ladder

    assert parse_ladder(DEFAULT_LADDER) == [
        (r.name, r.height, r.video_kbps, r.max_fps, r.preset) for r in DEFAULT_RUNGS
    ]


@pytest.mark.parametrize(("vcodec", "codec"), VIDEO_CODECS)
def test_the_ladder_decodes_every_codec_the_ingest_takes(
    media_dir: Path, vcodec: str, codec: str
) -> None:
    """Each source codec opens a software decoder (AV1: dav1d, not FFmpeg's hardware-only
    "av1") and its keyframe comes out as a picture."""
    config, key = keyframe_of(media_dir, vcodec, codec)
    decoder = VideoDecoder(config)
    frames = decoder.decode(key) + decoder.decode(None)
    assert frames and frames[0].keyframe
    assert (frames[0].frame.width, frames[0].frame.height) == (320, 240)
