"""Discovery against a real ``kitch serve``: two real RTMP publishers, viewer counts from real
playlist reads, search and category pages in that order, edits of a live channel pushed on the
events socket, hostile search text as raw URL bytes, and the ``kitch category`` commands beside
the running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.follows.conftest import events, frames_until
from tests.server.conftest import BackgroundPublisher, source_playlist
from tests.support.media import Fixture
from tests.support.server import KitchServer, serving

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KitchServer]:
    with serving(tmp_path, "--ladder", "off", "--viewer-window", "60") as srv:
        yield srv


def _read_playlist(server: KitchServer, name: str, agent: str) -> None:
    req = urllib.request.Request(
        f"{server.base}/hls/{name}/source/index.m3u8", headers={"User-Agent": agent}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _raw_get(server: KitchServer, path: str) -> tuple[int, Any]:
    """GET with the path sent as it is (percent escapes and all)."""
    try:
        with urllib.request.urlopen(server.base + path, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _names(answer: dict[str, Any]) -> list[str]:
    return [c["name"] for c in answer["channels"]]


def test_live_discovery_on_a_real_server(server: KitchServer, av_fixture: Fixture) -> None:
    accounts = {name: server.create_account(name) for name in ("alice", "bob", "carol")}
    for name, title in (("alice", "chess blitz"), ("bob", "chess bullet"), ("carol", "Chess")):
        status, _ = server.request(
            "PATCH",
            f"/api/v1/channels/{name}",
            {"title": title, "category": "Strategy Games", "tags": ["Board"]},
            token=accounts[name].access_token,
        )
        assert status == 200
    publishers = [
        BackgroundPublisher(server.rtmp_url(accounts[name].stream_key), av_fixture)
        for name in ("alice", "bob")
    ]
    try:
        for name in ("alice", "bob"):
            server.wait_for(
                lambda n=name: "#EXTINF" in source_playlist(server, n), 30, f"{name} live"
            )
        for agent in ("player-a", "player-b", "player-c"):
            _read_playlist(server, "bob", agent)
        _read_playlist(server, "alice", "player-a")
        viewers = {name: server.channel(name)["viewers"] for name in ("alice", "bob")}
        assert viewers["bob"] > viewers["alice"] >= 1, viewers

        # live first (carol's title is the best match but she is offline), most watched first
        assert _names(server.get("/api/v1/search?q=chess")) == ["bob", "alice", "carol"]
        assert _names(server.get("/api/v1/search?q=CHE")) == ["bob", "alice", "carol"]
        assert _names(server.get("/api/v1/search?q=chess&live=true")) == ["bob", "alice"]
        page = server.get("/api/v1/search?q=chess&limit=2")
        assert _names(page) == ["bob", "alice"] and page["next_offset"] == 2
        assert _names(server.get("/api/v1/search?q=chess&limit=2&offset=2")) == ["carol"]
        assert _names(server.get("/api/v1/channels?live=true")) == ["bob", "alice"]
        category = server.get("/api/v1/categories/strategy-games?live=true")
        assert _names(category) == ["bob", "alice"]
        assert category["category"]["live_channels"] == 2
        assert category["category"]["viewers"] == viewers["alice"] + viewers["bob"]
        directory = server.get("/api/v1/categories")["categories"]
        assert directory[0]["slug"] == "strategy-games"
        assert _names(server.get("/api/v1/tags/board")) == ["bob", "alice", "carol"]

        # a live channel's edits reach an anonymous viewer's events socket at once
        token = accounts["bob"].access_token
        with events(server) as ws:
            server.request("PATCH", "/api/v1/channels/bob", {"tags": ["Blitz"]}, token=token)
            seen = frames_until(ws, lambda f: f.get("name") == "bob" and "tags" in f, 5)
            assert seen[-1]["tags"] == ["Blitz"] and seen[-1]["live"] is True
            server.request("PATCH", "/api/v1/channels/bob", {"category": "music"}, token=token)
            seen = frames_until(ws, lambda f: f.get("name") == "bob" and f["category"], 5)
            assert seen[-1]["category"] == "Music"
            # an admin (made with the CLI) renames the category: its live channel's viewers see it
            create = ["user", "create", "curator", "--email", "r@x.test", "--admin"]
            made = subprocess.run(
                [sys.executable, "-m", "kitch", *create, "--data-dir", str(server.data_dir)],
                input="an admin password\n",
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT), "KITCH_BCRYPT_COST": "4"},
                timeout=60,
            )
            assert made.returncode == 0, made.stderr
            admin = server.login("curator", "an admin password")["access_token"]
            status, _ = server.request(
                "PATCH", "/api/v1/categories/music", {"name": "Music & Audio"}, token=admin
            )
            assert status == 200
            seen = frames_until(ws, lambda f: f.get("category") == "Music & Audio", 5)
            assert seen[-1]["name"] == "bob" and seen[-1]["live"] is True
        assert _names(server.get("/api/v1/search?q=audio")) == ["bob"]
    finally:
        for publisher in publishers:
            publisher.stop()
    assert all(p.error is None for p in publishers), [p.error for p in publishers]


HOSTILE_RAW = [
    "%22",
    "%22unbalanced",
    "NEAR(a%20b)",
    "a%20AND%20OR%20NOT",
    "title%3Achess",
    "%7Btitle%20name%7D%3Ax",
    "*",
    "%5Echess",
    "%00",
    "chess%00",
    "%F0%9F%8E%AE",
    "%ED%A0%80",
    "%FF%FE%FD",
    "%C0%80",
    "'%3B%20DROP%20TABLE%20channels%3B%20--",
    "%25",
    "x" * 200,
    "a+" * 100,
    "%E2%80%AEchess",
]


def test_hostile_search_text_on_a_real_server(server: KitchServer) -> None:
    account = server.create_account("target")
    server.request(
        "PATCH", "/api/v1/channels/target", {"title": "chess"}, token=account.access_token
    )
    for raw in HOSTILE_RAW:
        status, body = _raw_get(server, f"/api/v1/search?q={raw}")
        assert status == 200, (raw, body)
        assert set(body) == {"terms", "categories", "channels", "next_offset"}, raw
    status, body = _raw_get(server, "/api/v1/search?q=" + "x" * 201)
    assert status == 422 and body["error"]["code"] == "validation_error"
    status, body = _raw_get(server, "/api/v1/search?q=" + "%F0%9F%8E%AE" * 60)
    assert status == 200 and body["terms"] == []  # 60 characters after decoding
    assert _names(_raw_get(server, "/api/v1/search?q=%5Echess*")[1]) == ["target"]
    assert "Traceback" not in server.log()


def _kitch(server: KitchServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "kitch", "category", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_category_commands_beside_the_server(server: KitchServer) -> None:
    listed = _kitch(server, "list")
    assert listed.returncode == 0 and "just-chatting\tJust Chatting" in listed.stdout
    added = _kitch(server, "add", "Chess & Go", "--hue", "40")
    assert added.returncode == 0, added.stderr
    assert "chess-and-go" in added.stdout
    assert server.get("/api/v1/categories/chess-and-go")["category"]["hue"] == 40
    assert _kitch(server, "add", "CHESS & GO").returncode == 1  # the name is taken
    assert _kitch(server, "add", "Bad", "--slug", "Not A Slug").returncode == 2
    assert _kitch(server, "add", "\u56f2\u7881").returncode == 2  # no slug from the name
    edited = _kitch(server, "edit", "chess-and-go", "--name", "Go", "--new-slug", "go")
    assert edited.returncode == 0, edited.stderr
    assert server.get("/api/v1/categories/go")["category"]["name"] == "Go"
    assert _kitch(server, "edit", "nope", "--name", "X").returncode == 1
    removed = _kitch(server, "remove", "go")
    assert removed.returncode == 0 and "removed category go" in removed.stdout
    status, _ = server.request("GET", "/api/v1/categories/go")
    assert status == 404
