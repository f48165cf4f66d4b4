"""Playing a recording back with PyAV (FFmpeg's HLS demuxer): every frame, and a seek."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import av


@dataclass
class VodPlayback:
    video_pts: list[float] = field(default_factory=list)
    audio_frames: int = 0
    duration: float = 0.0  # the demuxer's idea of the whole length, in seconds

    @property
    def frames(self) -> int:
        return len(self.video_pts)

    @property
    def span(self) -> float:
        return max(self.video_pts) - min(self.video_pts) if self.video_pts else 0.0

    def max_gap(self) -> float:
        pts = sorted(self.video_pts)
        return max((b - a for a, b in itertools.pairwise(pts)), default=0.0)


def play_all(url: str) -> VodPlayback:
    """Decode every video and audio frame of a VOD playlist (URL or file path)."""
    result = VodPlayback()
    with av.open(url, timeout=(10, 10)) as c:
        result.duration = (c.duration or 0) / av.time_base
        streams = [s for s in c.streams if s.type in ("video", "audio")]
        for packet in c.demux(streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    assert frame.pts is not None
                    result.video_pts.append(float(frame.pts * frame.time_base))
                else:
                    result.audio_frames += 1
    return result


def first_frame_after_seek(url: str, seconds: float) -> float:
    """Seek to ``seconds`` (back to the keyframe before it) and return the first decoded
    video frame's time."""
    with av.open(url, timeout=(10, 10)) as c:
        video = c.streams.video[0]
        c.seek(int(seconds * av.time_base), backward=True)
        for frame in c.decode(video):
            assert frame.pts is not None
            return float(frame.pts * frame.time_base)
    raise AssertionError("nothing decoded after the seek")
