"""A copy of the HLS registry kept in another process: the messages, their framing, both ends.

The process that ingests owns the real :class:`~kitch.hls.registry.HlsRegistry`. A
:class:`MirrorTap` set as its ``tap`` turns every change into a message, in the order the
changes are made: a stream opened (channel, broadcast id, time), a rendition added, each store
event (:mod:`kitch.hls.events`) with the ``now`` it was applied at, the values the segmenter
settled after a batch of events (part target, target duration, frame rate), a rendition or a
stream ended, an expiry pass. A :class:`MirrorRegistry` applies the same messages in the same
order to stores built with the same :class:`~kitch.hls.settings.HlsSettings`; memory
enforcement and expiry run the same code at the same points, so it renders byte-identical
playlists for the same state. A mirror that starts late (or fell behind and was dropped) first
gets :func:`snapshot_frames` (every stream's current window, its inits, segments, parts and
departed segments), then the live messages.

Framing: each message is a msgpack array (first item an ``Op``), sent as a 4-byte big-endian
length and the msgpack bytes; :class:`FrameReader` splits a byte stream back into messages and
refuses frames past a size bound. Sans-IO: nothing here does I/O or knows about time.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Any

import msgpack

from kitch.hls.events import Event, InitReady, PartReady, SegmentEnded
from kitch.hls.registry import HlsRegistry, LiveStream, Rendition
from kitch.hls.settings import HlsSettings
from kitch.hls.store import Part, RenditionStore, Resume, Segment

_LENGTH = struct.Struct(">I")
#: Largest frame a reader accepts by default (a snapshot sends one rendition per frame, and a
#: rendition holds at most the stream's memory cap).
MAX_FRAME = 1024 * 1024 * 1024


class Op(IntEnum):
    """The first item of every message."""

    OPEN = 1  # channel, broadcast id, now, resume (next msn, discontinuity sequence) or None
    RENDITION = 2  # channel, name, rung
    INIT = 3  # channel, rendition, now, data, codecs, width, height, fps, video, audio, container
    PART = 4  # channel, rendition, now, data, duration, independent, first, discontinuity,
    # media time, program date time, msn, number
    SEGMENT_END = 5  # channel, rendition, now
    SETTLED = 6  # channel, rendition, now, part target, target duration, frame rate
    RENDITION_END = 7  # channel, rendition, now
    STREAM_END = 8  # channel, now
    EXPIRE = 9  # now
    SNAPSHOT = 10  # (a snapshot starts: forget everything)
    SNAPSHOT_STREAM = 11  # channel, broadcast id, started at, resume, ended at
    SNAPSHOT_RENDITION = 12  # channel, name, rung, frame rate, store state
    SNAPSHOT_END = 13
    #: worker -> main: [[channel, client address, user agent], ...] seen reading playlists
    SIGHTINGS = 20
    #: main -> worker, first message: the worker's configuration (a map)
    CONFIG = 21
    #: worker -> main: [[method, area, status, count], ...] requests answered since the last
    REQUESTS = 22
    #: main -> worker: {channel: node base URL} of every channel live on another node of a
    #: cluster (the whole table, sent when it changes and after every snapshot)
    ROUTES = 23


class MirrorError(ValueError):
    """A frame or message that cannot be read (too large, not msgpack, wrong shape)."""


def encode(message: list[Any]) -> bytes:
    """One framed message: length + msgpack."""
    body: bytes = msgpack.packb(message, use_bin_type=True)
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Splits a byte stream into messages (each a list whose first item is an :class:`Op`)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._chunks: deque[bytes] = deque()
        self._size = 0

    @property
    def buffered(self) -> int:
        return self._size

    def feed(self, data: bytes) -> Iterator[list[Any]]:
        """Take ``data``; yield every message now complete. Raises :class:`MirrorError`."""
        if data:
            self._chunks.append(data)
            self._size += len(data)
        while self._size >= 4:
            head = self._peek(4)
            (length,) = _LENGTH.unpack(head)
            if length > self.max_frame:
                raise MirrorError(f"frame of {length} bytes is over {self.max_frame}")
            if self._size < 4 + length:
                return
            body = self._take(4 + length)[4:]
            try:
                message = msgpack.unpackb(body, raw=False)
            except Exception as exc:
                raise MirrorError(f"unreadable frame: {exc}") from None
            if not isinstance(message, list) or not message or not isinstance(message[0], int):
                raise MirrorError("a message is a non-empty array starting with an op")
            yield message

    def _peek(self, n: int) -> bytes:
        first = self._chunks[0]
        if len(first) >= n:
            return first[:n]
        return self._join()[:n]

    def _join(self) -> bytes:
        joined = b"".join(self._chunks)
        self._chunks.clear()
        self._chunks.append(joined)
        return joined

    def _take(self, n: int) -> bytes:
        first = self._chunks[0]
        if len(first) < n:
            first = self._join()
        self._chunks.popleft()
        if len(first) > n:
            self._chunks.appendleft(first[n:])
        self._size -= n
        return first[:n] if len(first) > n else first


# ---- the ingest side ------------------------------------------------------------------------


def _event_message(rendition: Rendition, event: Event, now: float) -> list[Any]:
    channel, name = rendition.stream.channel, rendition.name
    if isinstance(event, PartReady):
        e = event
        return [
            Op.PART, channel, name, now, e.data, e.duration, e.independent, e.first_in_segment,
            e.discontinuity, e.media_time, e.program_date_time, e.msn, e.number,
        ]  # fmt: skip
    if isinstance(event, InitReady):
        return [Op.INIT, channel, name, now, *_init_fields(event)]
    return [Op.SEGMENT_END, channel, name, now]


class MirrorTap:
    """The registry's :class:`~kitch.hls.registry.Tap` that sends each change, framed, to
    ``send`` (called synchronously, in order). Changes of a stream the registry no longer
    lists (a late packet of a replaced broadcast) are not sent: no mirror has that stream."""

    def __init__(self, registry: HlsRegistry, send: Callable[[bytes], None]) -> None:
        self.registry = registry
        self.send = send
        registry.tap = self

    def close(self) -> None:
        if self.registry.tap is self:
            self.registry.tap = None

    def _current(self, stream: LiveStream) -> bool:
        return self.registry.get(stream.channel) is stream

    def opened(self, stream: LiveStream) -> None:
        opening = [stream.channel, stream.broadcast_id, stream.started_at, _resume(stream)]
        self.send(encode([Op.OPEN, *opening]))

    def rendition_added(self, rendition: Rendition, rung: bool) -> None:
        if self._current(rendition.stream):
            self.send(encode([Op.RENDITION, rendition.stream.channel, rendition.name, rung]))

    def applied(self, rendition: Rendition, event: Event, now: float) -> None:
        if self._current(rendition.stream):
            self.send(encode(_event_message(rendition, event, now)))

    def settled(self, rendition: Rendition, now: float) -> None:
        if self._current(rendition.stream):
            store, channel = rendition.store, rendition.stream.channel
            message = [Op.SETTLED, channel, rendition.name, now, store.part_target]
            message += [store.target_duration, rendition.frame_rate]
            self.send(encode(message))

    def rendition_ended(self, rendition: Rendition, now: float) -> None:
        if self._current(rendition.stream):
            self.send(encode([Op.RENDITION_END, rendition.stream.channel, rendition.name, now]))

    def stream_ended(self, stream: LiveStream, now: float) -> None:
        if self._current(stream):
            self.send(encode([Op.STREAM_END, stream.channel, now]))

    def expired(self, now: float) -> None:
        self.send(encode([Op.EXPIRE, now]))


def _resume(stream: LiveStream) -> list[int] | None:
    r = stream.resume
    return None if r is None else [r.next_msn, r.discontinuity_sequence]


def _init_fields(init: InitReady) -> list[Any]:
    return [
        init.data, init.codecs, init.width, init.height, init.frame_rate, init.has_video,
        init.has_audio, init.container,
    ]  # fmt: skip


def _segment_state(seg: Segment) -> list[Any]:
    if seg.data is not None:  # asked for whole: the parts are slices of the segment's bytes
        parts: list[Any] = [[p.number, len(p.data), p.duration, p.independent] for p in seg.parts]
    else:
        parts = [[p.number, p.data, p.duration, p.independent] for p in seg.parts]
    return [
        seg.msn, seg.init, seg.discontinuity, seg.program_date_time, seg.independent,
        seg.complete, seg.duration, seg.data, seg.departed_at, parts,
    ]  # fmt: skip


def store_state(store: RenditionStore) -> list[Any]:
    """Everything a store holds, as msgpack-able lists (see :func:`restore_store`)."""
    return [
        [[n, *_init_fields(i)] for n, i in store.inits.items()],
        [_segment_state(s) for s in store.segments],
        [_segment_state(s) for s in store.departed.values()],
        store.discontinuity_sequence, store.next_part_number, store.next_msn, store.ended,
        store.target_duration, store.part_target, store.memory_drops,
        store._pdt_anchor, store._init_id,
    ]  # fmt: skip


def _restore_segment(state: list[Any]) -> Segment:
    msn, init, disc, pdt, independent, complete, duration, data, departed_at, parts = state
    seg = Segment(int(msn), int(init), bool(disc), float(pdt), bool(independent))
    seg.complete, seg.duration, seg.data, seg.departed_at = complete, duration, data, departed_at
    if data is not None:
        view, offset = memoryview(data), 0
        for number, size, dur, ind in parts:
            seg.parts.append(Part(number, view[offset : offset + size], dur, ind))
            offset += size
    else:
        seg.parts = [Part(number, bytes(d), dur, ind) for number, d, dur, ind in parts]
    return seg


def restore_store(store: RenditionStore, state: list[Any]) -> None:
    """Make ``store`` (a fresh one) hold what :func:`store_state` described."""
    inits, segments, departed, *counters = state
    for n, *fields in inits:
        store.inits[int(n)] = InitReady(*fields)
    for s in segments:
        seg = _restore_segment(s)
        store.segments.append(seg)
        for p in seg.parts:
            store.parts[p.number] = p
            store.part_to_segment[p.number] = seg.msn
    for s in departed:
        seg = _restore_segment(s)
        store.departed[seg.msn] = seg
    (
        store.discontinuity_sequence, store.next_part_number, store.next_msn, store.ended,
        store.target_duration, store.part_target, store.memory_drops,
        store._pdt_anchor, store._init_id,
    ) = counters  # fmt: skip


def snapshot_frames(registry: HlsRegistry) -> Iterator[bytes]:
    """The framed messages that make a fresh (or stale) mirror equal to ``registry`` now:
    one frame per stream and per rendition, so no frame is larger than one rendition."""
    yield encode([Op.SNAPSHOT])
    for channel in registry.channels():
        stream = registry.get(channel)
        if stream is None:
            continue
        yield encode(
            [
                Op.SNAPSHOT_STREAM, channel, stream.broadcast_id, stream.started_at,
                _resume(stream), stream.ended_at,
            ]
        )  # fmt: skip
        for name, r in stream.renditions.items():
            yield encode(
                [
                    Op.SNAPSHOT_RENDITION, channel, name, name in stream.rungs, r.frame_rate,
                    store_state(r.store),
                ]
            )  # fmt: skip
    yield encode([Op.SNAPSHOT_END])


# ---- the mirror side ------------------------------------------------------------------------


class MirrorRendition(Rendition):
    """A rendition without a segmenter: its store is filled by messages."""

    def __init__(self, stream: LiveStream, name: str) -> None:  # no super(): no segmenter
        self.stream = stream
        self.name = name
        self.store = RenditionStore(name, stream.broadcast_id, stream.settings, stream.resume)
        self.config_errors = 0
        self._frame_rate = 0.0

    @property
    def frame_rate(self) -> float:
        return self._frame_rate


class MirrorStream(LiveStream):
    """A :class:`LiveStream` whose renditions are :class:`MirrorRendition`; it is only read
    (playlists, files) and changed by :class:`MirrorRegistry`."""

    def rendition(self, name: str) -> Rendition:
        r = self.renditions.get(name)
        if r is None:
            r = self.renditions[name] = MirrorRendition(self, name)
        return r


class MirrorRegistry(HlsRegistry):
    """The registry a worker serves from, changed only by :meth:`apply`. Listeners (the
    blocking-reload waiter) are notified as the real registry notifies its own."""

    def __init__(self, settings: HlsSettings | None = None) -> None:
        super().__init__(settings)
        self.applied = 0
        #: True once a whole snapshot arrived (a worker serves from then on)
        self.synced = False
        #: the streams a snapshot in progress is building; they replace the served ones at its
        #: end, so readers never see a half-made state
        self._staging: dict[str, LiveStream] | None = None

    @property
    def _building(self) -> dict[str, LiveStream]:
        return self._streams if self._staging is None else self._staging

    def apply(self, message: list[Any]) -> None:
        """Apply one message (raises :class:`MirrorError` on one it cannot apply)."""
        try:
            self._apply(message)
        except MirrorError:
            raise
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise MirrorError(f"bad message {message[:3]!r}: {exc!r}") from None
        self.applied += 1

    def _rendition(self, channel: str, name: str) -> MirrorRendition:
        stream = self._building.get(channel)
        r = stream.renditions.get(name) if stream is not None else None
        if not isinstance(r, MirrorRendition):
            raise MirrorError(f"no rendition {channel}/{name}")
        return r

    def _stream(self, channel: str) -> LiveStream:
        stream = self._building.get(channel)
        if stream is None:
            raise MirrorError(f"no stream {channel}")
        return stream

    def _open(self, channel: str, bid: str, now: float, resume: list[int] | None) -> LiveStream:
        stream = MirrorStream(self, channel, bid, now, None if resume is None else Resume(*resume))
        self._building[channel] = stream
        if self._staging is None:
            self.notify(channel)
        return stream

    def _apply(self, m: list[Any]) -> None:
        op = m[0]
        if op == Op.PART:
            r = self._rendition(m[1], m[2])
            event: Event = PartReady(*m[4:13])
            r.store.apply(event, m[3])
        elif op == Op.SETTLED:
            r = self._rendition(m[1], m[2])
            r.store.part_target, r.store.target_duration, r._frame_rate = m[4], m[5], m[6]
            r.stream.enforce_memory(m[3])
            r.stream.changed()
        elif op == Op.INIT:
            r = self._rendition(m[1], m[2])
            r.store.apply(InitReady(*m[4:12]), m[3])
        elif op == Op.SEGMENT_END:
            self._rendition(m[1], m[2]).store.apply(SegmentEnded(), m[3])
        elif op == Op.OPEN:
            self._open(m[1], m[2], m[3], m[4])
        elif op == Op.RENDITION:
            stream = self._stream(m[1])
            added = stream.rendition(m[2])
            if m[3]:
                stream.rungs[m[2]] = added
            stream.changed()
        elif op == Op.RENDITION_END:
            r = self._rendition(m[1], m[2])
            r.store.end(m[3])
            r.stream.changed()
        elif op == Op.STREAM_END:
            self._stream(m[1]).ended_at = m[2]
        elif op == Op.EXPIRE:
            super().expire(m[1])
        elif op == Op.SNAPSHOT:
            self._staging = {}
        elif op == Op.SNAPSHOT_STREAM:
            stream = self._open(m[1], m[2], m[3], m[4])
            stream.ended_at = m[5]
        elif op == Op.SNAPSHOT_RENDITION:
            stream = self._stream(m[1])
            name = m[2]
            stream.rendition(name)
            r = self._rendition(m[1], name)
            if m[3]:
                stream.rungs[name] = r
            restore_store(r.store, m[5])
            r._frame_rate = m[4]
            stream.changed()
        elif op == Op.SNAPSHOT_END:
            if self._staging is None:
                raise MirrorError("snapshot end without a start")
            old, self._streams, self._staging = self._streams, self._staging, None
            self.synced = True
            for channel in sorted(set(old) | set(self._streams)):
                self.notify(channel)
        else:
            raise MirrorError(f"unknown op {op!r}")
