"""A streamer who stops on purpose ends the broadcast at once; one who drops gets the grace.

FFmpeg's RTMP client (PyAV and the command line) sends FCUnpublish and deleteStream when its
output closes normally (the end of the input, or SIGTERM); a killed process, or one stopped
with SIGSTOP, never does. The server runs with a 3 s grace.
"""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from tests.server.conftest import BackgroundPublisher, is_live, source_playlist
from tests.support.media import Fixture, ffmpeg_cli_publish
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow

GRACE = 3.0


def end_reasons(server: KitchServer) -> list[str]:
    with sqlite3.connect(server.data_dir / "kitch.db") as db:
        rows = db.execute("SELECT end_reason FROM broadcast_sessions ORDER BY id").fetchall()
    return [r[0] for r in rows]


def offline_after(server: KitchServer, name: str, t0: float, timeout: float = 10) -> float:
    server.wait_for(lambda: not is_live(server, name), timeout, f"{name} offline")
    return time.monotonic() - t0


def test_pyav_stopping_cleanly_ends_the_broadcast_at_once(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("quits")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    try:
        server.wait_for(lambda: "#EXTINF" in source_playlist(server, "quits"), 15, "a segment")
        assert "#EXT-X-ENDLIST" not in source_playlist(server, "quits")
    finally:
        t0 = time.monotonic()
        pub.stop()  # PyAV closes its output: FCUnpublish + deleteStream
    assert pub.error is None, pub.error
    took = offline_after(server, "quits", t0)
    print(f"offline {took:.2f} s after PyAV closed its output (grace {GRACE:g} s)")
    assert took < GRACE - 1
    assert "#EXT-X-ENDLIST" in source_playlist(server, "quits")
    assert end_reasons(server) == ["unpublished"]


def test_ffmpeg_cli_end_of_input_ends_at_once_a_killed_one_gets_the_grace(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("cli")
    url = server.rtmp_url(acct.stream_key)
    # The input ends after 4 s: ffmpeg closes its output normally.
    with ffmpeg_cli_publish(url, av_fixture, loops=0) as proc:
        server.wait_for(lambda: is_live(server, "cli"), 10, "live")
        assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
        t0 = time.monotonic()
    took = offline_after(server, "cli", t0)
    print(f"offline {took:.2f} s after ffmpeg finished its input")
    assert took < GRACE - 1
    assert "#EXT-X-ENDLIST" in source_playlist(server, "cli")
    assert "stopped publishing cli" in server.log()

    # SIGKILL: the socket closes without an unpublish, which is a drop: the grace applies.
    with ffmpeg_cli_publish(url, av_fixture, loops=-1) as proc:
        try:
            server.wait_for(lambda: is_live(server, "cli"), 10, "live again")
            server.wait_for(lambda: "#EXTINF" in source_playlist(server, "cli"), 15, "a segment")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
            t0 = time.monotonic()
    server.wait_for(lambda: "closed by peer" in server.log(), 5, "the drop seen")
    time.sleep(1.0)
    assert is_live(server, "cli"), "a dropped publisher must get the reconnect grace"
    assert "#EXT-X-ENDLIST" not in source_playlist(server, "cli")
    took = offline_after(server, "cli", t0)
    print(f"offline {took:.2f} s after ffmpeg was killed (grace {GRACE:g} s)")
    assert GRACE - 0.5 <= took < GRACE + 3
    assert "#EXT-X-ENDLIST" in source_playlist(server, "cli")
    assert end_reasons(server) == ["unpublished", "publisher did not come back"]


def test_ffmpeg_cli_sigterm_is_a_clean_stop(server: KitchServer, av_fixture: Fixture) -> None:
    acct = server.create_account("termed")
    with ffmpeg_cli_publish(server.rtmp_url(acct.stream_key), av_fixture, loops=-1) as proc:
        server.wait_for(lambda: is_live(server, "termed"), 10, "live")
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        t0 = time.monotonic()
    took = offline_after(server, "termed", t0)
    print(f"offline {took:.2f} s after ffmpeg got SIGTERM")
    assert took < GRACE - 1
    assert end_reasons(server) == ["unpublished"]
