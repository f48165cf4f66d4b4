# cython: language_level=3
"""RTMP chunk stream reader, native: every byte a publisher sends goes through it.

Bytes in, ``(csid, msg_type, stream_id, timestamp, payload)`` tuples out; the meaning
(commands, media) is added in :mod:`kitch.rtmp`, except for the common media messages of a
publish, which :class:`MediaFastPath` turns into packets here (the rest goes to the FLV parser). Every malformed or over-limit input raises
:class:`RtmpError` and nothing else. Import it through :mod:`kitch.twins`, which picks this
module or its pure-Python twin :mod:`kitch._rtmp_py` (same API, same results).
"""

from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_FromStringAndSize,
    PyByteArray_GET_SIZE,
    PyByteArray_Resize,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.string cimport memcmp, memcpy

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "ChunkReader",
    "MediaFastPath",
    "Message",
    "RtmpError",
    "TimestampUnwrapper",
]

#: ``(csid, msg_type, stream_id, timestamp, payload)``
Message = tuple[int, int, int, int, bytes]


class RtmpError(ValueError):
    """Malformed or over-limit RTMP input (the only exception this module raises on input)."""


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
# Media messages of a publish: timestamps and the FLV tag headers of coded frames

cdef int64_t _WRAP = 1LL << 32
cdef int64_t _HALF = 1LL << 31


cdef class TimestampUnwrapper:
    """Turn 32-bit millisecond timestamps into 64-bit ones across rollovers.

    Each value is placed within 2^31 ms of the previous one, so both forward wraps and slightly
    late (non-monotonic) stamps land right. The first value is taken as is.
    """

    cdef int64_t last
    cdef bint started  # (both start at 0: no stamp seen yet)

    cdef inline bint _near(self, int64_t ts32) noexcept:
        # the usual case (no rollover near): the stamp is taken as it is
        return self.started and self.last < _WRAP and -_HALF <= ts32 - self.last <= _HALF

    def unwrap(self, int64_t ts32):
        cdef int64_t value
        if self._near(ts32):
            self.last = ts32
            return ts32
        if not self.started:
            value = ts32
        else:
            value = (self.last & ~(_WRAP - 1)) | ts32
            if value - self.last > _HALF:
                value -= _WRAP
            elif self.last - value > _HALF:
                value += _WRAP
            if value < 0:
                value += _WRAP
        self.last = value
        self.started = True
        return value


cdef inline int64_t _s24(const uint8_t* p) noexcept:
    cdef int64_t v = (<int64_t>p[0] << 16) | (<int64_t>p[1] << 8) | p[2]
    return v - (1 << 24) if v & 0x800000 else v


cdef object _tuple_new = tuple.__new__


cdef object _ex_codec(const uint8_t* f, bint video):
    """The codec name of an Enhanced RTMP FourCC (None: not one taken here)."""
    cdef const char* c = <const char*>f
    if video:
        if memcmp(c, b"avc1", 4) == 0:
            return "h264"
        if memcmp(c, b"hvc1", 4) == 0:
            return "hevc"
        if memcmp(c, b"av01", 4) == 0:
            return "av1"
        if memcmp(c, b"vp09", 4) == 0:
            return "vp9"
        return None
    if memcmp(c, b"mp4a", 4) == 0:
        return "aac"
    if memcmp(c, b"Opus", 4) == 0:
        return "opus"
    return None


cdef class MediaFastPath:
    """The common media messages of a publish, made into packets without the FLV parser.

    Taken here: coded frames of the video and audio codec whose configuration the parser has
    accepted (``video_codec`` / ``audio_codec``, set by the parser; None: none yet), in legacy
    FLV tags (AVC/HEVC packet type 1, AAC raw) and in single-track Enhanced RTMP tags
    (CodedFrames, CodedFramesX) once the parser has chosen track 0 (``ex_video`` /
    ``ex_audio``), with a non-empty frame and a timestamp that needs no rollover handling.
    Anything else (commands, configurations, other codecs, errors) is left to the caller, so
    the packets, and the errors, are the parser's own.
    """

    cdef public object video_codec
    cdef public object audio_codec
    cdef public bint ex_video
    cdef public bint ex_audio
    cdef TimestampUnwrapper video_clock
    cdef TimestampUnwrapper audio_clock
    cdef object packet_type
    cdef object event_type
    cdef readonly Py_ssize_t taken

    def __init__(
        self,
        TimestampUnwrapper video_clock,
        TimestampUnwrapper audio_clock,
        packet_type,
        event_type,
    ):
        self.video_clock = video_clock
        self.audio_clock = audio_clock
        self.packet_type = packet_type
        self.event_type = event_type
        self.video_codec = None
        self.audio_codec = None
        self.ex_video = False
        self.ex_audio = False
        self.taken = 0

    def drain(self, ChunkReader reader, events, lane=None):
        """Read messages from ``reader``, appending ``event_type(packet_type(...))`` to
        ``events`` for each one taken, until one is not: return it (None: more bytes needed).
        ``taken`` is then how many were taken. With ``lane``, a packet taken while ``events``
        is empty goes to ``lane(packet)`` first, and becomes an event only if that is false
        (so packets stay in order)."""
        cdef object message, packet
        self.taken = 0
        while True:
            message = reader.next_message()
            if message is None:
                return None
            packet = self._packet(message)
            if packet is None:
                return message
            self.taken += 1
            if lane is not None and not events and lane(packet):
                continue
            events.append(_tuple_new(self.event_type, (packet,)))

    def packet(self, int msg_type, int64_t timestamp, bytes payload):
        """The packet of one media message, or None when it is not one this path takes."""
        return self._packet((0, msg_type, 0, timestamp, payload))

    cdef object _packet(self, tuple message):
        cdef int msg_type = message[1]
        cdef bytes payload
        cdef const uint8_t* p
        cdef Py_ssize_t n, start
        cdef int64_t ts, cts = 0
        cdef int head, kind
        cdef object codec
        cdef bint key
        if msg_type != 9 and msg_type != 8:
            return None
        payload = message[4]
        n = len(payload)
        if n < 2:
            return None
        p = <const uint8_t*>PyBytes_AS_STRING(payload)
        ts = message[3]
        head = p[0]
        if msg_type == 9:
            codec = self.video_codec
            if codec is None or not self.video_clock._near(ts):
                return None
            if head & 0x80:  # Enhanced RTMP
                kind = head & 0x0F
                if not self.ex_video or n < 5 or (kind != 1 and kind != 3):
                    return None
                if ((head >> 4) & 0x07) == 5:  # a video command
                    return None
                if codec != _ex_codec(p + 1, True):
                    return None
                start = 5
                if kind == 1 and (codec == "h264" or codec == "hevc"):
                    if n < 8:
                        return None
                    cts = _s24(p + 5)
                    start = 8
                key = ((head >> 4) & 0x07) in (1, 4)
            else:
                if n < 5 or p[1] != 1 or (head >> 4) == 5:
                    return None
                kind = head & 0x0F
                if not ((kind == 7 and codec == "h264") or (kind == 12 and codec == "hevc")):
                    return None
                cts = _s24(p + 2)
                start = 5
                key = (head >> 4) in (1, 4)
            if n <= start:
                return None
            self.video_clock.last = ts
            return _tuple_new(
                self.packet_type,
                ("video", codec, ts, ts + cts, memoryview(payload)[start:], key, False),
            )
        codec = self.audio_codec
        if codec is None or not self.audio_clock._near(ts):
            return None
        if (head >> 4) == 9:  # Enhanced RTMP
            if not self.ex_audio or n < 6 or (head & 0x0F) != 1:
                return None
            if codec != _ex_codec(p + 1, False):
                return None
            start = 5
        elif (head >> 4) == 10 and codec == "aac" and p[1] == 1 and n > 2:
            start = 2
        else:
            return None
        self.audio_clock.last = ts
        return _tuple_new(
            self.packet_type, ("audio", codec, ts, ts, memoryview(payload)[start:], True, False)
        )
