"""Ingest statistics: figures from the packets, and memory bounded whatever the timestamps."""

from __future__ import annotations

import pytest

from kitch.ingest.stats import MAX_WINDOW_PACKETS, IngestStats
from kitch.media import MediaPacket


def video(dts: int, keyframe: bool = False, size: int = 1000) -> MediaPacket:
    return MediaPacket("video", "h264", dts, dts, bytes(size), keyframe)


def audio(dts: int) -> MediaPacket:
    return MediaPacket("audio", "aac", dts, dts, bytes(100))


def test_rates_from_a_steady_stream() -> None:
    stats = IngestStats()
    stats.on_packet(MediaPacket("video", "h264", 0, 0, b"cfg", is_config=True))
    for i in range(300):  # 10 s at 30 fps, 2 s GOP, 1000-byte frames; audio every 21 ms
        stats.on_packet(video(i * 1000 // 30, keyframe=i % 60 == 0))
    for t in range(0, 10_000, 21):
        stats.on_packet(audio(t))
    snap = stats.snapshot()
    assert snap["video_codec"] == "h264" and snap["audio_codec"] == "aac"
    assert snap["fps"] == pytest.approx(30, abs=0.5)
    assert snap["keyframe_interval_s"] == pytest.approx(2.0, abs=0.05)
    assert snap["bitrate_kbps"] > 0


@pytest.mark.parametrize("stamps", ["constant", "backwards"])
def test_history_is_bounded_when_timestamps_do_not_advance(stamps: str) -> None:
    """A publisher whose timestamps never move on (all 0, or running backwards) must not grow
    the rate history without end: each entry is held until 5 s of media time pass."""
    stats = IngestStats()
    n = 50_000
    for i in range(n):
        dts = 0 if stamps == "constant" else 10_000_000 - i
        stats.on_packet(video(dts, keyframe=True, size=10))
        stats.on_packet(audio(dts))
    held = max(len(stats._bytes), len(stats._video_dts))
    print(f"{2 * n} packets with {stamps} timestamps: {held} history entries held")
    assert held <= MAX_WINDOW_PACKETS
    stats.snapshot()  # still computes


@pytest.mark.parametrize("lag", [0, 500, -300])
def test_av_drift_is_the_gap_between_the_tracks_not_their_interleaving(lag: int) -> None:
    """Audio every 21 ms and video every 33 ms, interleaved by arrival: the figure is the
    steady offset between the two timelines (audio behind by ``lag`` ms), not the jitter."""
    stats = IngestStats()
    assert stats.av_drift_ms is None
    packets = [video(t) for t in range(1000, 6000, 33)] + [
        audio(t - lag) for t in range(1000, 6000, 21)
    ]
    packets.sort(key=lambda p: p.dts + (lag if p.kind == "audio" else 0))  # arrival order
    for p in packets:
        stats.on_packet(p)
    assert stats.av_drift_ms == pytest.approx(-lag, abs=33)
