# cython: language_level=3
"""RTMP wire format, native: handshake, chunk stream reader/writer, AMF0.

Bytes in, primitive tuples/bytes out; the meaning (commands, media) is added in
:mod:`kitch.rtmp`. Every malformed or over-limit input raises :class:`RtmpError` and nothing
else. Import it through :mod:`kitch.rtmp.wire`, which picks this module or its pure-Python twin.
"""

import hashlib
import hmac
import struct

from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_FromStringAndSize,
    PyByteArray_GET_SIZE,
    PyByteArray_Resize,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy


class RtmpError(ValueError):
    """Malformed or over-limit RTMP input (the only exception this module raises on input)."""


# ---------------------------------------------------------------------------------------------
# Handshake

HANDSHAKE_SIZE = 1536
_KEY_TAIL = bytes.fromhex("F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE")
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
FP_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
_SERVER_VERSION = b"\x04\x05\x00\x01"


def _hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def digest_offset(block, int scheme):
    """Offset of the 32-byte digest in a 1536-byte C1/S1 under scheme 0 (bytes 8-11) or 1."""
    cdef int base = 8 if scheme == 0 else 772
    return (block[base] + block[base + 1] + block[base + 2] + block[base + 3]) % 728 + base + 4


def _client_digest(bytes c1):
    cdef int scheme
    for scheme in (0, 1):
        off = digest_offset(c1, scheme)
        expected = _hmac256(FP_KEY[:30], c1[:off] + c1[off + 32 :])
        if hmac.compare_digest(expected, c1[off : off + 32]):
            return scheme, c1[off : off + 32]
    return -1, b""


def handshake_reply(c0c1, random_bytes):
    """Answer C0+C1 (1537 bytes) with S0+S1+S2 (3073 bytes).

    ``random_bytes`` (at least 3064 bytes) fills S1's random part and S2. Returns
    ``(reply, scheme)``: scheme -1 for a plain client (S2 echoes C1), else the client's digest
    scheme 0 or 1 (S1 carries our digest, S2 is keyed from the client's digest). Raises
    :class:`RtmpError` unless the version byte is 3.
    """
    c0c1 = bytes(c0c1)
    random_bytes = bytes(random_bytes)
    if len(c0c1) != HANDSHAKE_SIZE + 1:
        raise RtmpError("C0+C1 must be 1537 bytes")
    if len(random_bytes) < 3064:
        raise ValueError("random_bytes must hold at least 3064 bytes")
    if c0c1[0] != 3:
        raise RtmpError(f"unsupported RTMP version {c0c1[0]} (only 3)")
    c1 = c0c1[1:]
    scheme, client_digest = (-1, b"")
    if c1[4:8] != b"\x00\x00\x00\x00":
        scheme, client_digest = _client_digest(c1)
    if scheme < 0:
        s1 = b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00" + random_bytes[:1528]
        return b"\x03" + s1 + c1, -1
    s1b = bytearray(b"\x00\x00\x00\x00" + _SERVER_VERSION + random_bytes[:1528])
    off = digest_offset(s1b, scheme)
    s1b[off : off + 32] = _hmac256(FMS_KEY[:36], bytes(s1b[:off] + s1b[off + 32 :]))
    s2b = bytearray(random_bytes[1528:3064])
    key = _hmac256(FMS_KEY, client_digest)
    s2b[1504:] = _hmac256(key, bytes(s2b[:1504]))
    return b"\x03" + bytes(s1b) + bytes(s2b), scheme


# ---------------------------------------------------------------------------------------------
# Chunk stream reader

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0xFFFFFF
_COMPACT_AT = 65536
#: Messages up to this size (or already fully received in the input) get their final buffer at
#: once (and ``buffered`` counts all of it from then on); larger ones grow with what arrives,
#: so a declared length never allocates more than 64 KiB by itself.
cdef Py_ssize_t _EXACT_ALLOC_MAX = 65536


cdef inline uint32_t _be24(const uint8_t* p) noexcept:
    return (<uint32_t>p[0] << 16) | (<uint32_t>p[1] << 8) | p[2]


cdef inline uint32_t _be32(const uint8_t* p) noexcept:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint32_t _le32(const uint8_t* p) noexcept:
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | p[0]


cdef class _ChunkStream:
    cdef uint32_t timestamp  # absolute timestamp of the current / last message
    cdef uint32_t delta  # delta a type-3 chunk starting a new message adds
    cdef uint32_t length
    cdef uint32_t stream_id
    cdef int msg_type
    cdef bint extended  # the last type 0/1/2 header carried an extended timestamp
    cdef object partial  # payload of the message in progress (bytes or bytearray), or None
    cdef bint exact  # partial is a bytes object of the full length, filled in place
    cdef Py_ssize_t received


cdef class ChunkReader:
    """Incremental RTMP chunk stream parser (server side, reads what the peer sends).

    ``feed(data)`` then call ``next_message()`` until it returns None. Each message is
    ``(csid, msg_type, stream_id, timestamp, payload)`` with the 32-bit absolute timestamp.
    Set Chunk Size (1) and Abort (2) are applied here at their byte position and also returned.
    Defaults: max_message_size 4 MiB, max_chunk_streams 64, chunk_size 128.
    """

    cdef bytearray _buf
    cdef Py_ssize_t _pos
    cdef dict _streams
    cdef _ChunkStream _last
    cdef uint32_t _last_csid
    cdef Py_ssize_t _partial_bytes
    cdef readonly Py_ssize_t chunk_size
    cdef readonly Py_ssize_t max_message_size
    cdef readonly Py_ssize_t max_chunk_streams

    def __init__(
        self,
        Py_ssize_t max_message_size=4 * 1024 * 1024,
        Py_ssize_t max_chunk_streams=64,
        Py_ssize_t chunk_size=DEFAULT_CHUNK_SIZE,
    ):
        if max_message_size < 1 or max_chunk_streams < 1 or chunk_size < 1:
            raise ValueError("limits must be positive")
        self._buf = bytearray()
        self._pos = 0
        self._streams = {}
        self._last = None
        self._last_csid = 0
        self._partial_bytes = 0
        self.chunk_size = min(chunk_size, MAX_CHUNK_SIZE)
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams

    @property
    def buffered(self):
        """Bytes held: unparsed input plus the buffers of unfinished messages (a message of up
        to 64 KiB counts its full length as soon as its first chunk arrives)."""
        return PyByteArray_GET_SIZE(self._buf) - self._pos + self._partial_bytes

    @property
    def chunk_streams(self):
        """How many chunk stream ids the peer has opened."""
        return len(self._streams)

    def feed(self, data):
        """Append bytes received from the peer."""
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(self._buf)
        if self._pos:
            if self._pos == size:
                del self._buf[:]
                self._pos = 0
            elif self._pos >= _COMPACT_AT:
                del self._buf[: self._pos]
                self._pos = 0
        self._buf += data

    def next_message(self):
        """Return the next complete message tuple, or None when more bytes are needed."""
        cdef const uint8_t* p
        cdef const uint8_t* q
        cdef Py_ssize_t avail, hlen, mlen, need, n, total
        cdef uint32_t fmt, csid, ts_field, ext_value, length, stream_id, timestamp, delta
        cdef int msg_type
        cdef bint ext, starting
        cdef _ChunkStream st
        cdef object payload
        while True:
            avail = PyByteArray_GET_SIZE(self._buf) - self._pos
            if avail < 1:
                return None
            p = <const uint8_t*>PyByteArray_AS_STRING(self._buf) + self._pos
            fmt = p[0] >> 6
            csid = p[0] & 0x3F
            hlen = 1
            if csid == 0:
                if avail < 2:
                    return None
                csid = 64 + p[1]
                hlen = 2
            elif csid == 1:
                if avail < 3:
                    return None
                csid = 64 + p[1] + (<uint32_t>p[2] << 8)
                hlen = 3
            if self._last is not None and self._last_csid == csid:
                st = self._last
            else:
                st = self._streams.get(csid)
                if st is None:
                    if fmt != 0:
                        raise RtmpError(
                            f"chunk type {fmt} on chunk stream {csid} with no previous header"
                        )
                    if len(self._streams) >= self.max_chunk_streams:
                        raise RtmpError(f"more than {self.max_chunk_streams} chunk streams")
                    st = _ChunkStream()
                    st.partial = None
                    self._streams[csid] = st
                self._last = st
                self._last_csid = csid
            mlen = 11 if fmt == 0 else 7 if fmt == 1 else 3 if fmt == 2 else 0
            if avail < hlen + mlen:
                return None
            q = p + hlen
            ts_field = 0
            if fmt < 3:
                ts_field = _be24(q)
                ext = ts_field == 0xFFFFFF
            else:
                ext = st.extended
            need = hlen + mlen + (4 if ext else 0)
            if avail < need:
                return None
            ext_value = _be32(q + mlen) if ext else 0
            if ext and fmt < 3:
                ts_field = ext_value
            starting = st.partial is None
            # Work out the header of the message this chunk belongs to (no state change yet).
            if fmt == 0:
                length = _be24(q + 3)
                msg_type = q[6]
                stream_id = _le32(q + 7)
            elif fmt == 1:
                length = _be24(q + 3)
                msg_type = q[6]
                stream_id = st.stream_id
            else:
                length = st.length
                msg_type = st.msg_type
                stream_id = st.stream_id
            if not starting and fmt < 3 and (
                length != st.length or msg_type != st.msg_type or stream_id != st.stream_id
            ):
                raise RtmpError(
                    f"chunk header on chunk stream {csid} disagrees with the message in progress"
                )
            if starting and length > self.max_message_size:
                raise RtmpError(
                    f"message of {length} bytes exceeds the {self.max_message_size} byte limit"
                )
            n = (length - st.received) if not starting else length
            if n > self.chunk_size:
                n = self.chunk_size
            total = need + n
            if avail < total:
                return None
            # Commit.
            self._pos += total
            if starting:
                if fmt == 0:
                    timestamp = ts_field
                    delta = ts_field
                elif fmt == 3:
                    delta = st.delta
                    timestamp = st.timestamp + delta
                else:
                    delta = ts_field
                    timestamp = st.timestamp + delta
                st.timestamp = timestamp
                st.delta = delta
                st.length = length
                st.msg_type = msg_type
                st.stream_id = stream_id
                if fmt < 3:
                    st.extended = ext
                if n == length:
                    payload = PyBytes_FromStringAndSize(<const char*>(p + need), n)
                    return self._complete(csid, st, payload)
                st.exact = length <= _EXACT_ALLOC_MAX or length <= avail
                if st.exact:
                    # The whole buffer exists from now on: count all of it, not what arrived.
                    st.partial = PyBytes_FromStringAndSize(NULL, length)
                    memcpy(PyBytes_AS_STRING(st.partial), p + need, n)
                    self._partial_bytes += length
                else:
                    st.partial = PyByteArray_FromStringAndSize(<const char*>(p + need), n)
                    self._partial_bytes += n
                st.received = n
                continue
            if st.exact:
                memcpy(PyBytes_AS_STRING(st.partial) + st.received, p + need, n)
            else:
                # Grow in place (amortised) and copy the chunk without a temporary object.
                PyByteArray_Resize(st.partial, st.received + n)
                memcpy(PyByteArray_AS_STRING(st.partial) + st.received, p + need, n)
                self._partial_bytes += n
            st.received += n
            if st.received == st.length:
                payload = st.partial if st.exact else bytes(st.partial)
                st.partial = None
                st.received = 0
                self._partial_bytes -= st.length
                return self._complete(csid, st, payload)

    cdef object _complete(self, uint32_t csid, _ChunkStream st, bytes payload):
        cdef uint32_t value
        cdef _ChunkStream other
        if st.msg_type == 1:
            if len(payload) < 4:
                raise RtmpError("short Set Chunk Size message")
            value = _be32(<const uint8_t*>PyBytes_AS_STRING(payload))
            if value == 0 or value > 0x7FFFFFFF:
                raise RtmpError(f"invalid chunk size {value}")
            self.chunk_size = min(value, MAX_CHUNK_SIZE)
        elif st.msg_type == 2:
            if len(payload) < 4:
                raise RtmpError("short Abort message")
            value = _be32(<const uint8_t*>PyBytes_AS_STRING(payload))
            other = self._streams.get(value)
            if other is not None and other.partial is not None:
                self._partial_bytes -= other.length if other.exact else other.received
                other.partial = None
                other.received = 0
        return (csid, st.msg_type, st.stream_id, st.timestamp, payload)


# ---------------------------------------------------------------------------------------------
# Chunk stream writer


cdef class ChunkWriter:
    """Serialise messages into chunks of ``chunk_size`` bytes (default 128).

    Every message starts with a type-0 header; continuations are type 3. Timestamps at or above
    0xFFFFFF travel in the extended field (also on the continuations).
    """

    cdef public Py_ssize_t chunk_size

    def __init__(self, Py_ssize_t chunk_size=DEFAULT_CHUNK_SIZE):
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size

    def write(self, int csid, int msg_type, uint32_t stream_id, uint32_t timestamp, payload):
        """Return the chunks that carry one message."""
        cdef bytes data = bytes(payload)
        cdef Py_ssize_t length = len(data)
        cdef Py_ssize_t pos, n
        cdef bint ext = timestamp >= 0xFFFFFF
        if not 2 <= csid <= 65599:
            raise ValueError("csid must be in 2..65599")
        if not 0 <= msg_type <= 255 or length > 0xFFFFFF:
            raise ValueError("bad message type or length")
        out = bytearray()
        basic0 = _basic_header(0, csid)
        basic3 = _basic_header(3, csid)
        ext_bytes = struct.pack(">I", timestamp) if ext else b""
        out += basic0
        out += struct.pack(">I", min(timestamp, 0xFFFFFF))[1:]
        out += struct.pack(">I", length)[1:]
        out.append(msg_type)
        out += struct.pack("<I", stream_id)
        out += ext_bytes
        n = min(length, self.chunk_size)
        out += data[:n]
        pos = n
        while pos < length:
            n = min(length - pos, self.chunk_size)
            out += basic3
            out += ext_bytes
            out += data[pos : pos + n]
            pos += n
        return bytes(out)


def _basic_header(int fmt, int csid):
    if csid < 64:
        return bytes(((fmt << 6) | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes(((fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))


# ---------------------------------------------------------------------------------------------
# AMF0

DEFAULT_MAX_DEPTH = 32


cdef class _AmfDecoder:
    cdef bytes data
    cdef const uint8_t* p
    cdef Py_ssize_t n
    cdef Py_ssize_t pos
    cdef list refs
    cdef int max_depth

    cdef inline void need(self, Py_ssize_t k) except *:
        if self.n - self.pos < k:
            raise RtmpError("truncated AMF0 value")

    cdef inline uint32_t u16(self) except? 0xFFFFFFFF:
        self.need(2)
        cdef uint32_t v = (<uint32_t>self.p[self.pos] << 8) | self.p[self.pos + 1]
        self.pos += 2
        return v

    cdef inline uint32_t u32(self) except? 0xFFFFFFFF:
        self.need(4)
        cdef uint32_t v = _be32(self.p + self.pos)
        self.pos += 4
        return v

    cdef double number(self) except? -1.0:
        self.need(8)
        cdef uint64_t bits = (<uint64_t>_be32(self.p + self.pos) << 32) | _be32(self.p + self.pos + 4)
        cdef double d
        memcpy(&d, &bits, 8)
        self.pos += 8
        return d

    cdef str string(self, Py_ssize_t length):
        self.need(length)
        s = PyUnicode_DecodeUTF8(<const char*>(self.p + self.pos), length, "replace")
        self.pos += length
        return s

    cdef int pairs(self, dict obj, int depth, bint ecma) except -1:
        cdef Py_ssize_t klen
        while True:
            if ecma and self.pos == self.n:
                return 0  # some encoders omit the end marker of a trailing ECMA array
            klen = self.u16()
            if klen == 0:
                self.need(1)
                if self.p[self.pos] == 0x09:
                    self.pos += 1
                    return 0
            key = self.string(klen)
            obj[key] = self.value(depth + 1)

    cdef object value(self, int depth):
        cdef int marker
        cdef uint32_t count, i
        cdef dict obj
        cdef list arr
        if depth > self.max_depth:
            raise RtmpError(f"AMF0 nesting deeper than {self.max_depth}")
        self.need(1)
        marker = self.p[self.pos]
        self.pos += 1
        if marker == 0x00:
            return self.number()
        if marker == 0x01:
            self.need(1)
            self.pos += 1
            return self.p[self.pos - 1] != 0
        if marker == 0x02:
            return self.string(self.u16())
        if marker == 0x03:
            obj = {}
            self.refs.append(obj)
            self.pairs(obj, depth, False)
            return obj
        if marker == 0x05 or marker == 0x06 or marker == 0x0D:
            return None
        if marker == 0x07:
            count = self.u16()
            if count >= len(self.refs):
                raise RtmpError("AMF0 reference to an unknown object")
            return self.refs[count]
        if marker == 0x08:
            self.u32()
            obj = {}
            self.refs.append(obj)
            self.pairs(obj, depth, True)
            return obj
        if marker == 0x0A:
            count = self.u32()
            if count > self.n - self.pos:
                raise RtmpError("AMF0 strict array longer than its buffer")
            arr = []
            self.refs.append(arr)
            for i in range(count):
                arr.append(self.value(depth + 1))
            return arr
        if marker == 0x0B:
            d = self.number()
            self.need(2)
            self.pos += 2
            return d
        if marker == 0x0C or marker == 0x0F:
            return self.string(self.u32())
        if marker == 0x10:
            self.string(self.u16())  # class name, dropped
            obj = {}
            self.refs.append(obj)
            self.pairs(obj, depth, False)
            return obj
        if marker == 0x09:
            raise RtmpError("AMF0 object end outside an object")
        if marker == 0x11:
            raise RtmpError("AMF3 values are not supported")
        raise RtmpError(f"unsupported AMF0 marker 0x{marker:02x}")


def amf0_decode_all(data, int max_depth=DEFAULT_MAX_DEPTH):
    """Decode every AMF0 value in ``data`` (default max nesting depth 32) into a list.

    Numbers and dates -> float, boolean -> bool, strings/long strings/XML -> str (invalid
    UTF-8 replaced), null/undefined/unsupported -> None, object/ECMA array/typed object -> dict
    (class name dropped), strict array -> list, references -> the same object. AMF3 (0x11),
    movieclip and recordset markers raise :class:`RtmpError`.
    """
    cdef _AmfDecoder dec = _AmfDecoder()
    dec.data = bytes(data)
    dec.p = <const uint8_t*>PyBytes_AS_STRING(dec.data)
    dec.n = PyBytes_GET_SIZE(dec.data)
    dec.pos = 0
    dec.refs = []
    dec.max_depth = max_depth
    out = []
    while dec.pos < dec.n:
        out.append(dec.value(0))
    return out


def amf0_encode(*values):
    """Encode values: None -> null, bool, int/float -> number, str, dict -> object,
    list/tuple -> strict array. Raises ValueError on anything else."""
    out = bytearray()
    for v in values:
        _encode(out, v, 0)
    return bytes(out)


cdef _encode_key(bytearray out, key):
    if not isinstance(key, str):
        raise ValueError("AMF0 object keys must be str")
    raw = key.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("AMF0 key too long")
    out += struct.pack(">H", len(raw))
    out += raw


cdef _encode(bytearray out, v, int depth):
    if depth > 64:
        raise ValueError("value nested too deep for AMF0")
    if v is None:
        out.append(0x05)
    elif isinstance(v, bool):
        out.append(0x01)
        out.append(1 if v else 0)
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
            _encode_key(out, key)
            _encode(out, item, depth + 1)
        out += b"\x00\x00\x09"
    elif isinstance(v, (list, tuple)):
        out.append(0x0A)
        out += struct.pack(">I", len(v))
        for item in v:
            _encode(out, item, depth + 1)
    else:
        raise ValueError(f"cannot encode {type(v).__name__} as AMF0")
