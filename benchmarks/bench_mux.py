"""Muxer throughput: Kitch's MPEG-TS and fMP4 writers against FFmpeg's own muxers (through
PyAV: ``mpegts`` and ``mp4`` with ``movflags=frag_keyframe+empty_moov+default_base_moof``) on the
same packets, and against the pure-Python twin. Ratios come from one run on one machine.

Run from the repository root with the Cython build in place::

    python3 benchmarks/bench_mux.py [--quick] [--seconds 8] [--repeat 5]

Throughput is media bytes in (sum of packet payloads) per second of wall time, best of
``--repeat`` runs. Every writer does the whole job in memory: Kitch's TS writer also converts
AVCC to Annex B with an AUD and parameter sets at keyframes and adds ADTS headers, as FFmpeg's
does (``h264_mp4toannexb`` is applied automatically by its mpegts muxer).

``--quick``: 2 s of 320x240, best of 3 (CI smoke, a few seconds). The summary lines say whether
each aim is met: the Cython writers faster than FFmpeg's muxers.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CACHE, best_of, machine, verdict
from kitch import _mux, _mux_py
from kitch.hls import codecs
from kitch.hls.init_segment import TrackInfo, init_segment
from kitch.media import MediaPacket
from tests.hls.packets import config, demux_packets
from tests.support.media import Fixture, make_fixture

MS = Fraction(1, 1000)


def kitch_ts(impl: Any, packets: list[MediaPacket]) -> int:
    vcfg, acfg = config(packets, "video"), config(packets, "audio")
    params, ls = codecs.parameter_sets("h264", vcfg)
    m = impl.TsMuxer("h264", params, ls, "aac", acfg)
    out = [m.psi()]
    for p in packets:
        if p.is_config:
            continue
        if p.kind == "video":
            if p.keyframe:
                out.append(m.psi())
            out.append(m.video(p.data, p.pts * 90, p.dts * 90, p.keyframe))
        else:
            out.append(m.audio(p.data, p.dts * 90))
    return len(b"".join(out))


def kitch_fmp4(impl: Any, packets: list[MediaPacket]) -> int:
    """One fragment per video GOP-part of 6 frames with the audio beside it (the segmenter's
    shape), plus the init segment."""
    vcfg, acfg = config(packets, "video"), config(packets, "audio")
    info = codecs.avc_info(vcfg)
    a = codecs.aac_info(acfg)
    tracks = [
        TrackInfo(1, "video", "h264", 90000, vcfg, info.width, info.height),
        TrackInfo(2, "audio", "aac", a.sample_rate, acfg, 0, 0, a.sample_rate, a.channels),
    ]
    out = [init_segment(tracks)]
    vids = [p for p in packets if p.kind == "video" and not p.is_config]
    auds = [p for p in packets if p.kind == "audio" and not p.is_config]
    ai = 0
    for seq, i in enumerate(range(0, len(vids), 6)):
        group = vids[i : i + 6]
        vs = [(p.data, 3000, (p.pts - p.dts) * 90, p.keyframe) for p in group]
        end = group[-1].dts + 33
        aud = []
        start = ai
        while ai < len(auds) and auds[ai].dts < end:
            aud.append((auds[ai].data, 1024, 0, True))
            ai += 1
        runs = [(1, group[0].dts * 90, vs)]
        if aud:
            runs.append((2, start * 1024, aud))
        out.append(impl.fragment(seq + 1, runs))
    return len(b"".join(out))


def ffmpeg(fmt: str, options: dict[str, str], fixture: Fixture) -> Callable[[], int]:
    """A runner muxing the fixture's packets with FFmpeg into memory (packets prepared
    outside the timed part; each run gets fresh copies)."""
    with av.open(str(fixture.path)) as inp:
        streams = [(s.type, s) for s in inp.streams]
        raw = [
            (pkt.stream.index, bytes(pkt), pkt.pts, pkt.dts, pkt.time_base, pkt.is_keyframe)
            for pkt in inp.demux()
            if pkt.size
        ]
    del streams
    batches: list[list[tuple[int, av.Packet]]] = []

    def prepare() -> None:
        batch = []
        for index, data, pts, dts, tb, key in raw:
            pkt = av.Packet(data)
            pkt.pts, pkt.dts, pkt.time_base = pts, dts, tb
            pkt.is_keyframe = key
            batch.append((index, pkt))
        batches.append(batch)

    def run() -> int:
        if not batches:
            prepare()
        batch = batches.pop()
        buf = io.BytesIO()
        with (
            av.open(str(fixture.path)) as inp,
            av.open(buf, "w", format=fmt, options=options) as out,
        ):
            mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
            for index, pkt in batch:
                pkt.stream = mapping[index]
                out.mux(pkt)
        return buf.tell()

    run.prepare = prepare  # type: ignore[attr-defined]
    return run


def measure(fn: Callable[[], int], repeat: int, prepare: Callable[[], None] | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        best = min(best, best_of(1, fn))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="media muxed (default 8)")
    ap.add_argument("--repeat", type=int, default=5, help="runs, best kept (default 5)")
    ap.add_argument("--quick", action="store_true", help="2 s of 320x240, best of 3 (CI smoke)")
    args = ap.parse_args()
    print(machine(), flush=True)
    if args.quick:
        args.seconds, args.repeat = 2.0, 3
    width, height = (320, 240) if args.quick else (640, 360)
    CACHE.mkdir(parents=True, exist_ok=True)
    fx = make_fixture(CACHE, seconds=args.seconds, width=width, height=height, gop=60)
    packets = demux_packets(fx.path)
    media_bytes = sum(len(p.data) for p in packets if not p.is_config)
    rows: list[tuple[str, float]] = []
    for name, fn, prep in [
        ("kitch TS (Cython)", lambda: kitch_ts(_mux, packets), None),
        ("kitch TS (twin)", lambda: kitch_ts(_mux_py, packets), None),
        ("FFmpeg mpegts", (f := ffmpeg("mpegts", {}, fx)), f.prepare),  # type: ignore[attr-defined]
        ("kitch fMP4 (Cython)", lambda: kitch_fmp4(_mux, packets), None),
        ("kitch fMP4 (twin)", lambda: kitch_fmp4(_mux_py, packets), None),
        (
            "FFmpeg mp4 frag",
            (g := ffmpeg("mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}, fx)),
            g.prepare,  # type: ignore[attr-defined]
        ),
    ]:
        seconds = measure(fn, args.repeat, prep)
        rows.append((name, media_bytes / seconds / 1e6))
    mbs = dict(rows)
    print(
        f"{media_bytes / 1e6:.1f} MB of H.264+AAC ({args.seconds:g} s, {width}x{height}), "
        f"best of {args.repeat}"
    )
    print(f"{'writer':<22}{'MB/s':>10}")
    for name, v in rows:
        print(f"{name:<22}{v:>10.1f}")
    print()
    summary = []
    for what, ffmpeg_row in (("TS", "FFmpeg mpegts"), ("fMP4", "FFmpeg mp4 frag")):
        native = mbs[f"kitch {what} (Cython)"]
        vs_ffmpeg = native / mbs[ffmpeg_row]
        print(
            f"{what + ':':<5} Cython / FFmpeg = {vs_ffmpeg:.2f}x, "
            f"Cython / twin = {native / mbs[f'kitch {what} (twin)']:.2f}x"
        )
        summary.append(f"summary: {what} aim faster than FFmpeg: {verdict(vs_ffmpeg > 1)}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
