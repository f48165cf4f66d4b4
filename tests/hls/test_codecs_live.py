"""Live streams of every kind fed in real time to a real uvicorn play back over HTTP in FFmpeg's
HLS demuxer (PyAV); MPEG-TS output also through the `ffprobe` from apt; a resolution change
mid-stream plays through without decode errors."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import av
import av.logging
import pytest

from kitch.hls import HlsRegistry, HlsSettings
from kitch.media import MediaPacket
from tests.hls.clips import clip_packets, make_clip
from tests.hls.live import Feeder, live_server, shifted

pytestmark = pytest.mark.slow

CLIP_SECONDS = 0.8
LOOPS = 3


def _play(url: str) -> tuple[dict[str, int], list[tuple[int, int]], list[str]]:
    """Demux+decode until EXT-X-ENDLIST: packets per type, decoded frame sizes, errors."""
    counts = {"video": 0, "audio": 0}
    sizes: list[tuple[int, int]] = []
    av.logging.set_level(av.logging.ERROR)
    try:
        with (
            av.logging.Capture() as logs,
            av.open(url, options={"live_start_index": "0"}, timeout=10) as inp,
        ):
            for pkt in inp.demux():
                if pkt.size:
                    counts[pkt.stream.type] += 1
                if pkt.stream.type == "video":
                    sizes.extend((f.width, f.height) for f in pkt.decode())  # type: ignore[union-attr]
    finally:
        av.logging.set_level(None)
    errors = [f"{name}: {msg}" for level, name, msg in logs if level <= av.logging.ERROR]
    return counts, sizes, errors


Played = tuple[dict[str, int], list[tuple[int, int]], list[str], str, str | None]


def _serve(packets: list[MediaPacket], fmt: str) -> Played:
    """Feed ``packets`` live; play the master playlist; return what played, the media
    playlist at the end, and ffprobe's JSON for TS."""
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, format=fmt))  # type: ignore[arg-type]
    with live_server(registry) as srv:
        stream = registry.open("alice", time.time())
        feeder = Feeder(srv, stream, list(packets))
        feeder.start()
        deadline = time.monotonic() + 10
        store = stream.renditions["source"].store
        # FFmpeg's HLS demuxer is no LL-HLS client: give it a complete segment to start from
        while not any(s.complete for s in store.segments) and time.monotonic() < deadline:
            time.sleep(0.05)
        counts, sizes, errors = _play(f"{srv.base}/alice/master.m3u8")
        assert feeder.done.wait(15)
        playlist = stream.media_playlist("source") or ""
        probe = None
        if fmt == "ts":
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-count_packets", "-of", "json", "-show_entries",
                 "stream=codec_name,codec_type,width,height,nb_read_packets",
                 f"{srv.base}/alice/source/index.m3u8"],
                capture_output=True, text=True, timeout=30, check=False,
            ).stdout  # fmt: skip
    return counts, sizes, errors, playlist, probe


CASES = [
    ("h264", "aac", "ts"),
    ("hevc", "aac", "ts"),
    (None, "aac", "ts"),
    ("hevc", "opus", "fmp4"),
    ("av1", "opus", "fmp4"),
    ("vp9", "opus", "fmp4"),
    (None, "opus", "fmp4"),
]


@pytest.mark.parametrize(("video", "audio", "fmt"), CASES, ids=lambda c: str(c))
def test_live_stream_plays_over_http(
    video: str | None, audio: str | None, fmt: str, media_dir: Path
) -> None:
    packets = shifted(clip_packets(make_clip(media_dir, video, audio)), LOOPS, CLIP_SECONDS)
    counts, sizes, errors, playlist, probe = _serve(packets, fmt)
    assert errors == []
    want_video = sum(1 for p in packets if p.kind == "video" and not p.is_config)
    if video is not None:
        assert counts["video"] == want_video
        assert len(sizes) == want_video and set(sizes) == {(160, 120)}
    else:
        assert counts["video"] == 0
    assert counts["audio"] > 0.8 * sum(1 for p in packets if p.kind == "audio")
    if fmt == "ts":
        assert "#EXT-X-VERSION:3" in playlist and "EXT-X-PART" not in playlist
        assert ".ts\n" in playlist and "EXT-X-MAP" not in playlist
        assert probe is not None
        streams = {s["codec_type"]: s for s in json.loads(probe)["streams"]}
        assert set(streams) == {"video", "audio"} - ({"video"} if video is None else set())
        if video is not None:
            assert streams["video"]["codec_name"] == video
            assert int(streams["video"]["nb_read_packets"]) == want_video
        assert streams["audio"]["codec_name"] == audio
    else:
        assert "#EXT-X-PART:" in playlist and '#EXT-X-MAP:URI="' in playlist


@pytest.mark.parametrize("fmt", ["fmp4", "ts"])
def test_resolution_change_mid_stream_plays_through(fmt: str, media_dir: Path) -> None:
    small = clip_packets(make_clip(media_dir, "h264", "aac"))
    big = clip_packets(make_clip(media_dir, "h264", "aac", width=192, height=144))
    first = shifted(small, 2, CLIP_SECONDS)
    second = [
        p._replace(dts=p.dts + 1600, pts=p.pts + 1600) if not p.is_config else p
        for p in shifted(big, 2, CLIP_SECONDS)
    ]
    _, sizes, errors, playlist, _ = _serve(first + second, fmt)
    assert errors == []
    assert "#EXT-X-DISCONTINUITY" in playlist
    if fmt == "fmp4":
        assert playlist.count("#EXT-X-MAP") == 2
    frames = sum(1 for p in first + second if p.kind == "video" and not p.is_config)
    assert len(sizes) == frames
    assert sizes[0] == (160, 120) and sizes[-1] == (192, 144)
