"""The chat over real WebSockets against a real `kitch serve` (loopback)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.server import Account, KitchServer, serving

_names = itertools.count()


def fresh(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 1000}x{next(_names)}"


def frames(data: str | bytes) -> list[dict[str, Any]]:
    """The msgpack maps of one WebSocket message (a message carries one or more)."""
    assert isinstance(data, bytes), data
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    found = list(unpacker)
    assert found and all(isinstance(f, dict) and isinstance(f.get("type"), str) for f in found)
    return found


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitchServer]:
    with serving(tmp_path_factory.mktemp("chat")) as server:
        yield server


class Chat:
    """A chat client: msgpack frames, presence frames skipped unless asked for."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waiting: list[dict[str, Any]] = []  # frames of a message not returned yet
        self.messages = 0  # WebSocket messages received

    @classmethod
    async def open(
        cls, srv: KitchServer, channel: str, token: str | None = None, **kwargs: Any
    ) -> Chat:
        ws = await connect(f"ws://127.0.0.1:{srv.http_port}/ws/chat/{channel}", **kwargs)
        chat = cls(ws)
        welcome = await chat.recv()
        assert welcome["type"] == "welcome", welcome
        chat.welcome = welcome
        if token is not None:
            await chat.send({"type": "auth", "token": token})
            chat.welcome = await chat.expect("welcome")
        return chat

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(msgpack.packb(frame))

    async def recv(self, timeout: float = 5.0, presence: bool = False) -> dict[str, Any]:
        while True:
            if not self.waiting:
                self.waiting = frames(await asyncio.wait_for(self.ws.recv(), timeout))
                self.messages += 1
            frame = self.waiting.pop(0)
            if presence or frame["type"] != "presence":
                return frame

    async def expect(self, kind: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next frame of type ``kind`` (and fields ``match``), skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(
                max(0.01, deadline - time.monotonic()), presence=kind == "presence"
            )
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def say(self, text: str, nonce: str = "n") -> None:
        await self.send({"type": "say", "text": text, "nonce": nonce})

    async def close(self) -> None:
        await self.ws.close()


def account(srv: KitchServer, prefix: str = "u") -> Account:
    return srv.create_account(fresh(prefix))


async def test_two_users_chat_and_a_reader(srv: KitchServer) -> None:
    owner, viewer = account(srv, "own"), account(srv, "view")
    a = await Chat.open(srv, owner.username, owner.access_token)
    b = await Chat.open(srv, owner.username, viewer.access_token)
    reader = await Chat.open(srv, owner.username)
    assert a.welcome["you"]["role"] == "broadcaster"
    assert b.welcome["you"]["role"] == "viewer" and b.welcome["you"]["user"] == viewer.username
    assert reader.welcome["you"] == {"user": None, "role": "anonymous", "color": None}
    assert a.welcome["room"] == {"channel": owner.username, "slow": 0, "followers_only": None}
    await b.say("hello \u202eworld\x00")
    for client in (a, b, reader):
        frame = await client.expect("message")
        assert frame["text"] == "hello world"
        assert frame["user"]["name"] == viewer.username and frame["user"]["role"] == "viewer"
    await a.say("hi back")
    assert (await b.expect("message"))["user"]["role"] == "broadcaster"
    await reader.say("let me in", nonce="r1")
    refused = await reader.expect("error")
    assert refused["code"] == "auth_required" and refused["nonce"] == "r1"
    await a.send({"type": "ping"})
    await a.expect("pong")
    presence = await reader.expect("presence", timeout=8)
    # three sockets, one client (address + User-Agent): one viewer
    assert presence["chatters"] == 2 and presence["anonymous"] == 1 and presence["viewers"] == 1
    assert sorted(presence["users"]) == sorted([owner.username, viewer.username])
    for client in (a, b, reader):
        await client.close()


async def test_a_busy_room_sends_its_broadcasts_together_in_order(srv: KitchServer) -> None:
    owner = account(srv, "batch")
    a = await Chat.open(srv, owner.username, owner.access_token, compression=None)
    reader = await Chat.open(srv, owner.username, compression=None)
    await a.say("first")  # the room was quiet: at once
    assert (await reader.expect("message"))["text"] == "first"
    before = reader.messages
    texts = [f"burst {i}" for i in range(10)]
    for text in texts:  # back to back: within one batch window or two
        await a.say(text)
    assert [(await reader.expect("message"))["text"] for _ in texts] == texts
    assert reader.messages - before <= 4, reader.messages - before  # several maps per message
    await a.close()
    await reader.close()


async def test_a_frame_for_one_socket_follows_the_broadcasts_made_before_it(
    srv: KitchServer,
) -> None:
    owner = account(srv, "order")
    a = await Chat.open(srv, owner.username, owner.access_token)
    for i in range(5):  # each pong is answered while the message before it waits for its batch
        await a.say(f"m{i}")
        await a.send({"type": "ping"})
    got = []
    for _ in range(10):
        frame = await a.recv()
        got.append(frame.get("text", frame["type"]))
    assert got == ["m0", "pong", "m1", "pong", "m2", "pong", "m3", "pong", "m4", "pong"]
    await a.close()


async def test_refusals_and_errors(srv: KitchServer) -> None:
    owner = account(srv, "ref")
    a = await Chat.open(srv, owner.username, owner.access_token)
    await a.say("x" * 501, nonce="long")
    assert (await a.expect("error"))["code"] == "too_long"
    await a.say(" \x07 ", nonce="e")
    assert (await a.expect("error"))["code"] == "empty"
    await a.send({"type": "nonsense"})
    assert (await a.expect("error"))["code"] == "unknown_type"
    await a.ws.send(b"\xc1not msgpack")
    assert (await a.expect("error"))["code"] == "bad_frame"
    await a.send({"type": "auth", "token": "not.a.jwt"})
    assert (await a.expect("error"))["code"] == "invalid_token"
    await a.close()


async def test_unknown_channel_answers_an_error_frame(srv: KitchServer) -> None:
    ws = await connect(f"ws://127.0.0.1:{srv.http_port}/ws/chat/nobody-here")
    (frame,) = frames(await ws.recv())
    assert frame["type"] == "error" and frame["code"] == "no_such_channel"
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert ws.close_code == 4404


async def test_oversize_frame_is_refused(srv: KitchServer) -> None:
    owner = account(srv, "big")
    a = await Chat.open(srv, owner.username, owner.access_token)
    await a.send({"type": "say", "text": "y" * 5000})
    assert (await a.expect("error"))["code"] == "frame_too_large"
    with pytest.raises(ConnectionClosed):
        await a.recv()


async def test_origin_is_checked(srv: KitchServer) -> None:
    owner = account(srv, "ori")
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"ws://127.0.0.1:{srv.http_port}/ws/chat/{owner.username}",
            origin="http://evil.example",  # type: ignore[arg-type]
        )
    assert refused.value.response.status_code == 403
    ok = await Chat.open(srv, owner.username, origin=f"http://127.0.0.1:{srv.http_port}")
    await ok.close()


async def test_history_rest_and_reconnect_since(srv: KitchServer) -> None:
    owner = account(srv, "his")
    a = await Chat.open(srv, owner.username, owner.access_token)
    ids = []
    for i in range(5):
        await a.say(f"message {i}")
        ids.append((await a.expect("message"))["id"])
    assert ids == sorted(ids)
    page = srv.get(f"/api/v1/channels/{owner.username}/chat?limit=2")
    assert [m["text"] for m in page["messages"]] == ["message 3", "message 4"]
    older = srv.get(f"/api/v1/channels/{owner.username}/chat?before={ids[3]}&limit=10")
    assert [m["text"] for m in older["messages"]] == ["message 0", "message 1", "message 2"]
    status, body = srv.request("GET", f"/api/v1/channels/{owner.username}/chat?limit=zero")
    assert status == 422 and body["error"]["code"] == "validation_error"
    assert srv.request("GET", "/api/v1/channels/nobody-here/chat")[0] == 404
    # A client that saw ids[1] reconnects: it gets exactly what followed.
    b = await Chat.open(srv, owner.username)
    await b.send({"type": "auth", "token": owner.access_token, "since": ids[1]})
    welcome = await b.expect("welcome")
    assert [m["id"] for m in welcome["history"]] == ids[2:]
    assert welcome["since"] == ids[1]
    anon = Chat(
        await connect(f"ws://127.0.0.1:{srv.http_port}/ws/chat/{owner.username}?since={ids[3]}")
    )
    welcome = await anon.expect("welcome")
    assert [m["id"] for m in welcome["history"]] == ids[4:]
    for client in (a, b, anon):
        await client.close()


async def test_rate_limit(srv: KitchServer) -> None:
    owner, viewer = account(srv, "rl"), account(srv, "rlv")
    b = await Chat.open(srv, owner.username, viewer.access_token)
    for i in range(20):
        await b.say(f"spam {i}", nonce=str(i))
        await b.expect("message")
    await b.say("one too many", nonce="late")
    refused = await b.expect("error")
    assert refused["code"] == "rate_limited" and refused["nonce"] == "late"
    assert 20 < refused["retry_after"] <= 30
    await b.say("spam 0", nonce="dup")  # also a duplicate, but the limit answers first
    assert (await b.expect("error"))["code"] == "rate_limited"
    await b.close()


async def test_duplicates_and_blocked_terms(srv: KitchServer) -> None:
    owner, viewer = account(srv, "dup"), account(srv, "dupv")
    a = await Chat.open(srv, owner.username, owner.access_token)
    b = await Chat.open(srv, owner.username, viewer.access_token)
    await b.say("same again")
    await b.expect("message")
    await b.say("Same Again")
    assert (await b.expect("error"))["code"] == "duplicate"
    await b.send({"type": "blocked_terms", "terms": ["nope"]})
    assert (await b.expect("error"))["code"] == "forbidden"
    await a.send({"type": "blocked_terms", "terms": ["Spoiler"]})
    assert (await a.expect("blocked_terms"))["terms"] == ["spoiler"]
    await b.say("big SPOILER here")
    assert (await b.expect("error"))["code"] == "blocked_term"
    for client in (a, b):
        await client.close()


async def test_moderation(srv: KitchServer) -> None:
    owner, mod, viewer = account(srv, "mo"), account(srv, "mom"), account(srv, "mov")
    a = await Chat.open(srv, owner.username, owner.access_token)
    m = await Chat.open(srv, owner.username, mod.access_token)
    v = await Chat.open(srv, owner.username, viewer.access_token)
    # Only the broadcaster appoints moderators.
    await m.send({"type": "mod", "user": mod.username})
    assert (await m.expect("error"))["code"] == "forbidden"
    await a.send({"type": "mod", "user": mod.username})
    await v.expect("mod", user=mod.username)
    assert (await m.expect("role"))["role"] == "moderator"
    # A moderator cannot act against the broadcaster.
    await m.send({"type": "ban", "user": owner.username, "reason": "x"})
    assert (await m.expect("error"))["code"] == "forbidden"
    # Delete.
    await v.say("delete me")
    message_id = (await a.expect("message"))["id"]
    await m.send({"type": "delete", "id": message_id})
    for client in (a, m, v):
        await client.expect("deleted", id=message_id)
    history = srv.get(f"/api/v1/channels/{owner.username}/chat")["messages"]
    assert message_id not in [h["id"] for h in history]
    # Timeout: everyone is told, the user cannot post, and sees how long to wait.
    await m.send({"type": "timeout", "user": viewer.username, "seconds": 600, "reason": "calm"})
    frame = await v.expect("timeout")
    assert frame["user"] == viewer.username and frame["reason"] == "calm"
    assert frame["until"] == pytest.approx(time.time() + 600, abs=5) and frame["seconds"] == 600
    await a.expect("timeout", user=viewer.username)
    await v.say("can I?", nonce="t")
    refused = await v.expect("error")
    assert refused["code"] == "timed_out" and 590 < refused["retry_after"] <= 600
    await m.send({"type": "unban", "user": viewer.username})
    await v.expect("unban", user=viewer.username)
    await v.say("back")
    await a.expect("message", text="back")
    # Ban: the user's socket is told and closed; a new socket cannot post.
    await m.send({"type": "ban", "user": viewer.username, "reason": "rude"})
    await a.expect("ban", user=viewer.username)
    assert (await v.expect("ban"))["reason"] == "rude"
    with pytest.raises(ConnectionClosed):
        await v.expect("message", timeout=3)
    v2 = await Chat.open(srv, owner.username, viewer.access_token)
    await v2.say("again")
    assert (await v2.expect("error"))["code"] == "banned"
    # Clear.
    await m.send({"type": "clear"})
    await a.expect("cleared")
    assert srv.get(f"/api/v1/channels/{owner.username}/chat")["messages"] == []
    # Unmod: the former moderator cannot moderate any more.
    await a.send({"type": "unmod", "user": mod.username})
    await m.expect("role", role="viewer")
    await m.send({"type": "clear"})
    assert (await m.expect("error"))["code"] == "forbidden"
    # The audit log: the broadcaster reads it, a viewer does not.
    audit = srv.get(f"/api/v1/channels/{owner.username}/chat/audit", token=owner.access_token)
    actions = [e["action"] for e in audit["entries"]]
    assert actions == ["unmod", "clear", "ban", "unban", "timeout", "delete", "mod"]
    assert audit["entries"][2]["target"] == viewer.username
    assert audit["entries"][2]["actor"] == mod.username
    status, _ = srv.request(
        "GET", f"/api/v1/channels/{owner.username}/chat/audit", token=viewer.access_token
    )
    assert status == 403
    assert srv.request("GET", f"/api/v1/channels/{owner.username}/chat/audit")[0] == 401
    for client in (a, m, v2):
        await client.close()


async def test_room_modes(srv: KitchServer) -> None:
    owner, viewer = account(srv, "mode"), account(srv, "modev")
    a = await Chat.open(srv, owner.username, owner.access_token)
    v = await Chat.open(srv, owner.username, viewer.access_token)
    await v.send({"type": "mode", "slow": 10, "followers_only": None})
    assert (await v.expect("error"))["code"] == "forbidden"
    await a.send({"type": "mode", "slow": 200, "followers_only": None})
    assert (await a.expect("error"))["code"] == "bad_frame"
    await a.send({"type": "mode", "slow": 10, "followers_only": None})
    assert await v.expect("mode") == {"type": "mode", "slow": 10, "followers_only": None}
    await v.say("first")
    await v.expect("message")
    await v.say("second", nonce="s")
    refused = await v.expect("error")
    assert refused["code"] == "slow_mode" and 8 < refused["retry_after"] <= 10
    await a.say("the broadcaster bypasses")
    await a.say("the broadcaster bypasses again")
    await a.expect("message", text="the broadcaster bypasses again")
    await a.send({"type": "mode", "slow": 0, "followers_only": 60})
    await v.expect("mode", followers_only=60)
    await v.say("not a follower")
    assert (await v.expect("error"))["code"] == "followers_only"
    await a.say("still fine")
    await a.expect("message", text="still fine")
    late = await Chat.open(srv, owner.username)
    assert late.welcome["room"] == {"channel": owner.username, "slow": 0, "followers_only": 60}
    for client in (a, v, late):
        await client.close()


def _raw_upgrade(
    srv: KitchServer, path: str, host: str | None = None
) -> tuple[socket.socket, bytes]:
    """A WebSocket handshake on a plain socket (small receive buffer): the socket and the
    answer's first bytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.http_port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{srv.http_port}'}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock, sock.recv(1024)


def _raw_non_reader(srv: KitchServer, channel: str) -> socket.socket:
    """A WebSocket client that completes the handshake and never reads again."""
    sock, answer = _raw_upgrade(srv, f"/ws/chat/{channel}")
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def test_the_host_is_checked_before_the_chat_answers(srv: KitchServer) -> None:
    owner = account(srv, "hostc")
    sock, answer = _raw_upgrade(srv, f"/ws/chat/{owner.username}", host="evil.example")
    sock.close()
    assert answer.startswith(b"HTTP/1.1 403"), answer
    for path in (f"/ws/chat/{owner.username}/more", "/ws/chat/"):  # not a chat socket
        sock, answer = _raw_upgrade(srv, path)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 403"), (path, answer)
    sock, answer = _raw_upgrade(srv, f"/ws/chat/{owner.username}")
    sock.close()
    assert answer.startswith(b"HTTP/1.1 101"), answer


def _dropped(srv: KitchServer) -> float:
    text = srv.get("/metrics").decode()
    for line in text.splitlines():
        if line.startswith("kitch_chat_dropped_total "):
            return float(line.split()[1])
    return 0.0


#: At most this many senders of 100 messages of 2 kB each: 10 MB, more than the kernel's send
#: buffer takes in (it grows to 4 MB on a default Linux loopback) plus the socket's queue.
SENDERS = 50


async def test_a_client_that_never_reads_is_dropped_and_delays_nobody(srv: KitchServer) -> None:
    owner = account(srv, "slow")
    a = await Chat.open(srv, owner.username, owner.access_token, compression=None)
    reader = await Chat.open(srv, owner.username, compression=None)
    stuck = _raw_non_reader(srv, owner.username)
    before = _dropped(srv)
    errors: list[dict[str, Any]] = []

    async def drain(sender: Chat) -> None:  # a sender reads what it is sent too
        with contextlib.suppress(ConnectionClosed):
            while True:
                for frame in frames(await sender.ws.recv()):
                    if frame["type"] == "error":
                        errors.append(frame)

    latencies: list[float] = []
    drainers = [asyncio.create_task(drain(a))]
    try:
        for n in range(SENDERS):
            if n == 0:
                sender = a
            else:  # one moderator after another (the connections per address are capped)
                mod = account(srv, "slowm")
                await a.send({"type": "mod", "user": mod.username})
                await reader.expect("mod", user=mod.username)
                sender = await Chat.open(srv, owner.username, mod.access_token, compression=None)
                drainers.append(asyncio.create_task(drain(sender)))
            for burst in range(0, 100, 10):  # a burst goes out in one or two batches
                sent = {}
                for i in range(burst, burst + 10):
                    # 500 characters of 4 bytes, different each time (no duplicate guard)
                    text = chr(0x1F600 + n) * 498 + chr(0x1F300 + i) + "x"
                    sent[text] = time.time()
                    await sender.say(text)
                for text, at in sent.items():
                    frame = await reader.expect("message", timeout=2)
                    assert frame["text"] == text
                    latencies.append(time.time() - at)
            if sender is not a:
                await sender.close()
            if _dropped(srv) >= before + 1:
                break
        assert _dropped(srv) >= before + 1
        presence = await reader.expect("presence", timeout=8)
        assert presence["anonymous"] == 1  # the reader alone: the stuck client is gone
    finally:
        stuck.close()
        for task in drainers:
            task.cancel()
    assert errors == []
    assert len(latencies) % 100 == 0 and latencies  # every message reached the reader
    assert max(latencies) < 1.0, max(latencies)
    await a.close()
    await reader.close()


@pytest.mark.parametrize("how", ["sign-out everywhere", "password change"])
async def test_signing_out_everywhere_closes_the_socket_at_once(srv: KitchServer, how: str) -> None:
    user = account(srv, "pw")
    v = await Chat.open(srv, user.username, user.access_token)
    t0 = time.monotonic()
    if how == "password change":
        body = {"current_password": user.password, "new_password": "another long one 2"}
        status, _ = srv.request("POST", "/api/v1/me/password", body, token=user.access_token)
        assert status == 200
    else:
        status, _ = srv.request(
            "POST", "/api/v1/auth/logout", {"everywhere": True}, token=user.access_token
        )
        assert status == 204
    frame = await v.expect("error", timeout=8)
    took = time.monotonic() - t0
    print(f"{how}: socket told after {took:.2f} s")
    assert frame["code"] == "signed_out"
    assert took < 2.0  # at once, not at the next periodic session check (5 s)
    with pytest.raises(ConnectionClosed):
        await v.recv(timeout=3)


def _chat_texts(srv: KitchServer, channel: str) -> list[str]:
    return [m["text"] for m in srv.get(f"/api/v1/channels/{channel}/chat")["messages"]]


async def test_history_and_moderation_survive_a_restart(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        owner, viewer = server.create_account("keeper"), server.create_account("keepv")
        a = await Chat.open(server, owner.username, owner.access_token)
        for text in ("one", "two", "three"):
            await a.say(text)
            await a.expect("message", text=text)
        await a.send({"type": "mode", "slow": 30, "followers_only": None})
        await a.expect("mode")
        await a.send({"type": "timeout", "user": viewer.username, "seconds": 3600, "reason": ""})
        await a.expect("timeout")
        await a.close()
        server.stop(signal.SIGTERM)  # the last batch is written at shutdown
        server.start()
        assert _chat_texts(server, owner.username) == ["one", "two", "three"]
        tokens = server.login(viewer.username, viewer.password)
        v = await Chat.open(server, owner.username, tokens["access_token"])
        assert [m["text"] for m in v.welcome["history"]] == ["one", "two", "three"]
        assert v.welcome["room"]["slow"] == 30
        await v.say("am I out?")
        assert (await v.expect("error"))["code"] == "timed_out"
        await v.close()


async def test_a_sigkill_loses_at_most_one_batch_interval(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        owner = server.create_account("killer")
        a = await Chat.open(server, owner.username, owner.access_token)
        await a.say("kept")
        await a.expect("message", text="kept")
        await asyncio.sleep(1.0)  # two batch intervals
        server.stop(signal.SIGKILL)
        server.start()
        assert _chat_texts(server, owner.username) == ["kept"]


async def test_reauth_on_the_same_socket(srv: KitchServer) -> None:
    owner, viewer = account(srv, "re"), account(srv, "rev")
    v = await Chat.open(srv, owner.username, viewer.access_token)
    status, fresh_tokens = srv.refresh(viewer.refresh_token)
    assert status == 200
    await v.send({"type": "auth", "token": fresh_tokens["access_token"]})
    welcome = await v.expect("welcome")
    assert welcome["you"]["user"] == viewer.username and welcome["you"]["role"] == "viewer"
    await v.say("still me")
    assert (await v.expect("message"))["user"]["name"] == viewer.username
    await v.close()


async def test_connections_per_address_are_capped(srv: KitchServer) -> None:
    owner = account(srv, "cap")
    url = f"ws://127.0.0.1:{srv.http_port}/ws/chat/{owner.username}"
    open_ = [await connect(url) for _ in range(20)]
    extra = await connect(url)
    (frame,) = frames(await extra.recv())
    assert frame["type"] == "error" and frame["code"] == "too_many_connections"
    with pytest.raises(ConnectionClosed):
        await extra.recv()
    for ws in open_:
        await ws.close()
    deadline = time.monotonic() + 5
    while True:  # a freed place can be used again (once the server has seen the closes)
        again = await connect(url)
        frame = frames(await again.recv())[0]
        await again.close()
        if frame["type"] == "welcome" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert frame["type"] == "welcome"


async def test_an_expired_token_needs_a_new_auth_frame(tmp_path: Path) -> None:
    with serving(tmp_path, KITCH_ACCESS_TOKEN_TTL="4") as server:
        user = server.create_account("expiry")
        v = await Chat.open(server, user.username, user.access_token)
        await asyncio.sleep(4.5)
        await v.say("too late", nonce="old")
        refused = await v.expect("error")
        assert refused["code"] == "token_expired" and refused["nonce"] == "old"
        status, tokens = server.refresh(user.refresh_token)
        assert status == 200
        await v.send({"type": "auth", "token": tokens["access_token"]})
        await v.expect("welcome")
        await v.say("too late")  # the refused text, sent again
        assert (await v.expect("message"))["text"] == "too late"
        await v.close()
