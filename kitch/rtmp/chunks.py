"""RTMP chunk stream writer: what the server sends (control messages and command answers).

The server only writes a few small messages per connection, so this is plain Python; the
reader, which sees every byte a publisher sends, is native (:mod:`kitch.twins`).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from kitch.twins import rtmp as _core

if TYPE_CHECKING:
    from typing_extensions import Buffer

DEFAULT_CHUNK_SIZE = _core.DEFAULT_CHUNK_SIZE
_U32 = 0xFFFFFFFF


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes(((fmt << 6) | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes(((fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))


class ChunkWriter:
    """Serialise messages into chunks of ``chunk_size`` bytes (default 128).

    Every message starts with a type-0 header; continuations are type 3. Timestamps at or above
    0xFFFFFF travel in the extended field (also on the continuations).
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size

    def write(
        self, csid: int, msg_type: int, stream_id: int, timestamp: int, payload: Buffer
    ) -> bytes:
        """Return the chunks that carry one message."""
        data = bytes(payload)
        length = len(data)
        if not 2 <= csid <= 65599:
            raise ValueError("csid must be in 2..65599")
        if not 0 <= msg_type <= 255 or length > 0xFFFFFF:
            raise ValueError("bad message type or length")
        if not 0 <= timestamp <= _U32 or not 0 <= stream_id <= _U32:
            raise OverflowError("timestamp and stream id must fit 32 bits")
        ext = timestamp >= 0xFFFFFF
        ext_bytes = struct.pack(">I", timestamp) if ext else b""
        out = bytearray(_basic_header(0, csid))
        out += struct.pack(">I", min(timestamp, 0xFFFFFF))[1:]
        out += struct.pack(">I", length)[1:]
        out.append(msg_type)
        out += struct.pack("<I", stream_id)
        out += ext_bytes
        out += data[: self.chunk_size]
        basic3 = _basic_header(3, csid)
        for pos in range(self.chunk_size, length, self.chunk_size):
            out += basic3
            out += ext_bytes
            out += data[pos : pos + self.chunk_size]
        return bytes(out)
