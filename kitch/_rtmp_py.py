"""Pure-Python twin of :mod:`kitch._rtmp`: the RTMP chunk stream reader, same API and results.

:mod:`kitch.twins` selects it with ``KITCH_PUREPYTHON=1`` or when the native build is missing;
the reader's unit and fuzz tests run on both. Keep the two in step: any behaviour change goes in
both files. The cold parts of the wire format (handshake, AMF0, the chunk writer) exist once, in
plain Python, in :mod:`kitch.rtmp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DEFAULT_CHUNK_SIZE", "MAX_CHUNK_SIZE", "ChunkReader", "Message", "RtmpError"]

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0xFFFFFF
_COMPACT_AT = 65536
#: Same accounting as the native reader: messages up to 64 KiB (or fully present in the input)
#: count their full length from their first chunk.
_EXACT_ALLOC_MAX = 65536
_U32 = 0xFFFFFFFF

Message = tuple[int, int, int, int, bytes]


class RtmpError(ValueError):
    """Malformed or over-limit RTMP input (the only exception this module raises on input)."""


# -- chunk reader -------------------------------------------------------------------------------


class _ChunkStream:
    __slots__ = (
        "delta",
        "exact",
        "extended",
        "length",
        "msg_type",
        "partial",
        "stream_id",
        "timestamp",
    )

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.stream_id = 0
        self.msg_type = 0
        self.extended = False
        self.exact = False  # counted at its full length (the native reader allocates it whole)
        self.partial: bytearray | None = None


class ChunkReader:
    """Incremental RTMP chunk stream parser; see :class:`kitch._rtmp.ChunkReader`.

    Defaults: max_message_size 4 MiB, max_chunk_streams 64, chunk_size 128.
    """

    def __init__(
        self,
        max_message_size: int = 4 * 1024 * 1024,
        max_chunk_streams: int = 64,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if max_message_size < 1 or max_chunk_streams < 1 or chunk_size < 1:
            raise ValueError("limits must be positive")
        self._buf = bytearray()
        self._pos = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._partial_bytes = 0
        self.chunk_size = min(chunk_size, MAX_CHUNK_SIZE)
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams

    @property
    def buffered(self) -> int:
        """Bytes held: unparsed input plus the buffers of unfinished messages (a message of up
        to 64 KiB counts its full length as soon as its first chunk arrives)."""
        return len(self._buf) - self._pos + self._partial_bytes

    @property
    def chunk_streams(self) -> int:
        """How many chunk stream ids the peer has opened."""
        return len(self._streams)

    def feed(self, data: Buffer) -> None:
        """Append bytes received from the peer."""
        if self._pos:
            if self._pos == len(self._buf):
                self._buf.clear()
                self._pos = 0
            elif self._pos >= _COMPACT_AT:
                del self._buf[: self._pos]
                self._pos = 0
        self._buf += data

    def next_message(self) -> Message | None:
        """Return the next complete message tuple, or None when more bytes are needed."""
        buf = self._buf
        while True:
            pos = self._pos
            avail = len(buf) - pos
            if avail < 1:
                return None
            fmt = buf[pos] >> 6
            csid = buf[pos] & 0x3F
            hlen = 1
            if csid == 0:
                if avail < 2:
                    return None
                csid = 64 + buf[pos + 1]
                hlen = 2
            elif csid == 1:
                if avail < 3:
                    return None
                csid = 64 + buf[pos + 1] + (buf[pos + 2] << 8)
                hlen = 3
            st = self._streams.get(csid)
            if st is None:
                if fmt != 0:
                    raise RtmpError(
                        f"chunk type {fmt} on chunk stream {csid} with no previous header"
                    )
                if len(self._streams) >= self.max_chunk_streams:
                    raise RtmpError(f"more than {self.max_chunk_streams} chunk streams")
                st = self._streams[csid] = _ChunkStream()
            mlen = (11, 7, 3, 0)[fmt]
            if avail < hlen + mlen:
                return None
            q = pos + hlen
            ts_field = 0
            if fmt < 3:
                ts_field = int.from_bytes(buf[q : q + 3], "big")
                ext = ts_field == 0xFFFFFF
            else:
                ext = st.extended
            need = hlen + mlen + (4 if ext else 0)
            if avail < need:
                return None
            if ext and fmt < 3:
                ts_field = int.from_bytes(buf[q + mlen : q + mlen + 4], "big")
            starting = st.partial is None
            if fmt == 0:
                length = int.from_bytes(buf[q + 3 : q + 6], "big")
                msg_type = buf[q + 6]
                stream_id = int.from_bytes(buf[q + 7 : q + 11], "little")
            elif fmt == 1:
                length = int.from_bytes(buf[q + 3 : q + 6], "big")
                msg_type = buf[q + 6]
                stream_id = st.stream_id
            else:
                length, msg_type, stream_id = st.length, st.msg_type, st.stream_id
            if (
                not starting
                and fmt < 3
                and (length != st.length or msg_type != st.msg_type or stream_id != st.stream_id)
            ):
                raise RtmpError(
                    f"chunk header on chunk stream {csid} disagrees with the message in progress"
                )
            if starting and length > self.max_message_size:
                raise RtmpError(
                    f"message of {length} bytes exceeds the {self.max_message_size} byte limit"
                )
            received = 0 if st.partial is None else len(st.partial)
            n = min(length - received, self.chunk_size)
            if avail < need + n:
                return None
            self._pos = pos + need + n
            body = bytes(buf[pos + need : pos + need + n])
            if st.partial is None:
                if fmt == 0:
                    timestamp = delta = ts_field
                else:
                    delta = st.delta if fmt == 3 else ts_field
                    timestamp = (st.timestamp + delta) & _U32
                st.timestamp, st.delta = timestamp, delta
                st.length, st.msg_type, st.stream_id = length, msg_type, stream_id
                if fmt < 3:
                    st.extended = ext
                if n == length:
                    return self._complete(csid, st, body)
                st.partial = bytearray(body)
                st.exact = length <= _EXACT_ALLOC_MAX or length <= avail
                self._partial_bytes += length if st.exact else n
                continue
            st.partial += body
            if not st.exact:
                self._partial_bytes += n
            if len(st.partial) == st.length:
                payload = bytes(st.partial)
                st.partial = None
                self._partial_bytes -= st.length
                return self._complete(csid, st, payload)

    def _complete(self, csid: int, st: _ChunkStream, payload: bytes) -> Message:
        if st.msg_type == 1:
            if len(payload) < 4:
                raise RtmpError("short Set Chunk Size message")
            value = int.from_bytes(payload[:4], "big")
            if value == 0 or value > 0x7FFFFFFF:
                raise RtmpError(f"invalid chunk size {value}")
            self.chunk_size = min(value, MAX_CHUNK_SIZE)
        elif st.msg_type == 2:
            if len(payload) < 4:
                raise RtmpError("short Abort message")
            other = self._streams.get(int.from_bytes(payload[:4], "big"))
            if other is not None and other.partial is not None:
                self._partial_bytes -= other.length if other.exact else len(other.partial)
                other.partial = None
        return (csid, st.msg_type, st.stream_id, st.timestamp, payload)
