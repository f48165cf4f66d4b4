"""Real publishers beyond H.264+AAC: HEVC over Enhanced RTMP (PyAV 18 / FFmpeg 8 writes the
``hvc1`` FourCC form; Debian's ffmpeg 5.1 cannot), audio-only and video-only streams."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tests.server.conftest import BackgroundPublisher
from tests.support.hls import play_hls
from tests.support.media import Fixture, make_fixture, publish_pyav
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow


def is_live(server: KitchServer, name: str) -> bool:
    return bool(server.channel(name)["live"])


def segments(server: KitchServer, name: str) -> int:
    try:
        text = server.get(f"/hls/{name}/source/index.m3u8").decode()
    except Exception:
        return 0
    return text.count("#EXTINF")


def stats(server: KitchServer, name: str) -> dict[str, object]:
    return dict((server.channel(name).get("stream") or {}).get("stats") or {})


def test_hevc_over_enhanced_rtmp_plays_back(server: KitchServer, media_dir: Path) -> None:
    fixture = make_fixture(media_dir, seconds=2, vcodec="libx265")
    acct = server.create_account("hevc")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fixture)
    try:
        server.wait_for(lambda: is_live(server, "hevc"), 15, "hevc live")
        server.wait_for(lambda: stats(server, "hevc").get("video_codec"), 10, "stats")
        assert stats(server, "hevc")["video_codec"] == "hevc"
        master = server.get("/hls/hevc/master.m3u8").decode()
        assert "hvc1." in master, master
        playback = play_hls(f"{server.base}/hls/hevc/master.m3u8", video_frames=30)
        assert (playback.width, playback.height) == (320, 240)
        assert playback.audio_pts and playback.max_video_gap() < 0.1
    finally:
        pub.stop()
    assert pub.error is None, pub.error
    assert "refused" not in server.log()


def test_audio_only_publish(server: KitchServer, media_dir: Path) -> None:
    fixture = make_fixture(media_dir, seconds=2, video=False)
    acct = server.create_account("radio")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fixture)
    try:
        server.wait_for(lambda: segments(server, "radio") >= 2, 20, "audio segments")
        assert stats(server, "radio").get("audio_codec") == "aac"
        master = server.get("/hls/radio/master.m3u8").decode()
        assert "mp4a." in master and "avc1" not in master and "RESOLUTION" not in master
        with av.open(f"{server.base}/hls/radio/master.m3u8", timeout=(15, 15)) as c:
            assert [s.type for s in c.streams] == ["audio"]
            frames = 0
            for packet in c.demux(c.streams.audio[0]):
                frames += len(packet.decode())
                if frames >= 20:
                    break
        assert frames >= 20
    finally:
        pub.stop()
    assert pub.error is None, pub.error


def test_video_only_publish(server: KitchServer, media_dir: Path) -> None:
    fixture: Fixture = make_fixture(media_dir, seconds=2, audio=False)
    acct = server.create_account("silent")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fixture)
    try:
        server.wait_for(lambda: is_live(server, "silent"), 15, "live")
        server.wait_for(lambda: segments(server, "silent") >= 1, 15, "segments")
        master = server.get("/hls/silent/master.m3u8").decode()
        assert "avc1." in master and "mp4a" not in master, master
        playback = play_hls(f"{server.base}/hls/silent/master.m3u8", video_frames=30)
        assert not playback.audio_pts and playback.max_video_gap() < 0.1
    finally:
        pub.stop()
    assert pub.error is None, pub.error


def test_ts_output_plays_h264_and_refuses_av1(server_factory: object, av_fixture: Fixture) -> None:
    srv: KitchServer = server_factory("--hls-format", "ts")  # type: ignore[operator]
    acct = srv.create_account("legacy")
    pub = BackgroundPublisher(srv.rtmp_url(acct.stream_key), av_fixture)
    try:
        srv.wait_for(lambda: segments(srv, "legacy") >= 2, 20, "TS segments")
        playlist = srv.get("/hls/legacy/source/index.m3u8").decode()
        assert ".ts" in playlist and "#EXT-X-PART:" not in playlist
        playback = play_hls(f"{srv.base}/hls/legacy/master.m3u8", video_frames=30)
        assert (playback.width, playback.height) == (320, 240) and playback.audio_pts
    finally:
        pub.stop()
    assert pub.error is None, pub.error
    # AV1 and VP9 cannot travel in MPEG-TS: the output refuses the publish with the codec
    # named, the encoder sees the error while it sends (in real time) and the broadcast ends.
    for codec in ("av1", "vp9"):
        capture = Path(__file__).parents[1] / "data" / f"pyav_{codec}.flv"
        fixture = Fixture(capture, 0.5, 160, 120, 30, 30, 0, False, True)
        with pytest.raises((av.error.FFmpegError, OSError)):
            publish_pyav(srv.rtmp_url(acct.stream_key), fixture)
        srv.wait_for(
            lambda c=codec: f"Rejected video codec {c} cannot" in srv.log(), 5, f"{codec} refused"
        )
        assert not srv.channel("legacy")["live"]
