"""The live viewer count is the union of HLS players and chat-only watchers, one per client.

Real RTMP publish, real media-playlist requests and real chat sockets against a real
`kitch serve` that trusts 127.0.0.1 as a proxy, so each client is a distinct X-Forwarded-For
address (+ User-Agent), as it would be behind a reverse proxy.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.chat.test_chat_server import frames
from tests.follows.conftest import Frame, drain, events
from tests.server.conftest import BackgroundPublisher
from tests.support.media import Fixture
from tests.support.server import KitchServer, serving

pytestmark = pytest.mark.slow

CHANNEL = "alice"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[KitchServer]:
    # a long window: a player read early in the test still counts at its end
    with serving(
        tmp_path,
        "--viewer-window",
        "60",
        "--ladder",
        "off",
        "--reconnect-grace",
        "1",
        "--trusted-proxies",
        "127.0.0.1",
    ) as srv:
        yield srv


async def play(http: httpx.AsyncClient, address: str, agent: str) -> int:
    """One media-playlist request of the client ``address`` + ``agent`` (a player's reload)."""
    answer = await http.get(
        f"/hls/{CHANNEL}/source/index.m3u8",
        headers={"X-Forwarded-For": address, "User-Agent": agent},
    )
    return answer.status_code


async def open_chat(srv: KitchServer, address: str, agent: str) -> ClientConnection:
    """A chat socket of the client ``address`` + ``agent``, its welcome read."""
    ws = await connect(
        f"ws://127.0.0.1:{srv.http_port}/ws/chat/{CHANNEL}",
        additional_headers={"X-Forwarded-For": address},
        user_agent_header=agent,
    )
    assert frames(await ws.recv())[0]["type"] == "welcome"
    return ws


async def viewers(srv: KitchServer) -> int:
    channel = await asyncio.to_thread(srv.channel, CHANNEL)
    count: int = channel["viewers"]
    return count


async def presence_says(ws: ClientConnection, count: int, timeout: float = 12.0) -> list[int]:
    """The viewer counts of the presence frames (every 5 s) up to the first that says ``count``
    (fails when none does within ``timeout``)."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1] != count:
        left = deadline - time.monotonic()
        assert left > 0, f"no presence frame said {count}: {seen}"
        for frame in frames(await asyncio.wait_for(ws.recv(), left)):
            if frame["type"] == "presence":
                seen.append(frame["viewers"])
    return seen


async def viewers_become(srv: KitchServer, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := await viewers(srv)) != count:
        assert time.monotonic() < deadline, f"{now} viewers, not {count}"
        await asyncio.sleep(0.1)


def pushed_counts(frames: list[Frame]) -> list[int]:
    return [f["viewers"] for f in frames if f["type"] == "channel" and f["name"] == CHANNEL]


async def test_players_and_chat_only_watchers_count_once_per_client(
    proxied: KitchServer, av_fixture: Fixture
) -> None:
    srv = proxied
    alice = srv.create_account(CHANNEL)
    pub = BackgroundPublisher(srv.rtmp_url(alice.stream_key), av_fixture)
    sockets: list[ClientConnection] = []
    try:
        async with httpx.AsyncClient(base_url=srv.base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while not (await asyncio.to_thread(srv.channel, CHANNEL))["live"]:
                assert time.monotonic() < deadline and pub.error is None, pub.error
                await asyncio.sleep(0.2)
            # Player only: client A (10.0.0.1, "agent-x") reads the playlist.
            deadline = time.monotonic() + 30
            while await play(http, "10.0.0.1", "agent-x") != 200:
                assert time.monotonic() < deadline, "no playlist"
                await asyncio.sleep(0.2)
            # counted at once, or as soon as the go-live is announced (after its database work)
            await viewers_become(srv, 1)

            with events(srv) as events_ws:
                # Both from the same client: A opens the chat beside its player.
                a_chat = await open_chat(srv, "10.0.0.1", "agent-x")
                sockets.append(a_chat)
                assert await viewers(srv) == 1
                # Chat only: client B (same User-Agent, another address) has no player.
                b_chat = await open_chat(srv, "10.0.0.2", "agent-x")
                sockets.append(b_chat)
                assert await viewers(srv) == 2
                # Chat only: client C (A's address, another browser).
                c_chat = await open_chat(srv, "10.0.0.1", "agent-y")
                sockets.append(c_chat)
                assert await viewers(srv) == 3
                # Two clients with both: B starts its player too; A opens a second chat tab.
                assert await play(http, "10.0.0.2", "agent-x") == 200
                a_tab = await open_chat(srv, "10.0.0.1", "agent-x")
                sockets.append(a_tab)
                assert await viewers(srv) == 3

                # The count is what the chat's presence frames and the events socket push.
                await presence_says(b_chat, 3)
                frames = await asyncio.to_thread(drain, events_ws, 7)  # a viewer tick (5 s)
                assert pushed_counts(frames)[-1:] == [3], frames

                # C leaves: a chat-only watcher stops counting at once.
                await c_chat.close()
                await viewers_become(srv, 2)
                # A closes both chats: its player still counts it (within the window).
                await a_chat.close()
                await a_tab.close()
                await asyncio.sleep(1)  # the server has seen the closes
                assert await viewers(srv) == 2
                await presence_says(b_chat, 2)
                frames = await asyncio.to_thread(drain, events_ws, 7)
                assert pushed_counts(frames)[-1:] == [2], frames
    finally:
        pub.stop()
        for ws in sockets:
            await ws.close()
    await asyncio.to_thread(
        srv.wait_for, lambda: not srv.channel(CHANNEL)["live"], 15, "the channel offline"
    )
    # The broadcast's stored peak and samples are of the same count.
    with sqlite3.connect(srv.data_dir / "kitch.db") as db:
        (metadata,) = db.execute("SELECT metadata FROM broadcast_sessions").fetchone()
    stored = json.loads(metadata)["viewers"]
    assert stored["peak"] == 3, stored
    assert {n for _, n in stored["series"]} >= {2, 3}, stored
