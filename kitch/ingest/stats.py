"""Ingest statistics of one live publish, computed from the packets as they pass (no I/O)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kitch.media import MediaPacket

#: How much history the rate figures look back over, in seconds.
WINDOW_SECONDS = 5.0
_WINDOW_MS = int(WINDOW_SECONDS * 1000)
#: Most packets the rate history keeps (5 s of 240 fps video plus audio fit), so timestamps
#: that never advance cannot grow it without end.
MAX_WINDOW_PACKETS = 4096
#: Largest width/height and frame rate taken from a publisher's onMetaData; larger finite values
#: are clamped to these, non-finite or non-positive ones are ignored.
MAX_DIMENSION = 16384
MAX_FRAMERATE = 1000.0
#: Samples of the audio/video timestamp gap the A/V drift figure is the median of.
DRIFT_SAMPLES = 64


def peer_number(value: object, maximum: float) -> float | None:
    """A number a peer sent, made safe to store and serve as JSON: None unless it is a finite
    int/float above 0 (NaN, infinities, booleans, strings and the like are dropped), clamped
    to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        return None
    return min(number, maximum)


@dataclass
class IngestStats:
    """Codecs, resolution, frame rate, bit rate and keyframe interval of one publish.

    Rates are measured over the last ``WINDOW_SECONDS`` of *media* time (at most
    ``MAX_WINDOW_PACKETS`` packets), so a publisher that sends in bursts is not misread.
    Resolution, frame rate and encoder come from onMetaData (every number checked by
    :func:`peer_number`, so a publisher's metadata never puts NaN or an infinity into the
    stats); the hub's ``stats_of`` replaces the resolution with the muxer's, read from the
    SPS, once it has one.
    """

    #: The rate window in milliseconds of media time (the native frame lane reads it too).
    window_ms: ClassVar[int] = _WINDOW_MS

    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    encoder: str | None = None
    metadata_fps: float | None = None
    packets_total: int = 0
    _video_dts: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_WINDOW_PACKETS))
    _bytes: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=MAX_WINDOW_PACKETS))
    _keyframes: deque[int] = field(default_factory=lambda: deque(maxlen=8))
    _last_video: int | None = None
    _last_audio: int | None = None
    _drift: deque[int] = field(default_factory=lambda: deque(maxlen=DRIFT_SAMPLES))

    def on_metadata(self, values: dict[str, Any]) -> None:
        w = peer_number(values.get("width"), MAX_DIMENSION)
        h = peer_number(values.get("height"), MAX_DIMENSION)
        fps = peer_number(values.get("framerate"), MAX_FRAMERATE)
        if w is not None and h is not None and w >= 1 and h >= 1 and self.width is None:
            self.width, self.height = int(w), int(h)
        if fps is not None:
            self.metadata_fps = round(fps, 3)
        enc = values.get("encoder")
        if isinstance(enc, str):
            self.encoder = enc[:200]

    def on_packet(self, packet: MediaPacket) -> None:
        video = packet.kind == "video"
        if video:
            self.video_codec = packet.codec
        else:
            self.audio_codec = packet.codec
        if packet.is_config:
            return
        self.packets_total += 1
        t = packet.dts
        sizes = self._bytes
        sizes.append((t, len(packet.data)))
        if video:
            self._video_dts.append(t)
            self._last_video = t
            if packet.keyframe:
                self._keyframes.append(t)
            other = self._last_audio
            if other is not None:
                self._drift.append(other - t)
        else:
            self._last_audio = t
            other = self._last_video
            if other is not None:
                self._drift.append(t - other)
        horizon = t - self.window_ms
        while sizes and sizes[0][0] < horizon:
            sizes.popleft()
        video_dts = self._video_dts
        while video_dts and video_dts[0] < horizon:
            video_dts.popleft()

    @property
    def fps(self) -> float | None:
        if len(self._video_dts) < 2:
            return self.metadata_fps
        span = self._video_dts[-1] - self._video_dts[0]
        return round((len(self._video_dts) - 1) * 1000 / span, 2) if span > 0 else None

    @property
    def bitrate_kbps(self) -> float | None:
        if len(self._bytes) < 2:
            return None
        span = self._bytes[-1][0] - self._bytes[0][0]
        total = sum(n for _, n in self._bytes)
        return round(total * 8 / span, 1) if span > 0 else None

    @property
    def keyframe_interval_s(self) -> float | None:
        if len(self._keyframes) < 2:
            return None
        gaps = [b - a for a, b in zip(self._keyframes, list(self._keyframes)[1:], strict=False)]
        return round(max(gaps) / 1000, 3)

    @property
    def av_drift_ms(self) -> float | None:
        """How far the audio timestamps run ahead of the video's (negative: behind), in ms: the
        median, over the last ``DRIFT_SAMPLES`` packets, of the gap between the latest audio
        and the latest video timestamp as each packet arrives (so the interleaving of the two
        tracks does not show as drift). None until both tracks have sent media."""
        if not self._drift:
            return None
        ordered = sorted(self._drift)
        return float(ordered[len(ordered) // 2])

    def snapshot(self) -> dict[str, Any]:
        return {
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "bitrate_kbps": self.bitrate_kbps,
            "keyframe_interval_s": self.keyframe_interval_s,
            "encoder": self.encoder,
        }
