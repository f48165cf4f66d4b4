"""A real ``kitch serve --database postgresql://...``: the HTTP API and the chat socket work
against PostgreSQL (register, log in, channel edits, follow, chat history, a real RTMP
broadcast with its notification and analytics, search),
the data outlives a restart, and nothing is written to an SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect

from tests.support.media import Fixture, ffmpeg_cli_publish
from tests.support.postgres import PostgresCluster
from tests.support.server import KitchServer, serving


async def _chat(server: KitchServer, channel: str, token: str, texts: list[str]) -> list[int]:
    """Say ``texts`` in ``channel``'s room; return the ids of the messages as broadcast."""
    ids = []
    async with connect(f"ws://127.0.0.1:{server.http_port}/ws/chat/{channel}") as ws:

        async def frame(kind: str) -> dict[str, Any]:
            while True:
                raw = await asyncio.wait_for(ws.recv(), 10)
                assert isinstance(raw, bytes)
                unpacker = msgpack.Unpacker(raw=False)  # one socket message may hold several
                unpacker.feed(raw)
                for got in unpacker:
                    if got["type"] == kind:
                        return dict(got)

        await frame("welcome")
        await ws.send(msgpack.packb({"type": "auth", "token": token}))
        await frame("welcome")
        for i, text in enumerate(texts):
            await ws.send(msgpack.packb({"type": "say", "text": text, "nonce": f"n{i}"}))
            said = await frame("message")
            ids.append(int(said["id"]))
    return ids


@pytest.mark.slow
async def test_serve_on_postgresql(
    tmp_path: Path, postgres: PostgresCluster, av_fixture: Fixture
) -> None:
    url = postgres.url(await postgres.create_database(empty=True))
    with serving(tmp_path, "--database", url, "--ladder", "off") as server:
        star = server.create_account("star")
        fan = server.create_account("fan")
        status, _ = server.request(
            "PATCH",
            "/api/v1/channels/star",
            {"title": "Late night synthwave", "tags": ["Chill Vibes"], "category": "music"},
            token=star.access_token,
        )
        assert status == 200
        status, _ = server.request("PUT", "/api/v1/channels/star/follow", token=fan.access_token)
        assert status in (200, 204)
        following = server.get("/api/v1/me/following", token=fan.access_token)
        assert [c["name"] for c in following["channels"]] == ["star"]
        assert server.channel("star")["follower_count"] == 1

        # a real broadcast: go-live, the follower's notification, chat, the end, its figures
        with ffmpeg_cli_publish(server.rtmp_url(star.stream_key), av_fixture, loops=1) as publisher:
            server.wait_for(lambda: server.channel("star")["live"], 20, "the channel live")
            server.wait_for(
                lambda: (
                    server.get("/api/v1/me/notifications", token=fan.access_token)["unread"] == 1
                ),
                10,
                "the follower's notification",
            )
            ids = await _chat(server, "star", fan.access_token, ["first", "second ? 'quoted'"])
            assert ids == sorted(ids) and ids[0] > 2**32  # millisecond ids need 64-bit columns
            assert publisher.wait(30) == 0
        server.wait_for(lambda: not server.channel("star")["live"], 15, "the channel offline")

        def stored() -> bool:
            page = server.get("/api/v1/channels/star/chat?limit=10")
            return [m["text"] for m in page["messages"]] == ["first", "second ? 'quoted'"]

        server.wait_for(stored, 10, "the chat messages in the history")
        broadcasts = server.get("/api/v1/me/analytics", token=star.access_token)["broadcasts"]
        assert len(broadcasts) == 1 and broadcasts[0]["chat_messages"] == 2

        found = server.get("/api/v1/search?q=synthw")
        assert [c["name"] for c in found["channels"]] == ["star"]
        assert [c["slug"] for c in server.get("/api/v1/search?q=mus")["categories"]] == ["music"]
        assert server.get("/api/v1/search?q=chill%20vibes")["channels"][0]["name"] == "star"
        assert server.get("/api/v1/search?q=nothing")["channels"] == []
        status, body = server.request(
            "POST",
            "/api/v1/auth/register",
            {"username": "Star", "email": "x@example.test", "password": "correct horse 1"},
        )
        assert status == 409 and body["error"]["code"], body

    with serving(tmp_path, "--database", url, "--ladder", "off") as server:
        tokens = server.login("fan", "correct horse 1")
        following = server.get("/api/v1/me/following", token=tokens["access_token"])
        assert [c["name"] for c in following["channels"]] == ["star"]
        history = server.get("/api/v1/channels/star/chat")
        assert [m["id"] for m in history["messages"]] == ids
        assert f"database {url}" in server.log()
    assert not (tmp_path / "data" / "kitch.db").exists()
