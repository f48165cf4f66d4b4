"""Hand-built RTMP chunks and feeding helpers for parser tests (independent of ChunkWriter)."""

from __future__ import annotations

import struct

from kitch.twins import rtmp

Message = tuple[int, int, int, int, bytes]


def basic(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([(fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])


def _ts(value: int) -> tuple[bytes, bytes]:
    if value >= 0xFFFFFF:
        return b"\xff\xff\xff", struct.pack(">I", value)
    return struct.pack(">I", value)[1:], b""


def chunk0(csid: int, ts: int, length: int, msg_type: int, sid: int, body: bytes) -> bytes:
    field, ext = _ts(ts)
    head = field + struct.pack(">I", length)[1:] + bytes([msg_type]) + struct.pack("<I", sid)
    return basic(0, csid) + head + ext + body


def chunk1(csid: int, delta: int, length: int, msg_type: int, body: bytes) -> bytes:
    field, ext = _ts(delta)
    return basic(1, csid) + field + struct.pack(">I", length)[1:] + bytes([msg_type]) + ext + body


def chunk2(csid: int, delta: int, body: bytes) -> bytes:
    field, ext = _ts(delta)
    return basic(2, csid) + field + ext + body


def chunk3(csid: int, body: bytes, ext: int | None = None) -> bytes:
    return basic(3, csid) + (struct.pack(">I", ext) if ext is not None else b"") + body


def set_chunk_size(size: int, csid: int = 2) -> bytes:
    return chunk0(csid, 0, 4, 1, 0, struct.pack(">I", size))


def drain(reader: rtmp.ChunkReader) -> list[Message]:
    out = []
    while (msg := reader.next_message()) is not None:
        out.append(msg)
    return out


def parse(data: bytes, mode: str = "whole", **limits: int) -> list[Message]:
    """Parse ``data`` fed whole, one byte at a time ("bytes"), or whole plus the start of
    another message ("trailing", which must stay buffered)."""
    reader = rtmp.ChunkReader(**limits)
    out: list[Message] = []
    if mode == "bytes":
        for i in range(len(data)):
            reader.feed(data[i : i + 1])
            out += drain(reader)
        assert reader.buffered == 0
        return out
    trailing = chunk0(60, 0, 10, 8, 1, b"abc")[:7] if mode == "trailing" else b""
    reader.feed(data + trailing)
    out += drain(reader)
    assert reader.buffered == len(trailing)
    return out


MODES = ("whole", "bytes", "trailing")
