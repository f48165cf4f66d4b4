"""Thumbnail pictures: the letterbox math, and real keyframes of each codec decoded, scaled and
encoded as JPEG (checked by decoding the JPEGs with PyAV)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from kitch.media import MediaPacket
from kitch.transcode.decoders import decoder_for
from kitch.transcode.thumbnails import (
    SIZES,
    Placement,
    ThumbnailError,
    letterbox,
    make_thumbnails,
)
from tests.support.media import make_fixture

# -- the scaling math ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((1920, 1080), (640, 360), Placement(0, 0, 640, 360)),  # same aspect: fills the box
        ((1280, 720), (320, 180), Placement(0, 0, 320, 180)),
        ((640, 360), (640, 360), Placement(0, 0, 640, 360)),
        ((320, 180), (640, 360), Placement(0, 0, 640, 360)),  # small sources are scaled up
        ((640, 480), (640, 360), Placement(80, 0, 480, 360)),  # 4:3: bars left and right
        ((320, 240), (320, 180), Placement(40, 0, 240, 180)),
        ((1080, 1920), (640, 360), Placement(218, 0, 202, 360)),  # upright phone
        ((2560, 1080), (640, 360), Placement(0, 44, 640, 270)),  # 21:9: bars above and below
        ((1000, 1000), (320, 180), Placement(70, 0, 180, 180)),
        ((7680, 4320), (640, 360), Placement(0, 0, 640, 360)),
    ],
)
def test_letterbox_keeps_the_aspect_ratio_and_centres(
    source: tuple[int, int], box: tuple[int, int], expected: Placement
) -> None:
    assert letterbox(*source, *box) == expected


def test_letterbox_sizes_are_even_inside_the_box_and_close_to_the_aspect() -> None:
    for width in range(16, 4000, 37):
        for height in (90, 101, 240, 333, 720, 1081, 2160):
            for box_w, box_h in SIZES:
                at = letterbox(width, height, box_w, box_h)
                assert at.width % 2 == at.height % 2 == at.x % 2 == at.y % 2 == 0
                assert at.x + at.width <= box_w and at.y + at.height <= box_h
                assert at.width == box_w or at.height == box_h  # one side fills the box
                # centred (to the even pixel below)
                assert box_w - at.width - 2 * at.x in (0, 2)
                assert box_h - at.height - 2 * at.y in (0, 2)
                # the aspect ratio moves by at most the rounding to even pixels
                assert abs(at.width / at.height - width / height) <= (
                    2 / at.height + 2 * at.width / at.height**2
                )


def test_letterbox_uses_the_sample_aspect_ratio() -> None:
    # 720x576 PAL with 16:15 pixels is 4:3 on screen; with 64:45 it is 16:9
    assert letterbox(720, 576, 640, 360, Fraction(16, 15)) == Placement(80, 0, 480, 360)
    assert letterbox(720, 576, 640, 360, Fraction(64, 45)) == Placement(0, 0, 640, 360)
    # unknown (0) counts as square pixels
    assert letterbox(640, 480, 640, 360, Fraction(0)) == Placement(80, 0, 480, 360)


@pytest.mark.parametrize("sizes", [(0, 10, 640, 360), (10, 0, 640, 360), (10, 10, 1, 360)])
def test_letterbox_refuses_empty_sizes(sizes: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        letterbox(*sizes)


# -- real keyframes -----------------------------------------------------------------------------


def first_keyframe(path: Path, codec: str) -> tuple[MediaPacket, MediaPacket]:
    """The codec configuration record (as the RTMP ingest hands it over) and the first video
    keyframe of an FLV fixture."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        config = bytes(stream.codec_context.extradata or b"")
        for pkt in container.demux(stream):
            if pkt.is_keyframe and pkt.size:
                key = MediaPacket("video", codec, 0, 0, bytes(pkt), True)
                return MediaPacket("video", codec, 0, 0, config, True, True), key
    raise AssertionError("no keyframe")


def _decode_jpeg(data: bytes) -> np.ndarray:
    assert data[:3] == b"\xff\xd8\xff"
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


#: (encoder that makes the fixture, codec as the ingest names it) for each video codec accepted
VIDEO_CODECS = [
    ("libx264", "h264"),
    ("libx265", "hevc"),
    ("libsvtav1", "av1"),
    ("libvpx-vp9", "vp9"),
]


def keyframe_of(media_dir: Path, vcodec: str, codec: str) -> tuple[MediaPacket, MediaPacket]:
    """The configuration and first keyframe of a 1 s 320x240 ``vcodec`` fixture (skips the
    test where this PyAV build cannot encode it or decode ``codec``)."""
    if vcodec not in av.codecs_available or decoder_for(codec) is None:
        pytest.skip(f"this PyAV build has no {vcodec} encoder or {codec} decoder")
    fx = make_fixture(media_dir, seconds=1, vcodec=vcodec, audio=False)
    return first_keyframe(fx.path, codec)


@pytest.mark.parametrize(("vcodec", "codec"), VIDEO_CODECS)
def test_a_keyframe_of_each_codec_becomes_two_jpegs(
    media_dir: Path, vcodec: str, codec: str
) -> None:
    # 320x240 (4:3): the picture is pillarboxed in the 16:9 boxes
    config, key = keyframe_of(media_dir, vcodec, codec)
    images = make_thumbnails(config, key)
    assert list(images) == ["640x360", "320x180"]
    for (width, height), data in zip(SIZES, images.values(), strict=True):
        rgb = _decode_jpeg(data)
        assert rgb.shape == (height, width, 3)
        at = letterbox(320, 240, width, height)
        assert at.x > 0 and at.y == 0
        # black bars left and right; the test pattern's grey (30) with its yellow bar inside
        assert rgb[:, : at.x - 2].max() < 12 and rgb[:, at.x + at.width + 2 :].max() < 12
        inside = rgb[:, at.x + 2 : at.x + at.width - 2]
        assert 20 < float(np.median(inside)) < 45
        assert inside[..., 0].max() > 200  # the yellow bar
    assert len(images["640x360"]) > len(images["320x180"]) > 300


def test_a_wide_source_fills_the_box_exactly(media_dir: Path) -> None:
    fx = make_fixture(media_dir, seconds=1, width=640, height=360, audio=False)
    config, key = first_keyframe(fx.path, "h264")
    rgb = _decode_jpeg(make_thumbnails(config, key)["320x180"])
    assert rgb.shape == (180, 320, 3)
    assert rgb[:, :4].min() > 15 and rgb[:, -4:].min() > 15  # no bars: the grey reaches the edge


def test_an_undecodable_keyframe_is_a_thumbnail_error(media_dir: Path) -> None:
    fx = make_fixture(media_dir, seconds=1, audio=False)
    config, key = first_keyframe(fx.path, "h264")
    garbage = MediaPacket("video", "h264", 0, 0, b"\x00\x00\x00\x05\x65\x88\x80\x40\x00", True)
    with pytest.raises(ThumbnailError):
        make_thumbnails(config, garbage)
    with pytest.raises(ThumbnailError, match="cannot decode"):
        make_thumbnails(MediaPacket("video", "theora", 0, 0, b"", True, True), key)


def test_decoders_are_found_by_codec_name() -> None:
    assert decoder_for("h264") == "h264"
    assert decoder_for("theora") is None
    # FFmpeg's own "av1" decoder needs hardware; a software one is picked (or none)
    assert decoder_for("av1") in ("libdav1d", "libaom-av1", None)
