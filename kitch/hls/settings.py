"""Tunables of the in-memory HLS output, each with its default."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class HlsSettings:
    """Settings for every rendition of every live stream.

    * ``segment_duration`` (default 2.0 s): a segment is cut at the first keyframe at or after
      this much media, or earlier if waiting for the next keyframe would overrun the target
      duration. TARGETDURATION is the larger of this (rounded up) and the keyframe interval
      observed at the start (second keyframe), so a long GOP (OBS: ~8 s) makes long segments;
      ``stats["gop_seconds"]`` tells. It never changes afterwards (the spec forbids it): if the
      GOP grows later, a segment is cut without a keyframe rather than overrun it.
    * ``max_target_duration`` (default 10 s): cap on TARGETDURATION. A stream whose second
      keyframe has not come by then (no periodic keyframes) gets this target and segments cut
      without keyframes, so playlists appear and memory stays bounded.
    * ``part_duration`` (default 0.2 s): nominal LL-HLS part length. The real PART-TARGET is a
      whole number of frames closest to it (6 frames at 29.97 fps = 0.2002 s) plus 1 ms of
      slack for millisecond RTMP timestamps; audio-only uses whole AAC frames.
    * ``segment_count`` (default 6): complete segments listed in a media playlist.
    * ``max_stream_memory`` (default 256 MiB): bytes one live stream may hold (all renditions,
      parts, segments, departed segments); the oldest media is dropped first.
    * ``blocking_timeout`` (default None = 3 target durations): how long a blocking playlist
      reload or a preload-hinted part request waits before answering 503 / 404.
    * ``departed_retention`` (default None = a segment plus the playlist's duration,
      (segment_count + 1) x target, as RFC 8216 section 6.2.2 asks): how long segments that
      left the playlist stay fetchable.
    * ``ended_retention`` (default 60 s): how long an ended broadcast's playlists (with
      EXT-X-ENDLIST) stay served before they answer 404.
    * ``audio_only_wait`` (default 0.5 s): audio buffered without a video sequence header
      before the stream is treated as audio-only.
    * ``format`` (default "fmp4"): segment container. "fmp4" = LL-HLS with CMAF parts;
      "ts" = MPEG-TS segments in plain HLS playlists (no parts) for legacy players; AV1 and
      VP9 streams stay in fMP4 either way (MPEG-TS cannot carry them in HLS).
    """

    segment_duration: float = 2.0
    part_duration: float = 0.2
    max_target_duration: int = 10
    segment_count: int = 6
    max_stream_memory: int = 256 * 1024 * 1024
    blocking_timeout: float | None = None
    departed_retention: float | None = None
    ended_retention: float = 60.0
    audio_only_wait: float = 0.5
    format: Literal["fmp4", "ts"] = "fmp4"

    def __post_init__(self) -> None:
        if self.segment_duration <= 0 or self.part_duration <= 0:
            raise ValueError("segment_duration and part_duration must be positive")
        if self.part_duration > self.segment_duration:
            raise ValueError("part_duration must not exceed segment_duration")
        if self.max_target_duration < math.ceil(self.segment_duration):
            raise ValueError("max_target_duration must be at least segment_duration")
        if self.segment_count < 1:
            raise ValueError("segment_count must be at least 1")
        if self.format not in ("fmp4", "ts"):
            raise ValueError(f"format must be fmp4 or ts, not {self.format!r}")
        if (self.departed_retention or 0) < 0 or self.ended_retention < 0:
            raise ValueError("departed_retention and ended_retention must not be negative")
        if self.max_stream_memory < 1024 * 1024:
            raise ValueError("max_stream_memory must be at least 1 MiB")
