"""A real RTMP go-live notifies followers exactly once; viewer counts from real playlist reads."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.request

import pytest

from tests.follows.conftest import Frame, drain, events, frames_until
from tests.server.conftest import BackgroundPublisher, source_playlist
from tests.support.media import Fixture, ffmpeg_cli_publish
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow


def _live(frame: Frame, name: str, live: bool) -> bool:
    return frame["type"] == "channel" and frame["name"] == name and frame["live"] is live


def test_go_live_notifies_once_and_reconnect_in_grace_does_not(
    server: KitchServer, av_fixture: Fixture
) -> None:
    alice = server.create_account("alice")
    bob = server.create_account("bob")
    carol = server.create_account("carol")  # follows nobody
    server.request("PUT", "/api/v1/channels/alice/follow", token=bob.access_token)
    url = server.rtmp_url(alice.stream_key)
    with (
        events(server, bob.access_token) as follower,
        events(server, carol.access_token) as other,
        events(server) as anonymous,
    ):
        # The first publisher goes live, then drops (killed: no unpublish).
        with ffmpeg_cli_publish(url, av_fixture, loops=-1) as proc:
            try:
                seen = frames_until(follower, lambda f: f["type"] == "notification", 20)
                note = seen[-1]
                assert note["kind"] == "live" and note["channel"] == "alice"
                assert isinstance(note["id"], int) and isinstance(note["ts"], float)
                assert any(_live(f, "alice", True) for f in seen)
                # Everyone sees the channel go live (the directory); only followers are notified.
                for ws in (other, anonymous):
                    got = frames_until(ws, lambda f: _live(f, "alice", True), 5)
                    assert not any(f["type"] == "notification" for f in got)
                server.wait_for(lambda: "#EXTINF" in source_playlist(server, "alice"), 15, "media")
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(5)
        started = server.channel("alice")["stream"]["started_at"]
        # A reconnect within the 3 s grace continues the broadcast: no second notification.
        pub = BackgroundPublisher(url, av_fixture)
        try:
            assert pub.started.wait(10)
            time.sleep(2.5)
            channel = server.channel("alice")
            assert channel["live"] and channel["stream"]["started_at"] == started
            later = drain(follower, 1.0)
            assert not any(f["type"] == "notification" for f in later), later
            assert not any(_live(f, "alice", False) for f in later), later
        finally:
            pub.stop()
        assert pub.error is None, pub.error
        # The publisher unpublished: offline at once, pushed to everyone.
        frames_until(follower, lambda f: _live(f, "alice", False), 10)
        frames_until(anonymous, lambda f: _live(f, "alice", False), 10)

    listed = server.get("/api/v1/me/notifications", token=bob.access_token)
    assert listed["unread"] == 1 and len(listed["notifications"]) == 1
    stored = listed["notifications"][0]
    assert stored["id"] == note["id"] and stored["channel"] == "alice" and not stored["read"]
    assert server.get("/api/v1/me/notifications", token=carol.access_token)["unread"] == 0
    status, body = server.request(
        "POST", "/api/v1/me/notifications/read", {"ids": [note["id"]]}, token=bob.access_token
    )
    assert (status, body) == (200, {"unread": 0})
    assert server.get("/api/v1/me/notifications", token=bob.access_token)["notifications"][0][
        "read"
    ]

    # A second broadcast (after the first ended) is a new go-live: a second notification.
    pub = BackgroundPublisher(url, av_fixture)
    try:
        server.wait_for(
            lambda: server.get("/api/v1/me/notifications", token=bob.access_token)["unread"] == 1,
            20,
            "the second go-live notification",
        )
        following = server.get("/api/v1/me/following", token=bob.access_token)["channels"]
        assert following[0]["name"] == "alice" and following[0]["live"] is True
    finally:
        pub.stop()
    assert len(server.get("/api/v1/me/notifications", token=bob.access_token)["notifications"]) == 2


def _read_playlist(server: KitchServer, agent: str) -> None:
    req = urllib.request.Request(
        f"{server.base}/hls/alice/source/index.m3u8", headers={"User-Agent": agent}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def test_viewer_count_rises_with_playlist_readers_and_falls_after_the_window(
    server: KitchServer, av_fixture: Fixture
) -> None:
    alice = server.create_account("alice")
    pub = BackgroundPublisher(server.rtmp_url(alice.stream_key), av_fixture)
    try:
        server.wait_for(lambda: "#EXTINF" in source_playlist(server, "alice"), 20, "media")
        with events(server) as ws:
            for agent in ("player-a", "player-b", "player-c", "player-a"):
                _read_playlist(server, agent)
            # source_playlist (the test's own urllib agent) counted too: 4 distinct readers.
            assert server.channel("alice")["viewers"] == 4
            # Segments are never counted.
            playlist = source_playlist(server, "alice")
            segment = next(x for x in playlist.splitlines() if x and not x.startswith("#"))
            req = urllib.request.Request(
                f"{server.base}/hls/alice/source/{segment}", headers={"User-Agent": "cdn-edge"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
            assert server.channel("alice")["viewers"] == 4
            listed = {c["name"]: c for c in server.get("/api/v1/channels")["channels"]}
            assert listed["alice"]["viewers"] == 4
            # Pushed on the events socket every few seconds while two players keep reading...
            deadline = time.monotonic() + 15
            pushed: list[Frame] = []
            while not any(f["type"] == "channel" and f["viewers"] == 2 for f in pushed):
                assert time.monotonic() < deadline, pushed
                for agent in ("player-a", "player-b"):
                    _read_playlist(server, agent)
                pushed += drain(ws, 0.5)
            # ... and down to 0 once they stop for longer than the 2 s window.
            frames_until(ws, lambda f: f["type"] == "channel" and f["viewers"] == 0, 15)
        assert server.channel("alice")["viewers"] == 0
    finally:
        pub.stop()
    server.wait_for(lambda: not server.channel("alice")["live"], 10, "offline")
    assert "viewers" not in server.channel("alice")
    # The peak and the samples are stored with the broadcast.
    with sqlite3.connect(server.data_dir / "kitch.db") as db:
        (metadata,) = db.execute("SELECT metadata FROM broadcast_sessions").fetchone()
    viewers = json.loads(metadata)["viewers"]
    assert viewers["peak"] >= 2 and any(n >= 2 for _, n in viewers["series"])
