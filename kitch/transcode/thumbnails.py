"""Still pictures of a live stream: one video keyframe decoded, letterboxed and encoded as JPEG.

Everything here blocks (decoding a 1080p keyframe takes ~10-20 ms of CPU), so the thumbnails
sink (:mod:`kitch.ingest.thumbnails`) runs it in a worker thread; it never touches the event
loop. A keyframe decodes on its own with the codec configuration record the encoder sent, so no
decoder is kept between pictures.

Every size keeps the source's display aspect ratio: the picture is scaled to fit inside the box
and centred, the rest of the box is black (letterbox for sources wider than the box, pillarbox
for narrower ones such as a phone held upright). Nothing is cropped. The JPEGs are full-range
(``yuvj420p``), baseline, quality scale :data:`JPEG_QSCALE`.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av
from av.video.reformatter import ColorRange, Interpolation, VideoReformatter

from kitch.media import MediaPacket
from kitch.transcode.decoders import decoder_for

#: The sizes made of every picture, as ``(width, height)``; both 16:9.
SIZES: tuple[tuple[int, int], ...] = ((640, 360), (320, 180))
#: FFmpeg's JPEG quality scale (2 best .. 31 worst); 5 keeps a 640x360 picture near 20-40 kB.
JPEG_QSCALE = 5
#: Largest source decoded (width x height); a larger keyframe is refused before decoding.
MAX_PIXELS = 8192 * 4320
MEDIA_TYPE = "image/jpeg"
_FORMAT = "yuvj420p"  # what the mjpeg encoder takes as full-range 4:2:0


class ThumbnailError(Exception):
    """A keyframe that cannot be decoded or encoded (the sink counts it and tries again)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the scaled picture goes inside a box: offset ``x``, ``y`` and size ``width`` x
    ``height`` (all even, so the 4:2:0 chroma planes line up)."""

    x: int
    y: int
    width: int
    height: int


def _even(value: fractions.Fraction) -> int:
    """``value`` rounded to the nearest even number, at least 2."""
    return max(2, round(value / 2) * 2)


def letterbox(
    width: int,
    height: int,
    box_width: int,
    box_height: int,
    sample_aspect: fractions.Fraction | None = None,
) -> Placement:
    """Fit a ``width`` x ``height`` picture (pixels ``sample_aspect`` wide, 1 when unknown)
    inside ``box_width`` x ``box_height`` keeping its display aspect ratio, centred.

    The scaled size is rounded to even numbers and never exceeds the box; the side that fills
    the box is exactly the box's. Small sources are scaled up to fill it too."""
    if width <= 0 or height <= 0 or box_width < 2 or box_height < 2:
        raise ValueError("sizes must be positive")
    sar = sample_aspect if sample_aspect and sample_aspect > 0 else fractions.Fraction(1)
    display = fractions.Fraction(width) * sar / height  # width / height as seen
    box = fractions.Fraction(box_width, box_height)
    if display >= box:  # wider than the box: full width, bars above and below
        w = box_width - box_width % 2
        h = min(box_height - box_height % 2, _even(box_width / display))
    else:  # narrower: full height, bars left and right
        h = box_height - box_height % 2
        w = min(box_width - box_width % 2, _even(box_height * display))
    x = (box_width - w) // 2 // 2 * 2
    y = (box_height - h) // 2 // 2 * 2
    return Placement(x, y, w, h)


def _decode_keyframe(config: MediaPacket, keyframe: MediaPacket) -> tuple[av.VideoFrame, object]:
    decoder = decoder_for(config.codec)
    if decoder is None:
        raise ThumbnailError(f"this server cannot decode {config.codec}")
    try:
        ctx = av.CodecContext.create(decoder, "r")
        assert isinstance(ctx, av.VideoCodecContext)
        if config.codec != "vp9" and config.data:
            ctx.extradata = bytes(config.data)
        ctx.thread_count = 1
        ctx.options = {"max_pixels": str(MAX_PIXELS)}
        pkt = av.Packet(keyframe.data)  # type: ignore[arg-type]  # any buffer works
        pkt.pts = pkt.dts = 0
        frames = ctx.decode(pkt) + ctx.decode(None)
    except (av.FFmpegError, ValueError) as exc:
        raise ThumbnailError(f"{config.codec} keyframe cannot be decoded: {exc}") from None
    if not frames:
        raise ThumbnailError(f"{config.codec} keyframe gave no picture")
    return frames[-1], ctx.sample_aspect_ratio


def _blank(width: int, height: int) -> av.VideoFrame:
    """A black full-range 4:2:0 picture."""
    frame = av.VideoFrame(width, height, _FORMAT)
    for plane, value in zip(frame.planes, (0, 128, 128), strict=True):
        view = memoryview(plane).cast("B")
        view[:] = bytes([value]) * len(view)
    return frame


def _paste(canvas: av.VideoFrame, picture: av.VideoFrame, at: Placement) -> None:
    """Copy ``picture`` (same format, ``at``'s size) into ``canvas`` at ``at``, row by row."""
    for i, (dst, src) in enumerate(zip(canvas.planes, picture.planes, strict=True)):
        shift = 0 if i == 0 else 1  # chroma planes are half size both ways
        x, y = at.x >> shift, at.y >> shift
        width, rows = src.width, src.height
        d, s = memoryview(dst).cast("B"), memoryview(src).cast("B")
        dst_stride, src_stride = dst.line_size, src.line_size
        for row in range(rows):
            start = (y + row) * dst_stride + x
            d[start : start + width] = s[row * src_stride : row * src_stride + width]


def _encode_jpeg(frame: av.VideoFrame) -> bytes:
    ctx = av.CodecContext.create("mjpeg", "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = frame.width, frame.height, _FORMAT
    ctx.time_base = fractions.Fraction(1, 1)
    ctx.qmin = ctx.qmax = JPEG_QSCALE
    ctx.thread_count = 1
    frame.pts = 0
    packets = ctx.encode(frame) + ctx.encode(None)
    if not packets:
        raise ThumbnailError("the JPEG encoder gave nothing")
    return bytes(packets[0])


def make_thumbnails(
    config: MediaPacket,
    keyframe: MediaPacket,
    sizes: tuple[tuple[int, int], ...] = SIZES,
) -> dict[str, bytes]:
    """Decode ``keyframe`` (with its codec configuration record ``config``) and answer a JPEG
    per size, keyed ``"640x360"``. Blocking: call it in a worker thread.

    Raises :class:`ThumbnailError` when the codec has no decoder here or the picture cannot
    be decoded or encoded."""
    picture, sar = _decode_keyframe(config, keyframe)
    aspect = sar if isinstance(sar, fractions.Fraction) else None
    scaler = VideoReformatter()
    out: dict[str, bytes] = {}
    try:
        for box_w, box_h in sizes:
            at = letterbox(picture.width, picture.height, box_w, box_h, aspect)
            scaled = scaler.reformat(
                picture,
                width=at.width,
                height=at.height,
                format=_FORMAT,
                interpolation=Interpolation.AREA,
                dst_color_range=ColorRange.JPEG,
            )
            if (at.width, at.height) != (box_w, box_h):
                canvas = _blank(box_w, box_h)
                _paste(canvas, scaled, at)
                scaled = canvas
            out[f"{box_w}x{box_h}"] = _encode_jpeg(scaled)
    except (av.FFmpegError, ValueError) as exc:
        raise ThumbnailError(f"the picture cannot be scaled or encoded: {exc}") from None
    return out
