"""Every codec through the real segmenter, into fMP4 and MPEG-TS, read back by FFmpeg's mp4 and
mpegts demuxers (through PyAV) frame for frame; the Cython core and its twin agree byte for
byte on the same packets; the codec configuration readers parse real and hostile records."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import av
import av.logging
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch import _mux_py
from kitch.hls import codecs
from kitch.hls.events import InitReady, PartReady
from kitch.hls.init_segment import TrackInfo, init_segment, opus_dops
from kitch.hls.segmenter import Segmenter
from kitch.hls.settings import HlsSettings
from kitch.media import MediaPacket
from kitch.twins import NATIVE
from kitch.twins import mux as _mux
from tests.hls.clips import clip_packets, make_clip
from tests.hls.packets import config, demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.native

FMP4_CASES = [
    ("h264", "aac"),
    ("hevc", "opus"),
    ("hevc", "aac"),
    ("av1", None),
    ("vp9", "opus"),
    ("av1", "opus"),
    (None, "aac"),
    (None, "opus"),
    ("vp9", None),
]
TS_CASES = [("h264", "aac"), ("hevc", "aac"), ("hevc", "opus"), ("h264", None), (None, "aac")]


def _segment(packets: list[MediaPacket], fmt: str) -> tuple[list[InitReady], bytes]:
    seg = Segmenter(HlsSettings(segment_duration=0.4, part_duration=0.1, format=fmt))  # type: ignore[arg-type]
    events = [e for p in packets for e in seg.feed(p)] + seg.end()
    inits = [e for e in events if isinstance(e, InitReady)]
    body = b"".join(e.data for e in events if isinstance(e, PartReady))
    return inits, inits[0].data + body


def _read(path: Path) -> tuple[dict[str, list[av.Packet]], int, list[str]]:
    """Packets by stream type, decoded video frames, FFmpeg errors."""
    got: dict[str, list[av.Packet]] = {"video": [], "audio": []}
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs, av.open(str(path)) as inp:
            decoded = 0
            for pkt in inp.demux():
                if pkt.size:
                    got[pkt.stream.type].append(pkt)
                if pkt.stream.type == "video":
                    decoded += len(pkt.decode())
    finally:
        av.logging.set_level(None)
    errors = [f"{name}: {msg}" for level, name, msg in logs if level <= av.logging.ERROR]
    return got, decoded, errors


def _media(packets: list[MediaPacket], kind: str) -> list[MediaPacket]:
    return [p for p in packets if p.kind == kind and not p.is_config]


def _annexb(sample: bytes) -> bytes:
    """4-byte-length-prefixed NAL units -> Annex B, written out here, apart from the muxer."""
    out, i = bytearray(), 0
    while i < len(sample):
        size = int.from_bytes(sample[i : i + 4], "big")
        out += b"\x00\x00\x00\x01" + sample[i + 4 : i + 4 + size]
        i += 4 + size
    return bytes(out)


def _check_video(packets: list[MediaPacket], got: list[av.Packet], ts: bool) -> None:
    want = _media(packets, "video")
    assert len(got) == len(want)
    assert [bool(p.is_keyframe) for p in got] == [p.keyframe for p in want]
    base = got[0].dts
    scale = 90000 * got[0].time_base
    # millisecond stamps land on the clips' 30 fps frame grid (3000 ticks a frame)
    assert [round((g.dts - base) * scale) for g in got] == [
        round((w.dts - want[0].dts) * 30 / 1000) * 3000 for w in want
    ]
    assert [round((g.pts - g.dts) * scale) for g in got] == [
        round((w.pts - w.dts) * 30 / 1000) * 3000 for w in want
    ]
    for g, w in zip(got, want, strict=True):
        if ts and w.codec in ("h264", "hevc"):  # Annex B with an AUD (+ parameter sets) first
            assert bytes(g).endswith(_annexb(w.data))
        else:
            assert bytes(g) == w.data


def _check_audio(packets: list[MediaPacket], got: list[av.Packet], ts: bool) -> None:
    want = _media(packets, "audio")
    video = _media(packets, "video")
    # audio before the first keyframe or after the last video frame is dropped by design
    expected = [w for w in want if not video or video[0].dts <= w.dts < video[-1].dts]
    assert len(got) >= len(expected)
    first = next(i for i, w in enumerate(want) if w.data in bytes(got[0]))
    for g, w in zip(got, want[first:], strict=False):
        data = bytes(g)
        if ts and w.codec == "aac":
            data = data[7:]  # ADTS header
        assert data == w.data
    steps = {
        round(
            (b.pts - a.pts)
            * a.time_base
            * codecs.audio_info(w.codec, config(packets, "audio")).sample_rate
        )
        for (a, b), w in zip(itertools.pairwise(got), want[first:], strict=False)
    }
    assert steps <= {1024, 960}, steps


@pytest.mark.parametrize(("video", "audio"), FMP4_CASES, ids=lambda c: str(c))
def test_fmp4_reads_back_frame_for_frame(
    video: str | None, audio: str | None, media_dir: Path, tmp_path: Path
) -> None:
    packets = clip_packets(make_clip(media_dir, video, audio))
    inits, data = _segment(packets, "fmp4")
    assert inits[0].container == "fmp4"
    if video == "hevc":  # hvc1 (parameter sets in hvcC only) is what Apple's players take
        assert b"hvc1" in inits[0].data and b"hev1" not in inits[0].data
    path = tmp_path / "out.mp4"
    path.write_bytes(data)
    got, decoded, errors = _read(path)
    assert errors == []
    if video is not None:
        _check_video(packets, got["video"], ts=False)
        assert decoded == len(got["video"])
    else:
        assert got["video"] == []
    if audio is not None:
        _check_audio(packets, got["audio"], ts=False)
    else:
        assert got["audio"] == []


@pytest.mark.parametrize(("video", "audio"), TS_CASES, ids=lambda c: str(c))
def test_mpegts_reads_back_frame_for_frame(
    video: str | None, audio: str | None, media_dir: Path, tmp_path: Path
) -> None:
    packets = clip_packets(make_clip(media_dir, video, audio))
    inits, data = _segment(packets, "ts")
    assert inits[0].container == "ts" and inits[0].data == b""
    assert len(data) % 188 == 0 and data[::188] == b"\x47" * (len(data) // 188)
    path = tmp_path / "out.ts"
    path.write_bytes(data)
    got, decoded, errors = _read(path)
    assert errors == []
    if video is not None:
        _check_video(packets, got["video"], ts=True)
        assert decoded == len(got["video"])
    else:
        assert got["video"] == []
    if audio is not None:
        _check_audio(packets, got["audio"], ts=True)
    else:
        assert got["audio"] == []


def test_ts_format_keeps_av1_and_vp9_in_fmp4(media_dir: Path) -> None:
    packets = clip_packets(make_clip(media_dir, "av1", "opus"))
    inits, data = _segment(packets, "ts")
    assert inits[0].container == "fmp4" and data[4:8] == b"ftyp"
    assert inits[0].codecs == "av01.0.00M.08,opus"


def test_codec_strings_from_real_configs(media_dir: Path) -> None:
    want = {"hevc": "hvc1.1.6.L60.90", "av1": "av01.0.00M.08", "vp9": "vp09.00.10.08"}
    for codec, text in want.items():
        packets = clip_packets(make_clip(media_dir, codec, None))
        key = next(p.data for p in packets if p.kind == "video" and p.keyframe and not p.is_config)
        info = codecs.video_info(codec, config(packets, "video"), key)
        assert (info.codec_string, info.width, info.height) == (text, 160, 120)
    # Main profile, level 3.1, progressive-source constraint flag: Apple's example string
    hvcc = bytes((1, 0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93)) + bytes(10)
    assert codecs.hevc_codec_string(hvcc) == "hvc1.1.6.L93.B0"
    assert codecs.opus_samples(b"\xfc") == 960 and codecs.opus_samples(b"\x1b\x02") == 5760


@pytest.mark.skipif(not NATIVE, reason="cross-check needs the Cython build")
@pytest.mark.parametrize(("video", "audio"), TS_CASES, ids=lambda c: str(c))
def test_twin_writes_the_same_ts_bytes(
    video: str | None, audio: str | None, media_dir: Path
) -> None:
    packets = clip_packets(make_clip(media_dir, video, audio))
    vcfg = config(packets, "video") if video else b""
    acfg = config(packets, "audio") if audio else b""
    params, ls = codecs.parameter_sets(video, vcfg) if video else (b"", 4)
    muxers = [impl.TsMuxer(video, params, ls, audio, acfg) for impl in (_mux, _mux_py)]
    outs: list[list[bytes]] = [[], []]
    for m, out in zip(muxers, outs, strict=True):
        out.append(m.psi())
        for p in packets:
            if p.is_config:
                continue
            if p.kind == "video":
                out.append(m.video(p.data, (p.pts + 100) * 90, (p.dts + 100) * 90, p.keyframe))
            else:
                out.append(m.audio(p.data, (p.dts + 100) * 90 + 2**33 - 5))
        out.append(m.psi())
    assert len(outs[0]) > 2 and outs[0] == outs[1]


@pytest.mark.skipif(not NATIVE, reason="cross-check needs the Cython build")
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 2**40), st.integers(-5000, 5000), st.booleans(),
       st.sampled_from(["h264", "hevc"]), st.integers(1, 4))  # fmt: skip
def test_twin_ts_video_parses_or_raises_alike(
    data: bytes, dts: int, cts: int, key: bool, codec: str, ls: int
) -> None:
    results = []
    for impl in (_mux, _mux_py):
        m = impl.TsMuxer(codec, b"\x00\x00\x00\x01\x67\x42", ls, "aac", b"\x12\x10")
        try:
            results.append(m.video(data, dts + cts, dts, key) + m.audio(data[:300], dts))
        except impl.MuxError:
            results.append(b"MuxError")
    assert results[0] == results[1]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_codec_readers_parse_or_raise_mux_error(data: bytes) -> None:
    for fn in (
        codecs.parse_avc_config,
        codecs.avc_codec_string,
        lambda d: codecs.parse_sps(b"\x67" + d),
        codecs.annexb_to_avcc,
        codecs.parse_asc,
        codecs.aac_codec_string,
        codecs.parse_hvcc,
        codecs.hevc_codec_string,
        lambda d: codecs.parse_hevc_sps(b"\x42\x01" + d),
        lambda d: codecs.av1_info(b"\x81\x00\x0c\x00" + d, d),
        codecs.parse_av1_sequence_header,
        codecs.vp9_codec_string,
        codecs.parse_vp9_keyframe,
        codecs.parse_opus_head,
        lambda d: codecs.parse_opus_head(b"OpusHead" + d),
        codecs.opus_samples,
        opus_dops,
        lambda d: _mux.adts_header(d, 100),
    ):
        with contextlib.suppress(_mux.MuxError):
            fn(data)


# ---- H.264 and AAC readers, the init segment ---------------------------------------------------


def test_avc_and_aac_readers_on_real_configs(av_fixture: Fixture, bframes_fixture: Fixture) -> None:
    plain = demux_packets(av_fixture.path)
    bfr = demux_packets(bframes_fixture.path)
    assert codecs.avc_codec_string(plain[0].data) == "avc1.42c00d"
    assert codecs.avc_codec_string(bfr[0].data).startswith("avc1.4d")
    sps = codecs.parse_sps(codecs.parse_avc_config(plain[0].data)[0][0])
    assert (sps["width"], sps["height"], sps["profile"], sps["level"]) == (320, 240, 66, 13)
    assert codecs.aac_codec_string(plain[1].data) == "mp4a.40.2"
    assert codecs.parse_asc(plain[1].data) == (2, 44100, 2)


def test_sps_cropping_1080p() -> None:
    # x264 1920x1080 High profile SPS (1088 coded lines, cropped by 8)
    sps = bytes.fromhex("6764002aacd940780227e5c04400000303ec0000ea603c60c658")
    info = codecs.parse_sps(sps)
    assert (info["width"], info["height"], info["profile"], info["level"]) == (1920, 1080, 100, 42)


def test_sps_frame_rate_from_vui_timing() -> None:
    # libx264 320x240 baseline at 30 fps (the test fixture's SPS): VUI timing 1/60 per field
    sps = bytes.fromhex("6742c00dda0507e840000003004000000f23c50aa8")
    info = codecs.parse_sps(sps)
    assert (info["width"], info["height"], info["fps"]) == (320, 240, 30.0)
    # the same SPS cut inside its VUI: the picture size stands, the frame rate is unknown
    info = codecs.parse_sps(sps[:12])
    assert (info["width"], info["height"], info["fps"]) == (320, 240, 0.0)


def test_sps_without_a_usable_picture_size_is_refused() -> None:
    # cropping larger than the coded picture (a fuzzed SPS once gave a negative height)
    with pytest.raises(_mux.MuxError, match="picture size"):
        codecs.parse_sps(bytes.fromhex("6742c01eda02802dd80880000003008000001e478b1750"))


def test_annexb_to_avcc() -> None:
    assert codecs.annexb_to_avcc(b"\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x65\xaa") == (
        b"\x00\x00\x00\x02\x09\xf0\x00\x00\x00\x02\x65\xaa"
    )
    assert codecs.annexb_to_avcc(b"no start code") == b""


@given(
    st.lists(
        st.binary(min_size=1, max_size=40).filter(lambda n: b"\x00\x00" not in n and n[-1] != 0),
        max_size=8,
    ),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_annexb_to_avcc_takes_every_nal_unit_whatever_the_start_codes(
    nals: list[bytes], long_codes: list[bool]
) -> None:
    # NAL units without 00 00 inside (as emulation prevention guarantees) joined by 3- or
    # 4-byte start codes come back each with its 4-byte length, in order
    stream = b"".join(
        (b"\x00\x00\x00\x01" if long else b"\x00\x00\x01") + nal
        for nal, long in zip(nals, long_codes, strict=False)
    )
    want = b"".join(len(n).to_bytes(4, "big") + n for n in nals)
    assert codecs.annexb_to_avcc(stream) == want


def test_unescape_rbsp_drops_emulation_prevention_bytes() -> None:
    assert codecs.unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x03") == (
        b"\x00\x00\x01\x00\x00\x00\x03"
    )
    assert codecs.unescape_rbsp(b"\x03\x00\x03") == b"\x03\x00\x03"


@pytest.mark.parametrize("bad", [b"", b"\x01", b"\x02" * 10, b"\x01\x42\xc0\x0d\xff\xe1\x00\x30"])
def test_bad_avc_config_raises_mux_error(bad: bytes) -> None:
    with pytest.raises(_mux.MuxError):
        codecs.parse_avc_config(bad)


def test_opus_dops_is_the_big_endian_opus_head() -> None:
    head = b"OpusHead" + bytes((1, 2)) + (312).to_bytes(2, "little")
    head += (48000).to_bytes(4, "little") + (-256).to_bytes(2, "little", signed=True) + b"\x00"
    assert opus_dops(head) == bytes((0, 2)) + bytes.fromhex("0138 0000bb80 ff00 00")
    with pytest.raises(_mux.MuxError):
        opus_dops(head[:8] + b"\x01\x00" + head[10:])  # no channels


def test_init_segment_refuses_what_it_cannot_describe() -> None:
    with pytest.raises(_mux.MuxError, match="at least one track"):
        init_segment([])
    with pytest.raises(_mux.MuxError, match="width and height"):
        init_segment([TrackInfo(1, "video", "h264", 90000, b"\x01")])
    with pytest.raises(_mux.MuxError, match="unsupported codec"):
        init_segment([TrackInfo(1, "audio", "mp3", 44100, b"")])
