"""Avatars: decoded and re-encoded as a small WebP; bombs, fakes and metadata do not get through.

The pictures are made here with PyAV (PNG, JPEG, GIF, WebP), then given metadata by hand.
"""

from __future__ import annotations

import io
import struct
import zlib

import av
import httpx
import numpy as np
import pytest

from kitch.transcode.images import MAX_PIXELS, reencode_avatar
from tests.api.helpers import Register, assert_error

AVATAR = "/api/v1/me/avatar"
MARKER = b"SECRET-GPS-48.8584N-2.2945E"
ENCODERS = {  # name: (codec, container format, pixel format)
    "png": ("png", "image2pipe", "rgb24"),
    "jpeg": ("mjpeg", "image2pipe", "yuvj420p"),
    "gif": ("gif", "gif", "rgb8"),
    "webp": ("libwebp", "webp", "yuv420p"),
}


def picture(kind: str, width: int = 64, height: int = 48, *, black: bool = False) -> bytes:
    """A picture of two colours (or all black) encoded by PyAV."""
    codec, container_format, pix_fmt = ENCODERS[kind]
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        pixels = np.zeros((height, width, 3), dtype=np.uint8)
        if not black:
            pixels[:, : width // 2] = (200, 30, 30)
            pixels[:, width // 2 :] = (30, 30, 200)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format=pix_fmt)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_text(png: bytes) -> bytes:
    """A tEXt chunk after IHDR (8-byte signature + 25-byte IHDR chunk), and bytes after IEND."""
    text = png_chunk(b"tEXt", b"Comment\x00" + MARKER)
    return png[:33] + text + png[33:] + MARKER


def jpeg_with_exif(jpeg: bytes) -> bytes:
    """An APP1 Exif segment (one ImageDescription tag holding MARKER) right after SOI."""
    value = MARKER + b"\x00"
    ifd = struct.pack(">H", 1) + struct.pack(">HHII", 0x010E, 2, len(value), 26) + b"\x00" * 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + value
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def decoded_size(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def upload(
    client: httpx.AsyncClient, auth: dict[str, str], data: bytes, media_type: str = "image/png"
) -> httpx.Response:
    return await client.put(AVATAR, content=data, headers={**auth, "Content-Type": media_type})


@pytest.mark.parametrize("kind", sorted(ENCODERS))
async def test_each_format_is_stored_as_a_webp(
    client: httpx.AsyncClient, register: Register, kind: str
) -> None:
    data = await register(f"pic_{kind}")
    original = picture(kind)
    put = await upload(client, data["auth"], original, f"image/{kind}")
    assert put.status_code == 200, put.text
    got = await client.get(put.json()["avatar_url"])
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/webp"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.content[:4] == b"RIFF" and got.content[8:12] == b"WEBP"
    assert got.content != original
    assert decoded_size(got.content) == (64, 48)


async def test_big_pictures_are_scaled_down_and_multipart_works(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("quinn")
    put = await client.put(
        AVATAR,
        files={"file": ("a.png", picture("png", 1200, 600), "image/png")},
        headers=data["auth"],
    )
    assert put.status_code == 200, put.text
    url = put.json()["avatar_url"]
    assert url == "/api/v1/users/quinn/avatar"
    assert decoded_size((await client.get(url)).content) == (256, 128)
    assert (await client.get("/api/v1/me", headers=data["auth"])).json()["avatar_url"] == url
    assert (await client.delete(AVATAR, headers=data["auth"])).status_code == 204
    assert_error(await client.get(url), 404)


@pytest.mark.parametrize(
    ("kind", "add_metadata"), [("png", png_with_text), ("jpeg", jpeg_with_exif)]
)
async def test_metadata_is_gone(
    client: httpx.AsyncClient, register: Register, kind: str, add_metadata: object
) -> None:
    data = await register(f"meta_{kind}")
    assert callable(add_metadata)
    tagged = add_metadata(picture(kind))
    assert MARKER in tagged
    decoded_size(tagged)  # still a valid picture
    put = await upload(client, data["auth"], tagged)
    assert put.status_code == 200, put.text
    stored = (await client.get(put.json()["avatar_url"])).content
    assert MARKER not in stored
    assert b"Exif" not in stored and b"EXIF" not in stored


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` (its IDAT would inflate to gigabytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def gif_bomb() -> bytes:
    """A GIF whose screen and image both claim 65535 x 65535."""
    gif = bytearray(picture("gif"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    image = gif.index(b"\x2c", 13 + 3 * 2 ** ((gif[10] & 7) + 1))
    gif[image + 5 : image + 9] = struct.pack("<HH", 65535, 65535)
    return bytes(gif)


def jpeg_bomb() -> bytes:
    """A real JPEG whose frame header (SOF0) claims 65500 x 65500."""
    jpeg = bytearray(picture("jpeg"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 65500, 65500)
    return bytes(jpeg)


def webp_bomb() -> bytes:
    """A real lossy WebP whose VP8 header claims 16383 x 16383, the largest it can say."""
    webp = bytearray(picture("webp"))
    start = webp.index(b"\x9d\x01\x2a")
    webp[start + 3 : start + 7] = struct.pack("<HH", 16383, 16383)
    return bytes(webp)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("png bomb", png_bomb(60_000, 60_000)),
        ("jpeg bomb", jpeg_bomb()),
        ("webp bomb", webp_bomb()),
        ("wide png bomb", png_bomb(1_000_000, 20)),
        ("gif bomb", gif_bomb()),
        ("png magic, garbage", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
        ("jpeg magic, garbage", b"\xff\xd8\xff\xe0" + b"\x13\x37" * 500),
        ("gif magic, garbage", b"GIF89a" + b"\xff" * 400),
        ("webp magic, garbage", b"RIFF\x00\x01\x00\x00WEBPVP8 " + b"\xaa" * 400),
        ("truncated png", picture("png")[:60]),
        ("html", b"<html><script>alert(1)</script></html>"),
        ("empty", b""),
    ],
)
async def test_bombs_and_fakes_are_refused(
    client: httpx.AsyncClient, register: Register, name: str, content: bytes
) -> None:
    data = await register("bomb")
    response = await upload(client, data["auth"], content)
    assert_error(response, 415, "unsupported_media_type")
    assert (await client.get("/api/v1/me", headers=data["auth"])).json()["avatar_url"] is None


@pytest.mark.parametrize("kind", sorted(ENCODERS))
async def test_real_pictures_over_the_pixel_limit_are_refused(
    client: httpx.AsyncClient, register: Register, kind: str
) -> None:
    """Well-formed 5000x4000 pictures (20 megapixels in a few kilobytes): the limit, nothing
    else, refuses them.
    """
    big = picture(kind, 5000, 4000, black=True)
    assert len(big) < 2 * 1024 * 1024 and MAX_PIXELS < 5000 * 4000
    reencode_avatar(big, max_pixels=2 * 5000 * 4000)  # decodes: only the limit stands in the way
    data = await register(f"big_{kind}")
    response = await upload(client, data["auth"], big)
    assert_error(response, 415, "unsupported_media_type")


async def test_big_files_are_refused_before_decoding(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("rita")
    huge = picture("png") + b"\x00" * (2 * 1024 * 1024)
    assert_error(await upload(client, data["auth"], huge), 413, "payload_too_large")
