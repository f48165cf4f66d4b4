"""The fMP4 writer, read back by FFmpeg's mp4 demuxer (through PyAV) frame for frame."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch import _mux_py
from kitch.media import MediaPacket
from kitch.twins import NATIVE
from kitch.twins import mux as _mux
from tests.hls.packets import demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.native


def test_the_selected_core_matches_the_environment() -> None:
    assert (os.environ.get("KITCH_PUREPYTHON") != "1") == NATIVE


def _tracks(packets: list[MediaPacket]) -> tuple[_mux.TrackInfo, _mux.TrackInfo]:
    vcfg = next(p.data for p in packets if p.is_config and p.kind == "video")
    acfg = next(p.data for p in packets if p.is_config and p.kind == "audio")
    sps = _mux.parse_sps(_mux.parse_avc_config(vcfg)[0][0])
    _, rate, channels = _mux.parse_asc(acfg)
    video = _mux.TrackInfo(1, "video", "h264", 90000, vcfg, sps["width"], sps["height"])
    audio = _mux.TrackInfo(2, "audio", "aac", rate, acfg, sample_rate=rate, channels=channels)
    return video, audio


def _mux_file(packets: list[MediaPacket], path: Path, per_fragment: int) -> None:
    """Mux packets into init + fragments of ``per_fragment`` video frames; audio on sample
    counts. Returns nothing: the file is the output."""
    video, audio = _tracks(packets)
    vids = [p for p in packets if p.kind == "video" and not p.is_config]
    auds = [p for p in packets if p.kind == "audio" and not p.is_config]
    base = min(vids[0].dts, auds[0].dts)
    chunks = [b"" + _mux.init_segment([video, audio])]
    seq = 1
    a_index = 0
    for start in range(0, len(vids), per_fragment):
        group = vids[start : start + per_fragment]
        samples = []
        for i, p in enumerate(group):
            nxt = vids[start + i + 1].dts if start + i + 1 < len(vids) else p.dts + 33
            samples.append(((p.data), (nxt - p.dts) * 90, (p.pts - p.dts) * 90, p.keyframe))
        last = start + per_fragment >= len(vids)
        end_ms = group[-1].dts + 33 if not last else 2**62
        a_samples = []
        a_start = a_index * 1024
        while a_index < len(auds) and auds[a_index].dts < end_ms:
            a_samples.append((auds[a_index].data, 1024, 0, True))
            a_index += 1
        runs = [(1, (group[0].dts - base) * 90, samples)]
        if a_samples:
            runs.append((2, a_start, a_samples))
        chunks.append(_mux.fragment(seq, runs))
        seq += 1
    path.write_bytes(b"".join(chunks))


@pytest.mark.parametrize("which", ["plain", "bframes"])
def test_fragmented_mp4_reads_back_frame_for_frame(
    which: str, av_fixture: Fixture, bframes_fixture: Fixture, tmp_path: Path
) -> None:
    fx = av_fixture if which == "plain" else bframes_fixture
    packets = demux_packets(fx.path)
    out = tmp_path / "out.mp4"
    _mux_file(packets, out, per_fragment=6)
    vids = [p for p in packets if p.kind == "video" and not p.is_config]
    auds = [p for p in packets if p.kind == "audio" and not p.is_config]
    base = min(vids[0].dts, auds[0].dts)
    got_v: list[tuple[int, int, bool, bytes]] = []
    got_a: list[tuple[int, bytes]] = []
    with av.open(str(out)) as inp:
        vs, as_ = inp.streams.video[0], inp.streams.audio[0]
        assert (vs.codec_context.width, vs.codec_context.height) == (fx.width, fx.height)
        assert as_.codec_context.sample_rate == 44100
        assert vs.time_base.denominator == 90000
        for pkt in inp.demux():
            if pkt.size == 0:
                continue
            if pkt.stream.type == "video":
                got_v.append((pkt.dts, pkt.pts, bool(pkt.is_keyframe), bytes(pkt)))
            else:
                got_a.append((pkt.pts, bytes(pkt)))
        # every frame decodes without error
        inp.seek(0)
        decoded = sum(1 for _ in inp.decode(video=0))
    assert decoded == len(vids)
    want_v = [((p.dts - base) * 90, (p.pts - base) * 90, p.keyframe, p.data) for p in vids]
    assert got_v == want_v
    assert got_a == [(i * 1024, p.data) for i, p in enumerate(auds)]
    if which == "bframes":
        assert any(p.pts < p.dts + 0 or p.pts != p.dts for p in vids)


def test_negative_composition_offset_round_trips(av_fixture: Fixture, tmp_path: Path) -> None:
    packets = demux_packets(av_fixture.path)
    video, _ = _tracks(packets)
    vids = [p for p in packets if p.kind == "video" and not p.is_config][:3]
    samples = [
        (p.data, 3000, off, p.keyframe) for p, off in zip(vids, (0, -1500, 1500), strict=True)
    ]
    data = _mux.init_segment([video]) + _mux.fragment(7, [(1, 2**33 + 10, samples)])
    (tmp_path / "neg.mp4").write_bytes(data)
    with av.open(str(tmp_path / "neg.mp4")) as inp:
        pkts = [(p.dts, p.pts) for p in inp.demux() if p.size]
    base = 2**33 + 10
    assert [d for d, _ in pkts] == [base, base + 3000, base + 6000]
    # FFmpeg shifts all pts by the most negative offset; the relative presentation order holds
    assert [p - pkts[0][1] for _, p in pkts] == [0, 1500, 7500]


def test_codec_strings_from_real_config(av_fixture: Fixture, bframes_fixture: Fixture) -> None:
    plain = demux_packets(av_fixture.path)
    bfr = demux_packets(bframes_fixture.path)
    assert _mux.avc_codec_string(plain[0].data) == "avc1.42c00d"
    assert _mux.avc_codec_string(bfr[0].data).startswith("avc1.4d")
    sps = _mux.parse_sps(_mux.parse_avc_config(plain[0].data)[0][0])
    assert (sps["width"], sps["height"], sps["profile"], sps["level"]) == (320, 240, 66, 13)
    assert _mux.aac_codec_string(plain[1].data) == "mp4a.40.2"
    assert _mux.parse_asc(plain[1].data) == (2, 44100, 2)


def test_sps_cropping_1080p() -> None:
    # x264 1920x1080 High profile SPS (1088 coded lines, cropped by 8)
    sps = bytes.fromhex("6764002aacd940780227e5c04400000303ec0000ea603c60c658")
    info = _mux.parse_sps(sps)
    assert (info["width"], info["height"], info["profile"], info["level"]) == (1920, 1080, 100, 42)


def test_annexb_round_trip() -> None:
    avcc = b"\x00\x00\x00\x02\x09\xf0" + b"\x00\x00\x00\x05\x65\x00\x00\x01\x88"
    annexb = _mux.avcc_to_annexb(avcc)
    assert annexb == b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x65\x00\x00\x01\x88"
    assert _mux.annexb_to_avcc(b"\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x65\xaa") == (
        b"\x00\x00\x00\x02\x09\xf0\x00\x00\x00\x02\x65\xaa"
    )
    with pytest.raises(_mux.MuxError):
        _mux.avcc_to_annexb(b"\x00\x00\x00\x09\x65")


def test_unescape_rbsp_drops_emulation_prevention_bytes() -> None:
    assert _mux.unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x03") == (
        b"\x00\x00\x01\x00\x00\x00\x03"
    )
    assert _mux.unescape_rbsp(b"\x03\x00\x03") == b"\x03\x00\x03"


@pytest.mark.parametrize("bad", [b"", b"\x01", b"\x02" * 10, b"\x01\x42\xc0\x0d\xff\xe1\x00\x30"])
def test_bad_avc_config_raises_mux_error(bad: bytes) -> None:
    with pytest.raises(_mux.MuxError):
        _mux.parse_avc_config(bad)


def test_fragment_needs_samples() -> None:
    with pytest.raises(_mux.MuxError):
        _mux.fragment(1, [(1, 0, [])])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_parsers_parse_or_raise_mux_error(data: bytes) -> None:
    for fn in (
        _mux.parse_avc_config,
        _mux.parse_asc,
        _mux.avc_codec_string,
        _mux.aac_codec_string,
        _mux.avcc_to_annexb,
        _mux.annexb_to_avcc,
        lambda d: _mux.parse_sps(b"\x67" + d),
    ):
        with contextlib.suppress(_mux.MuxError):
            fn(data)


native_only = pytest.mark.skipif(not NATIVE, reason="cross-check needs the Cython build")


@native_only
def test_twin_writes_the_same_bytes_on_real_packets(
    av_fixture: Fixture, bframes_fixture: Fixture
) -> None:
    for fx in (av_fixture, bframes_fixture):
        packets = demux_packets(fx.path)
        video, audio = _tracks(packets)
        twin_tracks = [
            _mux_py.TrackInfo(t.track_id, t.kind, t.codec, t.timescale, t.config, t.width,
                              t.height, t.sample_rate, t.channels)
            for t in (video, audio)
        ]  # fmt: skip
        assert _mux_py.init_segment(twin_tracks) == _mux.init_segment([video, audio])
        vids = [p for p in packets if p.kind == "video" and not p.is_config]
        auds = [p for p in packets if p.kind == "audio" and not p.is_config]
        for i in range(0, len(vids), 6):
            runs: list[_mux.Run] = [
                (1, vids[i].dts * 90 + 2**40, [(p.data, 3000, (p.pts - p.dts) * 90, p.keyframe)
                                               for p in vids[i : i + 6]]),
                (2, i * 1024, [(p.data, 1024, 0, True) for p in auds[i : i + 9]]),
            ]  # fmt: skip
            assert _mux_py.fragment(i, runs) == _mux.fragment(i, runs)
        sps = _mux.parse_avc_config(video.config)[0][0]
        assert _mux_py.parse_sps(sps) == _mux.parse_sps(sps)
        assert _mux_py.parse_avc_config(video.config) == _mux.parse_avc_config(video.config)


@native_only
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=40),
            st.integers(0, 2**32 - 1),
            st.integers(-(2**31), 2**31 - 1),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
)
def test_twin_fragment_matches_native(
    samples: list[tuple[bytes, int, int, bool]], base: int, seq: int
) -> None:
    runs: list[_mux.Run] = [(1, base, samples), (2, base // 2, samples[::-1])]
    assert _mux_py.fragment(seq, runs) == _mux.fragment(seq, runs)


@native_only
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=48))
def test_twin_parsers_agree_with_native(data: bytes) -> None:
    names = ["parse_avc_config", "parse_asc", "avc_codec_string", "aac_codec_string",
             "avcc_to_annexb", "annexb_to_avcc"]  # fmt: skip
    for name in names:
        results = []
        for impl in (_mux, _mux_py):
            try:
                results.append(getattr(impl, name)(data))
            except impl.MuxError:
                results.append("MuxError")
        assert results[0] == results[1], name
    results = []
    for impl in (_mux, _mux_py):
        try:
            results.append(impl.parse_sps(b"\x67" + data))
        except impl.MuxError:
            results.append("MuxError")
    assert results[0] == results[1]


def test_tfdt_is_version_1_and_carries_decode_times_past_32_bits(
    av_fixture: Fixture, tmp_path: Path
) -> None:
    """A broadcast 14 h in has video decode times above 2^32 ticks of 90 kHz: tfdt version 1
    holds them (version 0 would wrap), and FFmpeg reads them back unchanged."""
    packets = demux_packets(av_fixture.path)
    video, _ = _tracks(packets)
    vids = [p for p in packets if p.kind == "video" and not p.is_config][:12]
    base = 14 * 3600 * 90000  # > 2**32
    assert base > 2**32
    chunks = [_mux.init_segment([video])]
    ends = [p.dts for p in vids[1:]] + [vids[-1].dts + 33]
    durations = {id(p): (end - p.dts) * 90 for p, end in zip(vids, ends, strict=True)}
    for seq, group in enumerate((vids[:6], vids[6:]), start=1):
        start = base + (group[0].dts - vids[0].dts) * 90
        samples = [(p.data, durations[id(p)], (p.pts - p.dts) * 90, p.keyframe) for p in group]
        frag = _mux.fragment(seq, [(1, start, samples)])
        at = frag.index(b"tfdt")
        assert frag[at + 4] == 1  # version
        assert int.from_bytes(frag[at + 8 : at + 16], "big") == start
        chunks.append(frag)
    path = tmp_path / "late.mp4"
    path.write_bytes(b"".join(chunks))
    with av.open(str(path)) as inp:
        dts = [p.dts for p in inp.demux(video=0) if p.size]
    print("first dts", dts[0], "want", base)
    assert dts[0] == base and dts == [base + (p.dts - vids[0].dts) * 90 for p in vids]
