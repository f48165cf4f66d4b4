"""Avatars: decode an uploaded PNG, JPEG, GIF or WebP and re-encode it as a small WebP.

Only pixels survive (EXIF, text chunks, ICC profiles, comments and any bytes after the image are
dropped), so what is served is always a well-formed image of a known type. The pixel count is
bounded before any picture is allocated: FFmpeg's ``max_pixels`` makes the decoder refuse a
header that declares more (a decompression bomb) as it reads the dimensions. Blocking: call it
off the event loop.
"""

from __future__ import annotations

import io
from typing import Any

import av

#: Largest picture decoded (width x height), about 16.8 megapixels.
MAX_PIXELS = 4096 * 4096
#: The re-encoded avatar fits in a square of this many pixels (smaller pictures keep their size).
AVATAR_SIZE = 256
MEDIA_TYPE = "image/webp"
WEBP_QUALITY = 85

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png_pipe"),
    (b"\xff\xd8\xff", "jpeg_pipe"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


class ImageError(ValueError):
    """The upload is not a PNG, JPEG, GIF or WebP picture that can be decoded within the limits."""


def demuxer_for(data: bytes) -> str | None:
    """The FFmpeg demuxer for the image type the magic bytes announce, else None."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp_pipe"
    return None


def fit(width: int, height: int, box: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down (never up) to fit in ``box`` x ``box``."""
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _first_frame(data: bytes, demuxer: str, max_pixels: int) -> av.VideoFrame:
    limit = {"max_pixels": str(max_pixels)}
    # PyAV takes one dict of options per stream (its stub says list[str]).
    options: list[Any] = [limit]
    with av.open(io.BytesIO(data), "r", format=demuxer, stream_options=options) as container:
        if not container.streams.video:
            raise ImageError("the file holds no picture")
        stream = container.streams.video[0]
        stream.codec_context.options = limit
        for frame in container.decode(stream):
            return frame
    raise ImageError("the file holds no picture")


def _encode_webp(frame: av.VideoFrame) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="webp") as container:
        stream = container.add_stream("libwebp", rate=1)
        stream.width, stream.height = frame.width, frame.height
        stream.pix_fmt = "yuva420p"
        stream.options = {"quality": str(WEBP_QUALITY), "lossless": "0", "preset": "picture"}
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def reencode_avatar(data: bytes, *, max_pixels: int = MAX_PIXELS, size: int = AVATAR_SIZE) -> bytes:
    """``data`` decoded (first frame of an animation) and re-encoded as WebP within ``size``.

    Raises :class:`ImageError` for anything that is not a decodable PNG, JPEG, GIF or WebP of at
    most ``max_pixels`` pixels.
    """
    demuxer = demuxer_for(data)
    if demuxer is None:
        raise ImageError("not a PNG, JPEG, GIF or WebP file")
    try:
        frame = _first_frame(data, demuxer, max_pixels)
        if frame.width * frame.height > max_pixels:
            raise ImageError("the picture is too large")
        width, height = fit(frame.width, frame.height, size)
        scaled = frame.reformat(width=width, height=height, format="yuva420p", interpolation="AREA")
        return _encode_webp(scaled)
    except (av.FFmpegError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError("the picture cannot be decoded") from exc
