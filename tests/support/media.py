"""Small media fixtures made once per run, and real-time publishers that copy their packets.

Encoding is the slow part on two cores, so each fixture is encoded once (cached by name in a
per-run directory) and every test publishes it by copying packets, paced in real time.
"""

from __future__ import annotations

import fractions
import math
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Fixture:
    path: Path
    seconds: float
    width: int
    height: int
    fps: int
    gop: int
    bframes: int
    audio: bool
    video: bool


def bar_frame(
    picture: np.ndarray, i: int, fps: int, *, step: int = 7, bar: int = 16, counter: bool = True
) -> av.VideoFrame:
    """Frame ``i`` of the test pattern, painted into ``picture`` (an RGB buffer reused across
    frames): grey, a yellow bar ``bar`` px wide moving ``step`` px a frame and, with
    ``counter``, a green corner stripe whose height cycles every 30 frames. yuv420p, pts ``i``
    in 1/``fps``."""
    picture[:] = 30
    x = (i * step) % picture.shape[1]
    picture[:, x : x + bar, :] = (255, 200, 40)
    if counter:
        picture[: 8 + (i % 30), :8, 1] = 255
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
    frame.pts = i
    frame.time_base = fractions.Fraction(1, fps)
    return frame


def tone_frame(t: int, n: int, rate: int) -> av.AudioFrame:
    """Samples ``t`` .. ``t + n`` of a 440 Hz tone (amplitude 0.2), stereo float, pts ``t`` in
    1/``rate``."""
    ts = (np.arange(t, t + n) / rate).astype(np.float32)
    tone = (0.2 * np.sin(2 * math.pi * 440 * ts)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(
        np.stack([tone, tone]).reshape(1, -1), format="flt", layout="stereo"
    )
    frame.sample_rate = rate
    frame.pts = t
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def make_fixture(
    directory: Path,
    *,
    seconds: float = 4.0,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    gop: int = 30,
    bframes: int = 0,
    audio: bool = True,
    video: bool = True,
    vcodec: str = "libx264",
    container: str = "flv",
) -> Fixture:
    """Encode a test pattern (moving bar + 440 Hz tone) once; later calls reuse the file."""
    name = (
        f"{vcodec if video else 'novideo'}-{width}x{height}-{fps}fps-gop{gop}-b{bframes}-"
        f"{'a' if audio else 'na'}-{seconds:g}s.{container}"
    )
    path = directory / name
    fx = Fixture(path, seconds, width, height, fps, gop, bframes, audio, video)
    if path.exists():
        return fx
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format=container) as out:
        vs = None
        if video:
            vs = out.add_stream(vcodec, rate=fps)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            opts = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": str(bframes)}
            if vcodec == "libx264":
                opts.update(preset="ultrafast", tune="zerolatency" if bframes == 0 else "film")
                if bframes:
                    opts["x264-params"] = f"bframes={bframes}:b-adapt=0"
            vs.options = opts
            vs.codec_context.options = opts
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=44100)
            as_.layout = "stereo"  # type: ignore[union-attr]
        # Video and audio are encoded interleaved in time order: muxers only reorder within
        # max_interleave_delta (10 s), so encoding one track whole and then the other breaks
        # fixtures longer than that.
        n_frames = int(seconds * fps) if vs is not None else 0
        rate, spf = 44100, 1024
        total = int(seconds * rate) if as_ is not None else 0
        picture = np.zeros((height, width, 3), dtype=np.uint8)
        i = t = 0
        while i < n_frames or t < total:
            if i < n_frames and (t >= total or i / fps <= t / rate):
                assert vs is not None
                for p in vs.encode(bar_frame(picture, i, fps)):
                    out.mux(p)
                i += 1
            else:
                assert as_ is not None
                n = min(spf, total - t)
                for p in as_.encode(tone_frame(t, n, rate)):
                    out.mux(p)
                t += n
        for s in (vs, as_):
            if s is not None:
                for p in s.encode(None):
                    out.mux(p)
    tmp.rename(path)
    return fx


def publish_pyav(
    url: str,
    fixture: Fixture,
    *,
    loops: int = 1,
    realtime: bool = True,
    stop: threading.Event | None = None,
    on_start: threading.Event | None = None,
) -> None:
    """Publish ``fixture`` to an RTMP URL with PyAV (FFmpeg's own RTMP client), copying packets.

    With ``loops`` > 1 the file is sent again with timestamps shifted so they keep increasing.
    Raises what FFmpeg raises when the server refuses or drops the connection.
    """
    with av.open(str(fixture.path)) as inp:
        out = av.open(url, "w", format="flv")
        try:
            mapping = {}
            for s in inp.streams:
                if s.type in ("video", "audio"):
                    # opaque: copy the codec by id, so a decoder-only name (libdav1d) works
                    mapping[s.index] = out.add_stream_from_template(s, opaque=True)
            if on_start is not None:
                on_start.set()
            start = time.monotonic()
            offset = 0.0
            for _ in range(loops):
                inp.seek(0)
                last = 0.0
                for pkt in inp.demux():
                    if pkt.dts is None or pkt.size == 0 or pkt.stream.index not in mapping:
                        continue
                    if stop is not None and stop.is_set():
                        return
                    tb = pkt.time_base
                    t = float(pkt.dts * tb)
                    last = max(last, t)
                    shift = round(offset / tb)
                    pkt.dts += shift
                    pkt.pts += shift
                    if realtime:
                        delay = start + offset + t - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    pkt.stream = mapping[pkt.stream.index]
                    out.mux(pkt)
                offset += fixture.seconds if fixture.seconds > last else last + 0.04
        finally:
            out.close()


def ffmpeg_cli_publish(url: str, fixture: Fixture, *, loops: int = 0) -> subprocess.Popen[bytes]:
    """Start the `ffmpeg` command line from apt publishing ``fixture`` with ``-re -c copy``."""
    return subprocess.Popen(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-stream_loop",
            str(loops),
            "-i",
            str(fixture.path),
            "-c",
            "copy",
            "-f",
            "flv",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
