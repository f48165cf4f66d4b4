"""The fMP4 writer (init segment + the core's fragments), read back by FFmpeg's mp4 demuxer
(through PyAV) frame for frame; the native fragment writer and its twin agree byte for byte."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch import _mux_py
from kitch.hls import codecs
from kitch.hls.init_segment import TrackInfo, init_segment
from kitch.media import MediaPacket
from kitch.twins import NATIVE
from kitch.twins import mux as _mux
from tests.hls.packets import config, demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.native


def _tracks(packets: list[MediaPacket]) -> tuple[TrackInfo, TrackInfo]:
    vcfg, acfg = config(packets, "video"), config(packets, "audio")
    sps = codecs.parse_sps(codecs.parse_avc_config(vcfg)[0][0])
    _, rate, channels = codecs.parse_asc(acfg)
    video = TrackInfo(1, "video", "h264", 90000, vcfg, sps["width"], sps["height"])
    audio = TrackInfo(2, "audio", "aac", rate, acfg, sample_rate=rate, channels=channels)
    return video, audio


def _mux_file(packets: list[MediaPacket], path: Path, per_fragment: int) -> None:
    """Mux packets into init + fragments of ``per_fragment`` video frames; audio on sample
    counts. Returns nothing: the file is the output."""
    video, audio = _tracks(packets)
    vids = [p for p in packets if p.kind == "video" and not p.is_config]
    auds = [p for p in packets if p.kind == "audio" and not p.is_config]
    base = min(vids[0].dts, auds[0].dts)
    chunks = [init_segment([video, audio])]
    seq = 1
    a_index = 0
    for start in range(0, len(vids), per_fragment):
        group = vids[start : start + per_fragment]
        samples = []
        for i, p in enumerate(group):
            nxt = vids[start + i + 1].dts if start + i + 1 < len(vids) else p.dts + 33
            samples.append((p.data, (nxt - p.dts) * 90, (p.pts - p.dts) * 90, p.keyframe))
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
    # the muxer carried the composition offsets (B-frames: presentation order != decode order)
    reordered = any(pts != dts for dts, pts, _, _ in got_v)
    assert reordered == (which == "bframes")


def test_negative_composition_offset_round_trips(av_fixture: Fixture, tmp_path: Path) -> None:
    packets = demux_packets(av_fixture.path)
    video, _ = _tracks(packets)
    vids = [p for p in packets if p.kind == "video" and not p.is_config][:3]
    samples = [
        (p.data, 3000, off, p.keyframe) for p, off in zip(vids, (0, -1500, 1500), strict=True)
    ]
    data = init_segment([video]) + _mux.fragment(7, [(1, 2**33 + 10, samples)])
    (tmp_path / "neg.mp4").write_bytes(data)
    with av.open(str(tmp_path / "neg.mp4")) as inp:
        pkts = [(p.dts, p.pts) for p in inp.demux() if p.size]
    base = 2**33 + 10
    assert [d for d, _ in pkts] == [base, base + 3000, base + 6000]
    # FFmpeg shifts all pts by the most negative offset; the relative presentation order holds
    assert [p - pkts[0][1] for _, p in pkts] == [0, 1500, 7500]


def test_fragment_needs_samples() -> None:
    with pytest.raises(_mux.MuxError):
        _mux.fragment(1, [(1, 0, [])])


native_only = pytest.mark.skipif(not NATIVE, reason="cross-check needs the Cython build")


@native_only
def test_twin_writes_the_same_bytes_on_real_packets(
    av_fixture: Fixture, bframes_fixture: Fixture
) -> None:
    for fx in (av_fixture, bframes_fixture):
        packets = demux_packets(fx.path)
        vids = [p for p in packets if p.kind == "video" and not p.is_config]
        auds = [p for p in packets if p.kind == "audio" and not p.is_config]
        for i in range(0, len(vids), 6):
            runs: list[_mux.Run] = [
                (1, vids[i].dts * 90 + 2**40, [(p.data, 3000, (p.pts - p.dts) * 90, p.keyframe)
                                               for p in vids[i : i + 6]]),
                (2, i * 1024, [(p.data, 1024, 0, True) for p in auds[i : i + 9]]),
            ]  # fmt: skip
            assert _mux_py.fragment(i, runs) == _mux.fragment(i, runs)


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
    chunks = [init_segment([video])]
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
    assert dts[0] == base and dts == [base + (p.dts - vids[0].dts) * 90 for p in vids]
