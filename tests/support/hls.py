"""Reading a live HLS stream back with PyAV (FFmpeg's HLS demuxer) and checking it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import av


@dataclass
class Playback:
    video_pts: list[float] = field(default_factory=list)
    audio_pts: list[float] = field(default_factory=list)
    width: int = 0
    height: int = 0

    def max_video_gap(self) -> float:
        pts = sorted(self.video_pts)
        return max((b - a for a, b in itertools.pairwise(pts)), default=0.0)


def play_hls(url: str, video_frames: int = 45, timeout: float = 15.0) -> Playback:
    """Decode ``video_frames`` video frames (and the audio beside them) from a live HLS URL."""
    result = Playback()
    with av.open(url, timeout=(timeout, timeout), options={"live_start_index": "-2"}) as c:
        streams = [s for s in c.streams if s.type in ("video", "audio")]
        for packet in c.demux(streams):
            for frame in packet.decode():
                t = float(frame.pts * frame.time_base) if frame.pts is not None else float("nan")
                if isinstance(frame, av.VideoFrame):
                    result.video_pts.append(t)
                    result.width, result.height = frame.width, frame.height
                else:
                    result.audio_pts.append(t)
            if len(result.video_pts) >= video_frames:
                break
    return result
