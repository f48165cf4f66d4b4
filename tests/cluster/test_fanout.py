"""Two real `kitch serve` nodes sharing one database and one real redis-server: chat,
moderation, presence, channel changes and a Redis outage, seen by real WebSocket clients."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.chat.test_chat_server import Chat, fresh
from tests.support.media import Fixture, ffmpeg_cli_publish
from tests.support.redis import RedisServer, redis_server
from tests.support.server import Account, KitchServer


class Cluster:
    def __init__(self, redis: RedisServer, a: KitchServer, b: KitchServer) -> None:
        self.redis, self.a, self.b = redis, a, b

    def account(self, prefix: str) -> Account:
        return self.a.create_account(fresh(prefix))


def start_node(tmp: Path, data: Path, name: str, redis: RedisServer) -> KitchServer:
    args = ["--redis", redis.url, "--node-id", name, "--thumbnail-interval", "0", "--ladder", "off"]
    node = KitchServer(data_dir=data, log_path=tmp / f"{name}.log", extra_args=args)
    return node.start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("fanout")
    with redis_server() as redis:
        a = start_node(tmp, tmp / "data", "a", redis)  # A creates the database first
        b = start_node(tmp, tmp / "data", "b", redis)
        try:
            yield Cluster(redis, a, b)
        finally:
            for node in (a, b):
                if node.proc is not None and node.proc.poll() is None:
                    node.stop()


async def messages(chat: Chat, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    found = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        found.append(await chat.expect("message", timeout=max(0.01, deadline - time.monotonic())))
    return found


async def no_message(chat: Chat, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        frame = await chat.expect("message", timeout=seconds)
        pytest.fail(f"unexpected message {frame}")


async def test_messages_reach_both_nodes_in_the_same_order(cluster: Cluster) -> None:
    owner, viewer = cluster.account("own"), cluster.account("view")
    room = owner.username
    on_a = await Chat.open(cluster.a, room, owner.access_token)
    on_b = await Chat.open(cluster.b, room, viewer.access_token)
    reader_a, reader_b = await Chat.open(cluster.a, room), await Chat.open(cluster.b, room)

    async def talk(chat: Chat, who: str) -> None:
        for i in range(8):
            await chat.say(f"{who} {i}")
            await asyncio.sleep(0.003 * (i % 3))

    await asyncio.gather(talk(on_a, "a"), talk(on_b, "b"))
    seen = [await messages(c, 16) for c in (reader_a, reader_b, on_a, on_b)]
    order = [(m["id"], m["text"]) for m in seen[0]]
    assert sorted(t for _, t in order) == sorted(
        [f"a {i}" for i in range(8)] + [f"b {i}" for i in range(8)]
    )
    for other in seen[1:]:
        assert [(m["id"], m["text"]) for m in other] == order
    assert len({i for i, _ in order}) == 16  # ids unique across the nodes
    for who in "ab":  # each sender's own messages in the order sent, ids increasing
        mine = [(i, t) for i, t in order if t.startswith(who)]
        assert [t for _, t in mine] == [f"{who} {i}" for i in range(8)]
        assert [i for i, _ in mine] == sorted(i for i, _ in mine)
    # what one node said is the history the other gives a newcomer
    late = await Chat.open(cluster.b, room)
    assert [m["id"] for m in late.welcome["history"]][-16:] == [i for i, _ in order]
    for chat in (on_a, on_b, reader_a, reader_b, late):
        await chat.close()


async def test_moderation_on_one_node_applies_on_the_other(cluster: Cluster) -> None:
    owner, viewer = cluster.account("own"), cluster.account("bad")
    room = owner.username
    mod_a = await Chat.open(cluster.a, room, owner.access_token)
    user_b = await Chat.open(cluster.b, room, viewer.access_token)
    reader_b = await Chat.open(cluster.b, room)
    await user_b.say("before")
    first = (await messages(reader_b, 1))[0]
    # a deletion, a mode change and a timeout on A reach B's sockets and B's room
    await mod_a.send({"type": "delete", "id": first["id"]})
    assert (await reader_b.expect("deleted"))["id"] == first["id"]
    await mod_a.send({"type": "mode", "slow": 5, "followers_only": None})
    assert (await reader_b.expect("mode"))["slow"] == 5
    late = await Chat.open(cluster.b, room)
    assert late.welcome["room"]["slow"] == 5
    assert first["id"] not in [m["id"] for m in late.welcome["history"]]
    await mod_a.send({"type": "timeout", "user": viewer.username, "seconds": 60, "reason": "x"})
    assert (await reader_b.expect("timeout"))["user"] == viewer.username
    await user_b.say("during the timeout", nonce="t")
    refused = await user_b.expect("error")
    assert refused["code"] == "timed_out" and refused["nonce"] == "t"
    # a ban on A: B's sockets of that user are told and closed, and B refuses them
    await mod_a.send({"type": "ban", "user": viewer.username, "reason": "spam"})
    assert (await reader_b.expect("ban"))["user"] == viewer.username
    assert (await user_b.expect("ban"))["reason"] == "spam"
    await asyncio.wait_for(user_b.ws.wait_closed(), 5)
    again = await Chat.open(cluster.b, room, viewer.access_token)
    await again.say("let me back", nonce="z")
    assert (await again.expect("error"))["code"] == "banned"
    # a clear on A empties the history B gives
    await mod_a.send({"type": "clear"})
    await reader_b.expect("cleared")
    newcomer = await Chat.open(cluster.b, room)
    assert newcomer.welcome["history"] == []
    for chat in (mod_a, user_b, reader_b, late, again, newcomer):
        await chat.close()


async def test_viewer_counts_and_presence_add_up_across_nodes(cluster: Cluster) -> None:
    owner, viewer = cluster.account("own"), cluster.account("pres")
    room = owner.username
    chats = [
        await Chat.open(node, room, additional_headers={"User-Agent": f"viewer-{i}"})
        for i, node in enumerate([cluster.a, cluster.a, cluster.b, cluster.b, cluster.b])
    ]
    signed_in = await Chat.open(
        cluster.b, room, viewer.access_token, additional_headers={"User-Agent": "signed-in"}
    )

    async def presence_until(chat: Chat, **want: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while True:
            frame = await chat.expect("presence", timeout=max(0.01, deadline - time.monotonic()))
            if all(frame[k] == v for k, v in want.items()):
                return frame

    # 2 on A + 4 on B (one signed in), whichever node is asked
    everyone = {"viewers": 6, "anonymous": 5, "chatters": 1, "users": [viewer.username]}
    await presence_until(chats[0], **everyone)
    await presence_until(chats[2], **everyone)
    # B's viewers leave: A's count falls back to its own within a few seconds
    for chat in [*chats[2:], signed_in]:
        await chat.close()
    await presence_until(chats[0], viewers=2, anonymous=2, chatters=0, users=[])
    for chat in chats[:2]:
        await chat.close()


async def events_socket(node: KitchServer, token: str) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{node.http_port}/ws/events")
    await ws.send(msgpack.packb({"type": "auth", "token": token}))
    while True:
        frame = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5), raw=False)
        if frame["type"] == "hello" and frame["user"] is not None:
            return ws


async def test_channel_changes_reach_the_events_sockets_of_every_node(cluster: Cluster) -> None:
    owner, fan = cluster.account("own"), cluster.account("fan")
    status, _ = cluster.a.request(
        "PUT", f"/api/v1/channels/{owner.username}/follow", token=fan.access_token
    )
    assert status in (200, 201, 204)
    on_b = await events_socket(cluster.b, fan.access_token)
    status, body = cluster.a.request(
        "PATCH", f"/api/v1/channels/{owner.username}", {"title": "moved"}, owner.access_token
    )
    assert status == 200, body
    while True:
        frame = msgpack.unpackb(await asyncio.wait_for(on_b.recv(), 5), raw=False)
        if frame["type"] == "channel":
            break
    assert frame["name"] == owner.username and frame["title"] == "moved"
    await on_b.close()


async def test_a_redis_outage_loses_no_stored_message(cluster: Cluster) -> None:
    owner, viewer = cluster.account("own"), cluster.account("view")
    room = owner.username
    talker_a = await Chat.open(cluster.a, room, owner.access_token)
    talker_b = await Chat.open(cluster.b, room, viewer.access_token)
    reader_a, reader_b = await Chat.open(cluster.a, room), await Chat.open(cluster.b, room)
    await talker_a.say("before")
    assert [m["text"] for m in await messages(reader_b, 1)] == ["before"]
    assert [m["text"] for m in await messages(reader_a, 1)] == ["before"]

    cluster.redis.stop(signal.SIGKILL)
    await asyncio.sleep(0.5)
    sent_a = [f"a during {i}" for i in range(5)]
    sent_b = [f"b during {i}" for i in range(3)]
    for text in sent_a:
        await talker_a.say(text)
    for text in sent_b:
        await talker_b.say(text)
    # local chat goes on: each node's own readers get their node's messages at once
    assert [m["text"] for m in await messages(reader_a, 5)] == sent_a
    assert [m["text"] for m in await messages(reader_b, 3)] == sent_b
    await asyncio.sleep(1.5)  # both nodes store theirs and keep retrying Redis

    cluster.redis.start()
    # each node gets the other's messages back from the database, in id order, once
    got_b = await messages(reader_b, 5, timeout=20)
    got_a = await messages(reader_a, 3, timeout=20)
    assert [m["text"] for m in got_b] == sent_a
    assert [m["text"] for m in got_a] == sent_b
    for got in (got_a, got_b):
        assert [m["id"] for m in got] == sorted(m["id"] for m in got)
    # and the fan-out works again, without repeats of anything
    await talker_b.say("after")
    assert [m["text"] for m in await messages(reader_a, 1, timeout=10)] == ["after"]
    assert [m["text"] for m in await messages(reader_b, 1, timeout=10)] == ["after"]
    await no_message(reader_a, 1.5)
    await no_message(reader_b, 0.1)
    assert "lost Redis" in cluster.a.log() and "subscribed to Redis" in cluster.b.log()
    for node, resynced in ((cluster.a, 3), (cluster.b, 5)):
        metrics = node.get("/metrics").decode()
        assert "kitch_fanout_connected 1.0" in metrics, metrics
        found = re.search(r"^kitch_chat_resynced_total (\S+)", metrics, re.M)
        assert found and float(found.group(1)) >= resynced, metrics
        found = re.search(r"^kitch_fanout_losses_total (\S+)", metrics, re.M)
        assert found and float(found.group(1)) >= 1, metrics
    for chat in (talker_a, talker_b, reader_a, reader_b):
        await chat.close()


async def test_a_sign_out_on_one_node_closes_the_sockets_on_the_other(cluster: Cluster) -> None:
    user = cluster.account("out")
    chat_b = await Chat.open(cluster.b, user.username, user.access_token)
    events_b = await events_socket(cluster.b, user.access_token)
    t0 = time.monotonic()
    status, _ = cluster.a.request("POST", "/api/v1/auth/logout", token=user.access_token)
    assert status == 204
    assert (await chat_b.expect("error", timeout=2.0))["code"] == "signed_out"
    await asyncio.wait_for(chat_b.ws.wait_closed(), 2.0)
    await asyncio.wait_for(events_b.wait_closed(), 2.0)
    assert events_b.close_code == 4001
    assert time.monotonic() - t0 < 2.0  # at once, not at the periodic session checks


async def test_a_node_started_without_redis_chats_alone_then_joins(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)  # not started yet: its port refuses connections
    alone = start_node(tmp_path, tmp_path / "data", "alone", redis)
    try:
        owner = alone.create_account(fresh("own"))
        talker = await Chat.open(alone, owner.username, owner.access_token)
        reader = await Chat.open(alone, owner.username)
        await talker.say("nobody else here")
        assert [m["text"] for m in await messages(reader, 1)] == ["nobody else here"]
        assert "unreachable" in alone.log()
        redis.start()
        other = start_node(tmp_path, tmp_path / "data", "other", redis)
        try:
            alone.wait_for(lambda: "subscribed to Redis" in alone.log(), 15, "the subscription")
            on_other = await Chat.open(other, owner.username, owner.access_token)
            await on_other.say("from the other node")
            got = await messages(reader, 1, timeout=10)
            assert [m["text"] for m in got] == ["from the other node"]
            await no_message(reader, 2.0)  # the resync repeats nothing
            for chat in (talker, reader, on_other):
                await chat.close()
        finally:
            other.stop()
    finally:
        alone.stop()
        redis.stop()


async def channel_frame(ws: ClientConnection, name: str, live: bool) -> dict[str, Any]:
    while True:
        frame = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 15), raw=False)
        if frame["type"] == "channel" and frame["name"] == name and frame["live"] is live:
            return frame


async def test_a_go_live_on_one_node_shows_on_the_other_with_summed_viewers(
    cluster: Cluster, av_fixture: Fixture
) -> None:
    streamer, fan = cluster.account("live"), cluster.account("fan")
    name = streamer.username
    status, _ = cluster.b.request("PUT", f"/api/v1/channels/{name}/follow", token=fan.access_token)
    assert status in (200, 201, 204)
    on_b = await events_socket(cluster.b, fan.access_token)
    # chat watchers: one on A, two on B (distinct clients)
    chats = [
        await Chat.open(node, name, additional_headers={"User-Agent": f"watcher-{i}"})
        for i, node in enumerate([cluster.a, cluster.b, cluster.b])
    ]
    with ffmpeg_cli_publish(cluster.a.rtmp_url(streamer.stream_key), av_fixture, loops=-1) as proc:
        try:
            await channel_frame(on_b, name, True)  # the go-live, published by A's ingest
            note = None
            while note is None:
                frame = msgpack.unpackb(await asyncio.wait_for(on_b.recv(), 10), raw=False)
                if frame["type"] == "notification" and frame["channel"] == name:
                    note = frame
            assert note["kind"] == "live"

            def viewers_everywhere() -> bool:
                return all(
                    node.channel(name).get("viewers") == 3 for node in (cluster.a, cluster.b)
                )

            cluster.a.wait_for(viewers_everywhere, 20, "3 viewers on both nodes")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    await channel_frame(on_b, name, False)  # the broadcast ended on A: offline on B too
    await on_b.close()
    for chat in chats:
        await chat.close()


async def test_a_room_loaded_just_after_a_message_still_gets_it(cluster: Cluster) -> None:
    owner = cluster.account("own")
    talker = await Chat.open(cluster.a, owner.username, owner.access_token)
    await talker.say("just before")
    await talker.expect("message")
    # B loads the room now: the message is not stored yet (A writes every 0.5 s)
    reader = await Chat.open(cluster.b, owner.username)
    texts = [m["text"] for m in reader.welcome["history"]]
    if "just before" not in texts:
        texts += [m["text"] for m in await messages(reader, 1, timeout=5)]
    assert texts == ["just before"]
    await no_message(reader, 2.0)  # once
    for chat in (talker, reader):
        await chat.close()
