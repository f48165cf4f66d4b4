"""Which FFmpeg decoder opens each video codec the ingest accepts (the ladder and thumbnails)."""

from __future__ import annotations

import av

#: FFmpeg decoders to try for each codec, in order. FFmpeg's own "av1" decoder only drives
#: hardware decoders: software AV1 is dav1d (or libaom).
VIDEO_DECODERS = {
    "h264": ("h264",),
    "hevc": ("hevc",),
    "av1": ("libdav1d", "libaom-av1"),
    "vp9": ("vp9", "libvpx-vp9"),
}


def decoder_for(codec: str) -> str | None:
    """The name of an FFmpeg decoder this PyAV build has for ``codec``, else None."""
    return next(
        (name for name in VIDEO_DECODERS.get(codec, ()) if name in av.codecs_available), None
    )
