"""Pure-Python twin of :mod:`kitch._rtmp` (same API, same results).

Selected by :mod:`kitch.rtmp.wire` when ``KITCH_PUREPYTHON=1`` or without a native build; the
parser unit tests run on both. Keep the two in step: any behaviour change goes in both files.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Buffer

HANDSHAKE_SIZE = 1536
_KEY_TAIL = bytes.fromhex("F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE")
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
FP_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
_SERVER_VERSION = b"\x04\x05\x00\x01"
DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0xFFFFFF
DEFAULT_MAX_DEPTH = 32
_COMPACT_AT = 65536
#: Same accounting as the native reader: messages up to 64 KiB (or fully present in the input)
#: count their full length from their first chunk.
_EXACT_ALLOC_MAX = 65536
_U32 = 0xFFFFFFFF

Message = tuple[int, int, int, int, bytes]


class RtmpError(ValueError):
    """Malformed or over-limit RTMP input (the only exception this module raises on input)."""


# -- handshake ----------------------------------------------------------------------------------


def _hmac256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def digest_offset(block: bytes | bytearray, scheme: int) -> int:
    """Offset of the 32-byte digest in a 1536-byte C1/S1 under scheme 0 (bytes 8-11) or 1."""
    base = 8 if scheme == 0 else 772
    return (block[base] + block[base + 1] + block[base + 2] + block[base + 3]) % 728 + base + 4


def _client_digest(c1: bytes) -> tuple[int, bytes]:
    for scheme in (0, 1):
        off = digest_offset(c1, scheme)
        expected = _hmac256(FP_KEY[:30], c1[:off] + c1[off + 32 :])
        if hmac.compare_digest(expected, c1[off : off + 32]):
            return scheme, c1[off : off + 32]
    return -1, b""


def handshake_reply(c0c1: Buffer, random_bytes: Buffer) -> tuple[bytes, int]:
    """Answer C0+C1 (1537 bytes) with S0+S1+S2; see :func:`kitch._rtmp.handshake_reply`."""
    c0c1 = bytes(c0c1)
    rnd = bytes(random_bytes)
    if len(c0c1) != HANDSHAKE_SIZE + 1:
        raise RtmpError("C0+C1 must be 1537 bytes")
    if len(rnd) < 3064:
        raise ValueError("random_bytes must hold at least 3064 bytes")
    if c0c1[0] != 3:
        raise RtmpError(f"unsupported RTMP version {c0c1[0]} (only 3)")
    c1 = c0c1[1:]
    scheme, client_digest = (-1, b"")
    if c1[4:8] != b"\x00\x00\x00\x00":
        scheme, client_digest = _client_digest(c1)
    if scheme < 0:
        return b"\x03" + bytes(8) + rnd[:1528] + c1, -1
    s1 = bytearray(bytes(4) + _SERVER_VERSION + rnd[:1528])
    off = digest_offset(s1, scheme)
    s1[off : off + 32] = _hmac256(FMS_KEY[:36], bytes(s1[:off] + s1[off + 32 :]))
    s2 = bytearray(rnd[1528:3064])
    s2[1504:] = _hmac256(_hmac256(FMS_KEY, client_digest), bytes(s2[:1504]))
    return b"\x03" + bytes(s1) + bytes(s2), scheme


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


# -- chunk writer -------------------------------------------------------------------------------


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes(((fmt << 6) | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes(((fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))


class ChunkWriter:
    """Serialise messages into chunks of ``chunk_size`` bytes (default 128)."""

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


# -- AMF0 ---------------------------------------------------------------------------------------


class _AmfDecoder:
    __slots__ = ("data", "max_depth", "n", "pos", "refs")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.n = len(data)
        self.pos = 0
        self.refs: list[Any] = []
        self.max_depth = max_depth

    def take(self, k: int) -> bytes:
        if self.n - self.pos < k:
            raise RtmpError("truncated AMF0 value")
        out = self.data[self.pos : self.pos + k]
        self.pos += k
        return out

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def number(self) -> float:
        value: float = struct.unpack(">d", self.take(8))[0]
        return value

    def string(self, length: int) -> str:
        return self.take(length).decode("utf-8", "replace")

    def pairs(self, obj: dict[str, Any], depth: int, ecma: bool) -> None:
        while True:
            if ecma and self.pos == self.n:
                return
            klen = self.u16()
            if klen == 0:
                if self.n - self.pos < 1:
                    raise RtmpError("truncated AMF0 value")
                if self.data[self.pos] == 0x09:
                    self.pos += 1
                    return
            key = self.string(klen)
            obj[key] = self.value(depth + 1)

    def value(self, depth: int) -> Any:
        if depth > self.max_depth:
            raise RtmpError(f"AMF0 nesting deeper than {self.max_depth}")
        marker = self.take(1)[0]
        if marker == 0x00:
            return self.number()
        if marker == 0x01:
            return self.take(1)[0] != 0
        if marker == 0x02:
            return self.string(self.u16())
        if marker in (0x03, 0x08, 0x10):
            if marker == 0x08:
                self.u32()
            elif marker == 0x10:
                self.string(self.u16())
            obj: dict[str, Any] = {}
            self.refs.append(obj)
            self.pairs(obj, depth, marker == 0x08)
            return obj
        if marker in (0x05, 0x06, 0x0D):
            return None
        if marker == 0x07:
            index = self.u16()
            if index >= len(self.refs):
                raise RtmpError("AMF0 reference to an unknown object")
            return self.refs[index]
        if marker == 0x0A:
            count = self.u32()
            if count > self.n - self.pos:
                raise RtmpError("AMF0 strict array longer than its buffer")
            arr: list[Any] = []
            self.refs.append(arr)
            for _ in range(count):
                arr.append(self.value(depth + 1))
            return arr
        if marker == 0x0B:
            d = self.number()
            self.take(2)
            return d
        if marker in (0x0C, 0x0F):
            return self.string(self.u32())
        if marker == 0x09:
            raise RtmpError("AMF0 object end outside an object")
        if marker == 0x11:
            raise RtmpError("AMF3 values are not supported")
        raise RtmpError(f"unsupported AMF0 marker 0x{marker:02x}")


def amf0_decode_all(data: Buffer, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Any]:
    """Decode every AMF0 value in ``data``; see :func:`kitch._rtmp.amf0_decode_all`."""
    dec = _AmfDecoder(bytes(data), max_depth)
    out = []
    while dec.pos < dec.n:
        out.append(dec.value(0))
    return out


def amf0_encode(*values: Any) -> bytes:
    """Encode values: None, bool, int/float, str, dict (object), list/tuple (strict array)."""
    out = bytearray()
    for v in values:
        _encode(out, v, 0)
    return bytes(out)


def _encode(out: bytearray, v: Any, depth: int) -> None:
    if depth > 64:
        raise ValueError("value nested too deep for AMF0")
    if v is None:
        out.append(0x05)
    elif isinstance(v, bool):
        out += b"\x01\x01" if v else b"\x01\x00"
    elif isinstance(v, (int, float)):
        out.append(0x00)
        out += struct.pack(">d", float(v))
    elif isinstance(v, str):
        raw = v.encode()
        if len(raw) <= 0xFFFF:
            out.append(0x02)
            out += struct.pack(">H", len(raw))
        else:
            out.append(0x0C)
            out += struct.pack(">I", len(raw))
        out += raw
    elif isinstance(v, dict):
        out.append(0x03)
        for key, item in v.items():
            if not isinstance(key, str):
                raise ValueError("AMF0 object keys must be str")
            raw = key.encode()
            if len(raw) > 0xFFFF:
                raise ValueError("AMF0 key too long")
            out += struct.pack(">H", len(raw))
            out += raw
            _encode(out, item, depth + 1)
        out += b"\x00\x00\x09"
    elif isinstance(v, (list, tuple)):
        out.append(0x0A)
        out += struct.pack(">I", len(v))
        for item in v:
            _encode(out, item, depth + 1)
    else:
        raise ValueError(f"cannot encode {type(v).__name__} as AMF0")
