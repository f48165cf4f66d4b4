"""In-memory segment store of one rendition: the playlist window, departed segments, inits.

Sans-IO and synchronous: the segmenter's events go in with :meth:`RenditionStore.apply`, the
HTTP side only reads. File names carry the broadcast id so they are unique per broadcast and
safe to cache forever: ``{bid}-i{n}.mp4`` (init), ``{bid}-s{msn}.m4s`` (segment; MPEG-TS:
``{bid}-s{msn}.ts``), ``{bid}-p{n}.m4s`` (part, numbered across the whole broadcast so a
preload hint is always right; MPEG-TS parts are not listed).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kitch.hls.events import Event, InitReady, PartReady, SegmentEnded
from kitch.hls.settings import HlsSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Part:
    number: int  # across the broadcast
    data: bytes | memoryview  # its own bytes; a slice of the segment's once that completes
    duration: float
    independent: bool


@dataclass(slots=True)
class Segment:
    msn: int
    init: int
    discontinuity: bool
    program_date_time: float  # wall clock (Unix seconds) of the segment's first frame
    independent: bool = True  # starts with a keyframe
    parts: list[Part] = field(default_factory=list)
    complete: bool = False
    duration: float = 0.0
    data: bytes | None = None  # the joined parts, once asked for (the parts then view it)
    departed_at: float | None = None
    #: its bytes, counted once it is complete (the memory limit sums every segment per part)
    sized: int = field(default=-1, init=False, repr=False, compare=False)

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.sized >= 0:
            return self.sized
        total = sum(len(p.data) for p in self.parts)
        if self.complete:
            self.sized = total
        return total

    def body(self) -> bytes:
        """The whole (complete) segment as one buffer: its parts joined on the first request
        for it, and from then on views of that buffer, so its bytes are held once. Most
        segments are never asked for whole (LL-HLS players fetch parts; the recorder writes the
        parts): those are never copied."""
        if self.data is None:
            self.data = data = b"".join(p.data for p in self.parts)
            view, offset = memoryview(data), 0
            for p in self.parts:
                end = offset + len(p.data)
                p.data = view[offset:end]
                offset = end
        return self.data


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a broadcast picks up the numbering of one that ran elsewhere (the channel moved to
    this node): its first segment is ``next_msn`` and its discontinuity sequence
    ``discontinuity_sequence``, so a player that followed the old one reads on after a
    discontinuity instead of seeing the media sequence go back."""

    next_msn: int
    discontinuity_sequence: int


class RenditionStore:
    """Window of ``segment_count`` complete segments plus the one in progress."""

    def __init__(
        self, name: str, broadcast_id: str, settings: HlsSettings, resume: Resume | None = None
    ) -> None:
        self.name = name
        self.broadcast_id = broadcast_id
        self.settings = settings
        self.inits: dict[int, InitReady] = {}
        self.segments: deque[Segment] = deque()
        self.departed: dict[int, Segment] = {}
        self.parts: dict[int, Part] = {}  # number -> part, for parts still listed
        self.part_to_segment: dict[int, int] = {}
        self.discontinuity_sequence = 0 if resume is None else resume.discontinuity_sequence
        self.next_part_number = 0
        self.next_msn = 0 if resume is None else resume.next_msn
        self.ended = False
        self.target_duration: int | None = None
        self.part_target: float | None = None
        self.memory_drops = 0
        self._pdt_anchor: float | None = None  # wall clock minus media time
        self._init_id = -1
        #: called with each segment as it completes (its ``data`` joined, its flags as first
        #: listed), before it can leave the window: the recorder copies segments to disk
        self.segment_listeners: list[Callable[[RenditionStore, Segment], None]] = []

    # ---- names ----------------------------------------------------------------------------

    def init_name(self, init_id: int) -> str:
        return f"{self.broadcast_id}-i{init_id}.mp4"

    def segment_name(self, msn: int, ts: bool = False) -> str:
        return f"{self.broadcast_id}-s{msn}.{'ts' if ts else 'm4s'}"

    def is_ts(self, init_id: int) -> bool:
        """Whether segments made with init ``init_id`` are MPEG-TS."""
        init = self.inits.get(init_id)
        return init is not None and init.container == "ts"

    @property
    def ts(self) -> bool:
        """True when the newest init is MPEG-TS: plain HLS playlists without parts."""
        return self.is_ts(self._init_id)

    def part_name(self, number: int) -> str:
        return f"{self.broadcast_id}-p{number}.m4s"

    # ---- writing --------------------------------------------------------------------------

    def apply(self, event: Event, now: float) -> None:
        """Apply one segmenter event received at wall-clock ``now``."""
        if isinstance(event, InitReady):
            self._init_id += 1
            self.inits[self._init_id] = event
        elif isinstance(event, PartReady):
            self._add_part(event, now)
        elif isinstance(event, SegmentEnded):
            self._end_segment(now)

    def _add_part(self, event: PartReady, now: float) -> None:
        seg = self.segments[-1] if self.segments else None
        if seg is None or seg.complete or event.first_in_segment:
            if seg is not None and not seg.complete:
                self._end_segment(now)
            if self._pdt_anchor is None or event.discontinuity:
                self._pdt_anchor = now - event.media_time - event.duration
            if event.msn is not None:  # a rung: numbered as the source numbered it
                self.next_msn = max(self.next_msn, event.msn)
            pdt = event.program_date_time
            seg = Segment(
                self.next_msn,
                self._init_id,
                event.discontinuity and self.next_msn > 0,
                self._pdt_anchor + event.media_time if pdt is None else pdt,
                event.independent,
            )
            self.next_msn += 1
            if not seg.discontinuity:
                self._keep_clock_continuous(seg.program_date_time)
            self.segments.append(seg)
        if event.number is not None:
            self.next_part_number = max(self.next_part_number, event.number)
        part = Part(self.next_part_number, event.data, event.duration, event.independent)
        self.next_part_number += 1
        seg.parts.append(part)
        seg.duration += event.duration
        self.parts[part.number] = part
        self.part_to_segment[part.number] = seg.msn

    def _keep_clock_continuous(self, pdt: float) -> None:
        """The segmenter moved its clock earlier (its first frame had been handled late): the
        segments since the last discontinuity move with it, so the clock a player reads from
        the first listed segment agrees with the newest one."""
        if not self.segments:
            return
        last = self.segments[-1]
        shift = last.program_date_time + last.duration - pdt
        if shift <= 0.0005:
            return
        for old in reversed(self.segments):
            old.program_date_time -= shift
            if old.discontinuity:
                break

    def _end_segment(self, now: float) -> None:
        if not self.segments or self.segments[-1].complete:
            return
        seg = self.segments[-1]
        seg.complete = True
        for listener in list(self.segment_listeners):
            try:
                listener(self, seg)
            except Exception:
                log.exception("segment listener failed on %s", self.name)
        complete = sum(1 for s in self.segments if s.complete)
        while complete > self.settings.segment_count:
            self._depart(now)
            complete -= 1

    def _depart(self, now: float) -> Segment:
        old = self.segments.popleft()
        old.departed_at = now
        for p in old.parts:  # no longer listed: not served as parts (the segment still is)
            self.parts.pop(p.number, None)
            self.part_to_segment.pop(p.number, None)
        if old.complete:
            self.departed[old.msn] = old
        if self.segments and self.segments[0].discontinuity:
            # the discontinuity tag at the head of the window leaves with its predecessor
            self.discontinuity_sequence += 1
            self.segments[0].discontinuity = False
        return old

    def end(self, now: float) -> None:
        self._end_segment(now)
        self.ended = True

    # ---- housekeeping -------------------------------------------------------------------

    def retention(self) -> float:
        if self.settings.departed_retention is not None:
            return self.settings.departed_retention
        # RFC 8216 6.2.2: a removed segment stays available for its own duration plus the
        # playlist's (the target duration bounds both)
        return (self.settings.segment_count + 1) * float(self.target_duration or 2)

    def expire(self, now: float) -> None:
        """Forget departed segments older than the retention."""
        keep = self.retention()
        for msn in [m for m, s in self.departed.items() if (s.departed_at or now) + keep < now]:
            del self.departed[msn]

    @property
    def bytes_held(self) -> int:
        """Media bytes held: the listed window, the departed segments, every init."""
        total = sum(s.size for s in self.segments) + sum(s.size for s in self.departed.values())
        return total + sum(len(i.data) for i in self.inits.values())

    @property
    def window_bytes(self) -> int:
        """Bytes of the listed window: its segments (with the parts of the one in progress)
        and the newest init; what the playlist makes a player able to fetch."""
        init = self.inits.get(self._init_id)
        return sum(s.size for s in self.segments) + (len(init.data) if init else 0)

    def shed(self, now: float) -> int:
        """Drop the oldest media to free memory: departed first, then window segments (never
        the segment in progress). Returns bytes freed (0 when nothing can go)."""
        if self.departed:
            msn = min(self.departed)
            freed = self.departed.pop(msn).size
        elif len(self.segments) > 1 and self.segments[0].complete:
            freed = self.segments[0].size
            self.departed.pop(self._depart(now).msn, None)
        else:
            return 0
        self.memory_drops += 1
        return freed

    # ---- reading --------------------------------------------------------------------------

    @property
    def media_sequence(self) -> int:
        return self.segments[0].msn if self.segments else self.next_msn

    @property
    def ready(self) -> bool:
        """True once a playlist can be served (target duration known, a part exists)."""
        if self.target_duration is None or self.part_target is None or not self.segments:
            return False
        # without parts a playlist needs a whole segment
        return not self.ts or any(s.complete for s in self.segments)

    def last_position(self) -> tuple[int, int]:
        """(msn, part index) of the newest listed part; (-1, -1) before any."""
        if not self.segments:
            return -1, -1
        seg = self.segments[-1]
        return seg.msn, len(seg.parts) - 1

    def has(self, msn: int, part: int | None) -> bool:
        """Whether the playlist already holds segment ``msn`` complete (``part`` None) or its
        part ``part``, or anything later: the blocking-reload condition."""
        if not self.segments:
            return False
        last = self.segments[-1]
        if last.msn > msn:
            return True
        if last.msn < msn:
            return False
        if part is None:
            return last.complete
        return part < len(last.parts)

    def segment(self, msn: int) -> Segment | None:
        for seg in self.segments:
            if seg.msn == msn:
                return seg if seg.complete else None
        return self.departed.get(msn)

    def bitrate(self) -> tuple[int, int]:
        """(peak, average) bits per second over complete segments (parts before that)."""
        done = [s for s in self.segments if s.complete and s.duration > 0]
        if not done:
            parts = [p for s in self.segments for p in s.parts if p.duration > 0]
            if not parts:
                return 0, 0
            size = sum(len(p.data) for p in parts)
            avg = int(size * 8 / sum(p.duration for p in parts))
            return avg, avg
        peak = max(int(s.size * 8 / s.duration) for s in done)
        avg = int(sum(s.size for s in done) * 8 / sum(s.duration for s in done))
        return max(peak, avg), avg
