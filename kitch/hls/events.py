"""What the segmenter hands to the segment store (frozen, in one module)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InitReady:
    """A new init segment; the parts that follow use it (its own EXT-X-MAP). With
    ``container == "ts"`` there is no init data (MPEG-TS segments carry PAT/PMT themselves)."""

    data: bytes
    codecs: str
    width: int
    height: int
    frame_rate: float
    has_video: bool
    has_audio: bool
    container: str = "fmp4"  # or "ts"


@dataclass(frozen=True, slots=True)
class PartReady:
    """One complete LL-HLS part (moof+mdat). ``first_in_segment`` opens a new segment;
    ``discontinuity`` marks the first part after a reconnect or a configuration change.
    ``media_time`` is the part's start on the output timeline, in seconds;
    ``program_date_time`` the wall clock (Unix seconds) of that start, when the segmenter was
    told arrival times. ``independent`` is False on a segment's first part only when the
    segment had to be cut without a keyframe."""

    data: bytes
    duration: float
    independent: bool
    first_in_segment: bool
    discontinuity: bool
    media_time: float
    program_date_time: float | None = None
    #: a rung's part carries the source's numbers (segment, part): the store uses them
    msn: int | None = None
    number: int | None = None


@dataclass(frozen=True, slots=True)
class SegmentEnded:
    """The segment in progress is complete (its last part was the previous PartReady)."""


Event = InitReady | PartReady | SegmentEnded
