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
    ``media_time`` is the part's start on the output timeline, in seconds."""

    data: bytes
    duration: float
    independent: bool
    first_in_segment: bool
    discontinuity: bool
    media_time: float


@dataclass(frozen=True, slots=True)
class SegmentEnded:
    """The segment in progress is complete (its last part was the previous PartReady)."""


Event = InitReady | PartReady | SegmentEnded
