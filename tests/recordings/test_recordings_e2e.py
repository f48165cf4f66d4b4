"""Recordings end to end: real RTMP publishers into a real `kitch serve`, read back over HTTP
and played with PyAV (FFmpeg's HLS demuxer)."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitch.server.recordings import RECOVERED
from tests.recordings.conftest import (
    ServerFactory,
    only_recording,
    playlist_entries,
    recordings,
)
from tests.recordings.playback import first_frame_after_seek, play_all
from tests.server.conftest import BackgroundPublisher, is_live, source_playlist
from tests.support.hls import play_hls
from tests.support.media import Fixture, ffmpeg_cli_publish, publish_pyav
from tests.support.server import Account, KitchServer

pytestmark = pytest.mark.slow
FPS = 30


def wait_state(server: KitchServer, name: str, state: str, timeout: float = 15) -> dict[str, Any]:
    server.wait_for(
        lambda: any(r["state"] == state for r in recordings(server, name)), timeout, state
    )
    return only_recording(server, name)


@contextlib.contextmanager
def recording_publisher(
    server: KitchServer, acct: Account, fixture: Fixture, segments: int
) -> Iterator[BackgroundPublisher]:
    """`acct` publishing in the background until its recording holds `segments` segments;
    the publisher stops when the block ends."""
    name = acct.username
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fixture)
    try:
        server.wait_for(
            lambda: any(r["segments"] >= segments for r in recordings(server, name)),
            20,
            "segments",
        )
        yield pub
    finally:
        pub.stop()


def test_a_broadcast_is_recorded_and_plays_back_as_vod(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("alice")
    publish_pyav(server.rtmp_url(acct.stream_key), av_fixture, loops=2)  # 8 s, then unpublish
    rec = wait_state(server, "alice", "ended")
    published = 2 * av_fixture.seconds
    assert rec["reason"] is None and rec["segments"] >= 3, rec
    assert rec["duration"] == pytest.approx(published, abs=0.15), rec
    url = server.base + rec["playlist_url"]
    status, text, headers = server.exchange("GET", rec["playlist_url"])
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    text = text.decode()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert '#EXT-X-MAP:URI="init.mp4"' in text and "#EXT-X-DISCONTINUITY" not in text
    # every frame decodes, the timeline starts at 0 and has no hole (the publisher's loop
    # point, where its AAC runs past the video, moves one frame by 57 ms live too)
    playback = play_all(url)
    assert abs(playback.frames - published * FPS) <= 2, playback.frames
    assert min(playback.video_pts) < 0.1 and playback.max_gap() < 0.1
    assert playback.duration == pytest.approx(published, abs=0.2)
    assert playback.audio_frames > 0
    # seeking to the middle lands on the keyframe before it (1 s GOP)
    middle = published / 2 + 0.5
    landed = first_frame_after_seek(url, middle)
    assert middle - 1.1 <= landed <= middle, landed
    # the files: segments immutable, Range answered, nothing outside the recording
    seg = playlist_entries(text)[1]
    base = rec["playlist_url"].rsplit("/", 1)[0]
    status, whole, headers = server.exchange("GET", f"{base}/{seg}")
    assert status == 200 and "immutable" in headers["Cache-Control"]
    assert headers["Accept-Ranges"] == "bytes"
    status, part, headers = server.exchange("GET", f"{base}/{seg}", headers={"Range": "bytes=8-99"})
    assert status == 206 and part == whole[8:100], headers
    assert headers["Content-Range"] == f"bytes 8-99/{len(whole)}"
    for bad in ("..%2Fkitch.db", "kitch.db", "s1.mp4", "index.m3u8.tmp", "%2E%2E", "init-x.mp4"):
        assert server.exchange("GET", f"{base}/{bad}")[0] == 404, bad
    assert server.exchange("GET", "/vod/999/index.m3u8")[0] == 404
    assert server.exchange("GET", "/vod/../data/kitch.db")[0] == 404


def test_a_reconnect_is_a_discontinuity_on_one_timeline(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("bounce")
    url = server.rtmp_url(acct.stream_key)
    # the first publisher drops (killed: no unpublish), a second one comes back in the grace
    with ffmpeg_cli_publish(url, av_fixture, loops=-1) as proc:
        try:
            server.wait_for(
                lambda: source_playlist(server, "bounce").count("#EXTINF") >= 2, 15, "segments"
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
    publish_pyav(url, av_fixture, loops=1)
    rec = wait_state(server, "bounce", "ended")
    text = server.get(rec["playlist_url"]).decode()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1, text
    assert text.count("#EXT-X-MAP") == 1  # same codecs: one init segment
    playback = play_all(server.base + rec["playlist_url"])
    assert abs(playback.frames - rec["duration"] * FPS) <= 3, (playback.frames, rec)
    # the live muxer's timestamps go on after the reconnect: no jump back, no hole
    pts = playback.video_pts
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert playback.max_gap() < 0.1, playback.max_gap()
    assert playback.span == pytest.approx(rec["duration"], abs=0.2)


def test_a_killed_server_leaves_a_playable_recording_that_the_next_one_closes(
    server_factory: ServerFactory, av_fixture: Fixture, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory("--ladder", "off", data_dir=data)
    with recording_publisher(server, server.create_account("crash"), av_fixture, 3):
        server.stop(signal.SIGKILL)
    directory = data / "recordings" / "crash" / "1"
    text = (directory / "index.m3u8").read_text()
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-ENDLIST" not in text
    listed = playlist_entries(text)
    assert len(listed) >= 3 and all((directory / name).stat().st_size > 0 for name in listed)
    # what the killed process left plays as it is, up to its last listed segment (a copy of
    # its playlist with absolute paths and an end, so the demuxer does not wait for more)
    closed = tmp_path / "as-left.m3u8"
    closed.write_text(
        "\n".join(
            line.replace('URI="init.mp4"', f'URI="{directory / "init.mp4"}"')
            if line.startswith("#")
            else str(directory / line)
            for line in text.splitlines()
        )
        + "\n#EXT-X-ENDLIST\n"
    )
    listed_seconds = sum(
        float(line.split(":")[1].rstrip(",")) for line in text.splitlines() if "#EXTINF" in line
    )
    playback = play_all(str(closed))
    assert abs(playback.frames - listed_seconds * FPS) <= 2, (playback.frames, listed_seconds)
    # the next server closes it: VOD, ENDLIST, ended with the reason, same segments
    again = server_factory("--ladder", "off", data_dir=data)
    rec = only_recording(again, "crash")
    assert rec["state"] == "ended" and rec["reason"] == RECOVERED, rec
    assert rec["segments"] == len(listed)
    assert rec["duration"] == pytest.approx(listed_seconds, abs=0.01)
    text = again.get(rec["playlist_url"]).decode()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert playlist_entries(text) == listed
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["index.m3u8", "init.mp4", *listed]
    )
    playback = play_all(again.base + rec["playlist_url"])
    assert abs(playback.frames - listed_seconds * FPS) <= 2


def test_a_full_disk_stops_the_recording_and_the_live_stream_goes_on(
    server_factory: ServerFactory, av_fixture: Fixture, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory("--ladder", "off", data_dir=data)
    with recording_publisher(server, server.create_account("full"), av_fixture, 2) as pub:
        # the next segment files lead to /dev/full: their writes fail with ENOSPC
        directory = data / "recordings" / "full" / "1"
        last = max(int(p.stem[1:]) for p in directory.glob("s*.m4s"))
        for msn in range(last + 1, last + 8):
            with contextlib.suppress(FileExistsError):  # being written right now
                os.symlink("/dev/full", directory / f"s{msn}.m4s")
        rec = wait_state(server, "full", "stopped")
        assert rec["reason"] == "the disk is full", rec
        assert "recording of full stopped (the live stream goes on): the disk is full" in (
            server.log()
        )
        # the broadcast is still live and plays; the recording plays up to where it stopped
        time.sleep(2.5)
        assert is_live(server, "full") and pub.alive and pub.error is None
        live = play_hls(f"{server.base}/hls/full/master.m3u8", video_frames=30)
        assert len(live.video_pts) >= 30
        text = server.get(rec["playlist_url"]).decode()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and "#EXT-X-ENDLIST" in text
        assert len(playlist_entries(text)) == rec["segments"] >= 2
        playback = play_all(server.base + rec["playlist_url"])
        assert abs(playback.frames - rec["duration"] * FPS) <= 2
        # the recording stays stopped while the broadcast goes on
        assert only_recording(server, "full")["segments"] == rec["segments"]
        # a link left in the directory is never followed by the HTTP side
        left = next(p.name for p in directory.iterdir() if p.is_symlink())
        base = rec["playlist_url"].rsplit("/", 1)[0]
        assert server.exchange("GET", f"{base}/{left}")[0] == 404


def test_the_switch_is_the_owners_and_turns_recording_off(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("quiet")
    other = server.create_account("other")
    path = "/api/v1/channels/quiet/recording-settings"
    status, body = server.request("GET", path, token=acct.access_token)
    assert status == 200 and body["enabled"] is True and body["server_enabled"] is True
    assert body["retention_days"] == 14 and body["used_bytes"] == 0
    assert server.request("PATCH", path, {"enabled": False})[0] == 401
    assert server.request("PATCH", path, {"enabled": False}, other.access_token)[0] == 403
    assert server.request("PATCH", path, {"enabled": "no"}, acct.access_token)[0] == 422
    assert server.request("PATCH", path, {"on": True}, acct.access_token)[0] == 422
    status, body = server.request("PATCH", path, {"enabled": False}, acct.access_token)
    assert status == 200 and body["enabled"] is False
    publish_pyav(server.rtmp_url(acct.stream_key), av_fixture)
    time.sleep(0.5)
    assert recordings(server, "quiet", acct.access_token) == []
    assert not (server.data_dir / "recordings" / "quiet").exists()


def test_rename_and_delete_are_the_owners(server: KitchServer, av_fixture: Fixture) -> None:
    acct = server.create_account("owner")
    other = server.create_account("stranger")
    publish_pyav(server.rtmp_url(acct.stream_key), av_fixture)
    rec = wait_state(server, "owner", "ended")
    path = f"/api/v1/recordings/{rec['id']}"
    assert server.get(path) == rec
    assert server.request("PATCH", path, {"title": "x"})[0] == 401
    assert server.request("PATCH", path, {"title": "x"}, other.access_token)[0] == 403
    assert server.request("DELETE", path, token=other.access_token)[0] == 403
    assert server.request("PATCH", path, {"title": " "}, acct.access_token)[0] == 422
    assert server.request("PATCH", path, {"title": "x" * 141}, acct.access_token)[0] == 422
    status, body = server.request("PATCH", path, {"title": "  Speedrun  "}, acct.access_token)
    assert status == 200 and body["title"] == "Speedrun"
    assert only_recording(server, "owner")["title"] == "Speedrun"
    (directory,) = (server.data_dir / "recordings" / "owner").iterdir()
    assert (directory / "index.m3u8").exists()
    status, _ = server.request("DELETE", path, token=acct.access_token)
    assert status == 204
    assert recordings(server, "owner") == [] and not directory.exists()
    assert server.exchange("GET", rec["playlist_url"])[0] == 404
    assert server.request("GET", path)[0] == 404
    assert server.request("DELETE", path, token=acct.access_token)[0] == 404
    assert server.request("GET", "/api/v1/recordings/abc")[0] == 404
    assert server.request("GET", "/api/v1/channels/nobody/recordings")[0] == 404


def test_a_recording_in_progress_is_an_event_playlist_and_cannot_be_deleted(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("ongoing")
    with recording_publisher(server, acct, av_fixture, 2):
        rec = only_recording(server, "ongoing")
        assert rec["state"] == "recording" and rec["ended_at"] is None
        status, text, headers = server.exchange("GET", rec["playlist_url"])
        assert status == 200 and headers["Cache-Control"] == "no-cache"
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text.decode()
        assert "#EXT-X-ENDLIST" not in text.decode()
        status, body = server.request(
            "DELETE", f"/api/v1/recordings/{rec['id']}", token=acct.access_token
        )
        assert status == 409 and body["error"]["code"] == "conflict"
    rec = wait_state(server, "ongoing", "ended")
    assert "#EXT-X-ENDLIST" in server.get(rec["playlist_url"]).decode()


def test_expired_recordings_are_deleted_by_the_cleanup(
    server_factory: ServerFactory, av_fixture: Fixture
) -> None:
    # kept 0.2 s (in days), cleaned every 0.5 s
    server = server_factory(
        "--ladder",
        "off",
        KITCH_RECORDING_RETENTION_DAYS=str(0.2 / 86400),
        KITCH_RECORDING_CLEANUP_INTERVAL="0.5",
    )
    acct = server.create_account("brief")
    publish_pyav(server.rtmp_url(acct.stream_key), av_fixture)
    directory = server.data_dir / "recordings" / "brief" / "1"
    server.wait_for(lambda: not directory.exists(), 15, "the expired recording to go")
    assert recordings(server, "brief", acct.access_token) == []
    assert "deleting recording 1 of brief" in server.log()


def test_mpeg_ts_output_is_recorded_as_ts_segments(
    server_factory: ServerFactory, av_fixture: Fixture
) -> None:
    server = server_factory("--ladder", "off", "--hls-format", "ts")
    acct = server.create_account("tsrec")
    publish_pyav(server.rtmp_url(acct.stream_key), av_fixture, loops=2)
    rec = wait_state(server, "tsrec", "ended")
    text = server.get(rec["playlist_url"]).decode()
    assert "#EXT-X-VERSION:3" in text and "#EXT-X-MAP" not in text
    assert all(name.endswith(".ts") for name in playlist_entries(text))
    assert rec["duration"] == pytest.approx(2 * av_fixture.seconds, abs=0.15)
    playback = play_all(server.base + rec["playlist_url"])
    assert abs(playback.frames - rec["duration"] * FPS) <= 2
    base = rec["playlist_url"].rsplit("/", 1)[0]
    status, _, headers = server.exchange("GET", f"{base}/{playlist_entries(text)[0]}")
    assert status == 200 and headers["Content-Type"] == "video/mp2t"


def test_a_clean_shutdown_closes_the_recording_in_progress(
    server_factory: ServerFactory, av_fixture: Fixture, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory("--ladder", "off", data_dir=data)
    with recording_publisher(server, server.create_account("sigterm"), av_fixture, 2):
        server.stop(signal.SIGTERM)
    (directory,) = (data / "recordings" / "sigterm").iterdir()
    text = (directory / "index.m3u8").read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")
    with sqlite3.connect(data / "kitch.db") as db:
        state, reason, segments = db.execute(
            "SELECT state, reason, segments FROM recordings"
        ).fetchone()
    assert (state, reason) == ("ended", None)
    assert segments == len(playlist_entries(text)) >= 2
