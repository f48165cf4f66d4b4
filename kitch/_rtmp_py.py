"""Pure-Python twin of :mod:`kitch._rtmp`: the RTMP chunk stream reader and the media fast path
(the common FLV frames of a publish made into packets), same API and results.

:mod:`kitch.twins` selects it with ``KITCH_PUREPYTHON=1`` or when the native build is missing;
the unit and fuzz tests run on both. Keep the two in step: any behaviour change goes in both
files. The cold parts of the wire format (handshake, AMF0, the chunk writer) exist once, in
plain Python, in :mod:`kitch.rtmp`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "ChunkReader",
    "MediaFastPath",
    "Message",
    "RtmpError",
    "TimestampUnwrapper",
]

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


# -- media messages of a publish ----------------------------------------------------------------

_WRAP = 1 << 32
_HALF = 1 << 31
_VIDEO_FOURCCS = {b"avc1": "h264", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9"}
_AUDIO_FOURCCS = {b"mp4a": "aac", b"Opus": "opus"}
_LEGACY_VIDEO = {7: "h264", 12: "hevc"}


class TimestampUnwrapper:
    """Turn 32-bit millisecond timestamps into 64-bit ones across rollovers.

    Each value is placed within 2^31 ms of the previous one, so both forward wraps and slightly
    late (non-monotonic) stamps land right. The first value is taken as is.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: int | None = None

    def _near(self, ts32: int) -> bool:
        """Whether ``ts32`` is taken as it is (no rollover near)."""
        last = self._last
        return last is not None and last < _WRAP and -_HALF <= ts32 - last <= _HALF

    def unwrap(self, ts32: int) -> int:
        if self._near(ts32):
            self._last = ts32
            return ts32
        last = self._last
        if last is None:
            value = ts32
        else:
            value = (last & ~(_WRAP - 1)) | ts32
            if value - last > _HALF:
                value -= _WRAP
            elif last - value > _HALF:
                value += _WRAP
            if value < 0:
                value += _WRAP
        self._last = value
        return value


class MediaFastPath:
    """The common media messages of a publish, made into packets without the FLV parser.

    Taken here: coded frames of the video and audio codec whose configuration the parser has
    accepted (``video_codec`` / ``audio_codec``, set by the parser; None: none yet), in legacy
    FLV tags (AVC/HEVC packet type 1, AAC raw) and in single-track Enhanced RTMP tags
    (CodedFrames, CodedFramesX) once the parser has chosen track 0 (``ex_video`` /
    ``ex_audio``), with a non-empty frame and a timestamp that needs no rollover handling.
    Anything else (commands, configurations, other codecs, errors) is left to the caller, so
    the packets, and the errors, are the parser's own.
    """

    def __init__(
        self,
        video_clock: TimestampUnwrapper,
        audio_clock: TimestampUnwrapper,
        packet_type: Any,
        event_type: Any,
    ) -> None:
        self.video_clock = video_clock
        self.audio_clock = audio_clock
        self.packet_type = packet_type
        self.event_type = event_type
        self.video_codec: str | None = None
        self.audio_codec: str | None = None
        self.ex_video = False
        self.ex_audio = False
        self._taken = 0

    @property
    def taken(self) -> int:
        """How many messages the last ``drain`` took."""
        return self._taken

    def drain(
        self, reader: ChunkReader, events: Any, lane: Callable[[Any], bool] | None = None
    ) -> Message | None:
        """Read messages from ``reader``, appending ``event_type(packet_type(...))`` to
        ``events`` for each one taken, until one is not: return it (None: more bytes needed).
        ``taken`` is then how many were taken. With ``lane``, a packet taken while ``events``
        is empty goes to ``lane(packet)`` first, and becomes an event only if that is false
        (so packets stay in order)."""
        self._taken = 0
        while True:
            message = reader.next_message()
            if message is None:
                return None
            packet = self.packet(message[1], message[3], message[4])
            if packet is None:
                return message
            self._taken += 1
            if lane is not None and not events and lane(packet):
                continue
            events.append(self.event_type(packet))

    def packet(self, msg_type: int, timestamp: int, payload: bytes) -> Any:
        """The packet of one media message, or None when it is not one this path takes."""
        if msg_type == 9:
            return self._video(timestamp, payload)
        if msg_type == 8:
            return self._audio(timestamp, payload)
        return None

    def _video(self, ts: int, data: bytes) -> Any:
        codec = self.video_codec
        if codec is None or len(data) < 5 or not self.video_clock._near(ts):
            return None
        head = data[0]
        cts = 0
        if head & 0x80:  # Enhanced RTMP
            kind = head & 0x0F
            if not self.ex_video or kind not in (1, 3) or (head >> 4) & 0x07 == 5:
                return None
            if _VIDEO_FOURCCS.get(bytes(data[1:5])) != codec:
                return None
            start = 5
            if kind == 1 and codec in ("h264", "hevc"):
                if len(data) < 8:
                    return None
                cts = int.from_bytes(data[5:8], "big", signed=True)
                start = 8
            key = (head >> 4) & 0x07 in (1, 4)
        else:
            if data[1] != 1 or head >> 4 == 5 or _LEGACY_VIDEO.get(head & 0x0F) != codec:
                return None
            cts = int.from_bytes(data[2:5], "big", signed=True)
            start = 5
            key = head >> 4 in (1, 4)
        if len(data) <= start:
            return None
        self.video_clock._last = ts
        return self.packet_type("video", codec, ts, ts + cts, memoryview(data)[start:], key)

    def _audio(self, ts: int, data: bytes) -> Any:
        codec = self.audio_codec
        if codec is None or len(data) < 2 or not self.audio_clock._near(ts):
            return None
        head = data[0]
        if head >> 4 == 9:  # Enhanced RTMP
            if not self.ex_audio or len(data) < 6 or head & 0x0F != 1:
                return None
            if _AUDIO_FOURCCS.get(bytes(data[1:5])) != codec:
                return None
            start = 5
        elif head >> 4 == 10 and codec == "aac" and data[1] == 1 and len(data) > 2:
            start = 2
        else:
            return None
        self.audio_clock._last = ts
        return self.packet_type("audio", codec, ts, ts, memoryview(data)[start:], True)
