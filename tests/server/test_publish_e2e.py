"""Real encoders publish to a real `kitch serve`; the stream is read back over real HTTP."""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import time

import av
import pytest

from tests.server.conftest import BackgroundPublisher, is_live, source_playlist
from tests.support.hls import play_hls
from tests.support.media import Fixture, ffmpeg_cli_publish, publish_pyav
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow


def test_pyav_publish_goes_live_with_stats_and_plays_back(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("alice")
    assert not is_live(server, "alice")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    try:
        took = server.wait_for(lambda: is_live(server, "alice"), 10, "alice live")
        print(f"went live {took:.2f} s after publish started")
        server.wait_for(
            lambda: (server.channel("alice").get("stream") or {}).get("stats", {}).get("fps"),
            10,
            "ingest stats",
        )
        stats = server.channel("alice")["stream"]["stats"]
        assert stats["video_codec"] == "h264" and stats["audio_codec"] == "aac"
        assert stats["width"] == 320 and stats["height"] == 240
        assert 25 <= stats["fps"] <= 35, stats
        assert stats["keyframe_interval_s"] == pytest.approx(1.0, abs=0.1), stats
        assert stats["bitrate_kbps"] > 0
        assert stats["hls"]["codecs"].startswith("avc1.") and not stats["hls"]["gop_too_long"]
        playback = play_hls(f"{server.base}/hls/alice/master.m3u8")
        assert (playback.width, playback.height) == (320, 240)
        assert len(playback.video_pts) >= 45 and playback.audio_pts
        assert playback.max_video_gap() < 0.1, playback.video_pts
    finally:
        pub.stop()
    assert pub.error is None, pub.error
    # PyAV unpublishes when it stops: offline at once, not after the 3 s grace.
    took = server.wait_for(lambda: not is_live(server, "alice"), 10, "alice offline")
    print(f"offline {took:.2f} s after the publisher stopped (grace 3 s)")
    assert took < 2.0


def test_ffmpeg_cli_copy_with_bframes(server: KitchServer, bframes_fixture: Fixture) -> None:
    acct = server.create_account("bframes")
    with ffmpeg_cli_publish(server.rtmp_url(acct.stream_key), bframes_fixture, loops=-1) as proc:
        try:
            server.wait_for(lambda: is_live(server, "bframes"), 10, "live")
            playback = play_hls(f"{server.base}/hls/bframes/master.m3u8")
            assert playback.max_video_gap() < 0.1
            assert proc.poll() is None
        finally:
            proc.terminate()


def test_wrong_key_is_refused_quickly(server: KitchServer, av_fixture: Fixture) -> None:
    t0 = time.monotonic()
    with pytest.raises((av.error.FFmpegError, OSError)):
        publish_pyav(server.rtmp_url("live_not-a-real-key"), av_fixture)
    took = time.monotonic() - t0
    print(f"PyAV saw the refusal after {took:.2f} s")
    assert took < 10
    assert "publish refused" in server.log()


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="GStreamer is installed by make")
def test_gstreamer_librtmp_publishes_and_sees_refusal(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("gst")

    def gst(key: str) -> subprocess.Popen[bytes]:
        location = f"{server.rtmp_url(key)} live=1"
        return subprocess.Popen(
            [
                "gst-launch-1.0",
                "-q",
                "filesrc",
                f"location={av_fixture.path}",
                "!",
                "flvdemux",
                "name=d",
                "d.video",
                "!",
                "queue",
                "!",
                "h264parse",
                "!",
                "flvmux",
                "name=m",
                "streamable=true",
                "!",
                "rtmpsink",
                f"location={location}",
                "d.audio",
                "!",
                "queue",
                "!",
                "aacparse",
                "!",
                "m.",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    proc = gst(acct.stream_key)
    try:
        server.wait_for(lambda: is_live(server, "gst"), 10, "live via librtmp")
    finally:
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    bad = gst("live_wrong")
    t0 = time.monotonic()
    out, _ = bad.communicate(timeout=20)
    took = time.monotonic() - t0
    print(f"librtmp failed after {took:.2f} s with rc={bad.returncode}")
    assert bad.returncode != 0, out
    assert took < 10


def test_second_publisher_refused_first_keeps_going(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("dup")
    first = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    try:
        server.wait_for(lambda: is_live(server, "dup"), 10, "live")
        with pytest.raises((av.error.FFmpegError, OSError)):
            publish_pyav(server.rtmp_url(acct.stream_key), av_fixture)
        time.sleep(1)
        assert first.alive and first.error is None
        assert is_live(server, "dup")
    finally:
        first.stop()
    assert first.error is None


def test_sigstopped_publisher_is_detected(server: KitchServer, av_fixture: Fixture) -> None:
    acct = server.create_account("frozen")
    with ffmpeg_cli_publish(server.rtmp_url(acct.stream_key), av_fixture, loops=-1) as proc:
        try:
            server.wait_for(lambda: is_live(server, "frozen"), 10, "live")
            proc.send_signal(signal.SIGSTOP)
            t0 = time.monotonic()
            server.wait_for(lambda: "no media for" in server.log(), 20, "stall detected")
            took = time.monotonic() - t0
            print(f"stalled publisher dropped after {took:.2f} s (aim: within 10 s)")
            # A stalled publisher is a drop, not a stop: the 3 s grace runs, then it ends.
            t1 = time.monotonic()
            time.sleep(1.0)
            assert is_live(server, "frozen"), "the grace must follow a stall"
            server.wait_for(lambda: not is_live(server, "frozen"), 10, "offline")
            assert time.monotonic() - t1 >= 2.5
        finally:
            proc.send_signal(signal.SIGCONT)
            proc.kill()


def test_reconnect_within_grace_keeps_broadcast(server: KitchServer, av_fixture: Fixture) -> None:
    acct = server.create_account("bounce")
    url = server.rtmp_url(acct.stream_key)
    # The first publisher drops (killed: the socket closes without an unpublish).
    with ffmpeg_cli_publish(url, av_fixture, loops=-1) as proc:
        try:
            server.wait_for(lambda: "#EXTINF" in source_playlist(server, "bounce"), 15, "segment")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
    started = server.channel("bounce")["stream"]["started_at"]
    playlist1 = server.get("/hls/bounce/source/index.m3u8").decode()
    pub = BackgroundPublisher(url, av_fixture)
    try:
        time.sleep(2.5)
        ch = server.channel("bounce")
        assert ch["live"] and ch["stream"]["started_at"] == started
        playlist2 = server.get("/hls/bounce/source/index.m3u8").decode()
        assert (
            "#EXT-X-DISCONTINUITY\n" in playlist2 or "#EXT-X-DISCONTINUITY-SEQUENCE:1" in playlist2
        )
        assert "#EXT-X-ENDLIST" not in playlist2

        def seq(text: str) -> int:
            line = next(x for x in text.splitlines() if x.startswith("#EXT-X-MEDIA-SEQUENCE"))
            return int(line.split(":")[1])

        assert seq(playlist2) >= seq(playlist1)
    finally:
        pub.stop()


def test_key_rotation_drops_live_publisher(server: KitchServer, av_fixture: Fixture) -> None:
    acct = server.create_account("rotor")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    try:
        server.wait_for(lambda: is_live(server, "rotor"), 10, "live")
        status, body = server.request("POST", "/api/v1/me/stream-key", token=acct.access_token)
        assert status == 200 and body["stream_key"] != acct.stream_key
        t0 = time.monotonic()
        pub.thread.join(15)
        took = time.monotonic() - t0
        print(f"publisher with the old key dropped after {took:.2f} s")
        assert not pub.alive and pub.error is not None
        server.wait_for(lambda: not is_live(server, "rotor"), 5, "offline after the rotation")
    finally:
        pub.stop()


def test_sigterm_ends_live_sessions_and_restart_cleans_crash(
    server_factory: object, av_fixture: Fixture
) -> None:
    srv: KitchServer = server_factory()  # type: ignore[operator]
    acct = srv.create_account("term")
    pub = BackgroundPublisher(srv.rtmp_url(acct.stream_key), av_fixture)
    srv.wait_for(lambda: is_live(srv, "term"), 10, "live")
    took = srv.stop(signal.SIGTERM)
    print(f"SIGTERM: exited in {took:.2f} s")
    assert took < 6 and srv.proc is not None and srv.proc.returncode == 0
    pub.stop()
    # Ended cleanly by the server itself, not left for the next start-up to clean.
    with sqlite3.connect(srv.data_dir / "kitch.db") as db:
        rows = db.execute("SELECT ended_at, end_reason FROM broadcast_sessions").fetchall()
    assert len(rows) == 1 and rows[0][0] is not None and rows[0][1] == "server shutdown", rows
    assert re.search(
        r"rtmp 127\.0\.0\.1:\d+ channel=term: closed \(server shutting down\)", srv.log()
    )
    srv2: KitchServer = server_factory(data_dir=srv.data_dir)  # type: ignore[operator]
    assert not is_live(srv2, "term")
    pub = BackgroundPublisher(srv2.rtmp_url(acct.stream_key), av_fixture)
    srv2.wait_for(lambda: is_live(srv2, "term"), 10, "live again")
    srv2.stop(signal.SIGKILL)
    pub.stop()
    srv3: KitchServer = server_factory(data_dir=srv.data_dir)  # type: ignore[operator]
    assert not is_live(srv3, "term"), "start-up must close sessions left open by a crash"
    assert "left open" in srv3.log()


def test_long_keyframe_interval_never_exceeds_target_duration(
    server: KitchServer, media_dir: object
) -> None:
    import m3u8

    from tests.support.media import make_fixture

    fixture = make_fixture(media_dir, seconds=7, gop=90)  # type: ignore[arg-type]
    acct = server.create_account("longgop")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fixture)
    try:
        server.wait_for(lambda: is_live(server, "longgop"), 10, "live")

        def enough_segments() -> bool:
            status, body = server.request("GET", "/hls/longgop/source/index.m3u8")
            if status != 200:
                return False
            complete = [s for s in m3u8.loads(body.decode()).segments if s.duration]
            return len(complete) >= 2

        server.wait_for(enough_segments, 20, "two segments")
        playlist = m3u8.loads(server.get("/hls/longgop/source/index.m3u8").decode())
        # The segment in progress has parts only (no EXTINF yet).
        durations = [s.duration for s in playlist.segments if s.duration]
        print(f"TARGETDURATION {playlist.target_duration}, segments {durations}")
        assert playlist.target_duration >= 3
        assert all(round(d) <= playlist.target_duration for d in durations), durations
        server.wait_for(
            lambda: (
                (server.channel("longgop").get("stream") or {})
                .get("stats", {})
                .get("keyframe_interval_s")
            ),
            10,
            "keyframe interval measured",
        )
        stats = server.channel("longgop")["stream"]["stats"]
        assert stats["keyframe_interval_s"] == pytest.approx(3.0, abs=0.1), stats
    finally:
        pub.stop()
