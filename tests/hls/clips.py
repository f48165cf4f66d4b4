"""Tiny clips of every codec the muxer takes (160x120, 0.8 s), encoded once per run with PyAV
into MP4 (whose demuxer hands back hvcC / av1C / OpusHead), and their MediaPackets."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np

from kitch.media import MediaPacket
from tests.support.media import bar_frame, tone_frame

#: our codec name -> (PyAV encoder, encoder options)
VIDEO_ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"preset": "ultrafast", "tune": "zerolatency"}),
    "hevc": ("libx265", {"preset": "ultrafast", "x265-params": "log-level=error:bframes=2"}),
    "av1": ("libsvtav1", {"preset": "12", "svtav1-params": "lp=1"}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}),
}
AUDIO_ENCODERS = {"aac": "aac", "opus": "libopus"}
AUDIO_RATES = {"aac": 44100, "opus": 48000}
#: vpcC payload after version/flags for profile 0, level 1.0, 8-bit 4:2:0, BT.709 limited
VP9_VPCC = bytes((0, 10, 0x82, 1, 1, 1, 0, 0))


def make_clip(
    directory: Path,
    video: str | None,
    audio: str | None,
    *,
    width: int = 160,
    height: int = 120,
    fps: int = 30,
    frames: int = 24,
    gop: int = 12,
) -> Path:
    """Encode (once; cached by name) a moving bar and a 440 Hz tone into MP4."""
    path = directory / f"clip-{video}-{audio}-{width}x{height}-{fps}-{frames}-{gop}.mp4"
    if path.exists():
        return path
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format="mp4") as out:
        vs = as_ = None
        if video is not None:
            encoder, options = VIDEO_ENCODERS[video]
            vs = out.add_stream(encoder, rate=fps)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            vs.codec_context.gop_size = gop
            vs.codec_context.options = {**options, "g": str(gop)}
        if audio is not None:
            rate = AUDIO_RATES[audio]
            as_ = out.add_stream(AUDIO_ENCODERS[audio], rate=rate)
            as_.layout = "stereo"  # type: ignore[union-attr]
        if vs is not None:
            img = np.zeros((height, width, 3), dtype=np.uint8)
            for i in range(frames):
                for p in vs.encode(bar_frame(img, i, fps, step=5, bar=10, counter=False)):
                    out.mux(p)
            for p in vs.encode(None):
                out.mux(p)
        if as_ is not None and audio is not None:
            rate = AUDIO_RATES[audio]
            size = as_.codec_context.frame_size or 960  # type: ignore[union-attr]
            total = rate * frames // fps
            t = 0
            while t < total:
                for p in as_.encode(tone_frame(t, size, rate)):
                    out.mux(p)
                t += size
            for p in as_.encode(None):
                out.mux(p)
    tmp.rename(path)
    return path


def clip_packets(path: Path) -> list[MediaPacket]:
    """Config packets first, then every packet in DTS order, times in integer milliseconds:
    what the RTMP ingest hands over (media.py pins the formats)."""
    configs: list[MediaPacket] = []
    media: list[MediaPacket] = []
    names = {"libdav1d": "av1", "av1": "av1", "hevc": "hevc", "h264": "h264", "vp9": "vp9",
             "libvpx-vp9": "vp9", "aac": "aac", "opus": "opus", "libopus": "opus"}  # fmt: skip
    with av.open(str(path)) as inp:
        codecs: dict[int, str] = {}
        for s in inp.streams:
            codec = names[s.codec_context.name]
            codecs[s.index] = codec
            config = VP9_VPCC if codec == "vp9" else bytes(s.codec_context.extradata or b"")
            configs.append(MediaPacket(s.type, codec, 0, 0, config, s.type == "video", True))
        for pkt in inp.demux():
            if pkt.dts is None or pkt.size == 0:
                continue
            tb = pkt.time_base
            dts = math.floor(pkt.dts * tb * 1000)
            pts = math.floor((pkt.pts if pkt.pts is not None else pkt.dts) * tb * 1000)
            media.append(
                MediaPacket(
                    pkt.stream.type,
                    codecs[pkt.stream.index],
                    dts,
                    pts,
                    bytes(pkt),
                    bool(pkt.is_keyframe),
                )
            )
    media.sort(key=lambda p: (p.dts, p.kind != "video"))
    return configs + media
