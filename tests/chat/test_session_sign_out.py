"""Signing out ONE session closes that session's chat and events sockets at once, and leaves the
sockets of the user's other sessions open (real `kitch serve`, real WebSockets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.chat.test_chat_server import Chat, account
from tests.support.server import KitchServer, serving


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitchServer]:
    # a refresh token presented again 0.2 s after its use is a reuse (the session is revoked)
    with serving(tmp_path_factory.mktemp("signout"), KITCH_REFRESH_REUSE_GRACE="0.2") as server:
        yield server


async def events_socket(srv: KitchServer, token: str) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{srv.http_port}/ws/events")
    assert msgpack.unpackb(await ws.recv()) == {"type": "hello", "user": None}
    await ws.send(msgpack.packb({"type": "auth", "token": token}))
    hello = msgpack.unpackb(await ws.recv())
    assert hello["type"] == "hello" and hello["user"], hello
    return ws


async def closed_within(ws: ClientConnection, seconds: float) -> int | None:
    """The close code once the server closed ``ws`` (frames before it read and dropped); None
    when it is still open after ``seconds``."""
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.wait_for(ws.recv(), left)
    except ConnectionClosed:
        assert ws.close_code is not None
        return ws.close_code
    except TimeoutError:
        pass
    return None


async def still_signed_in(chat: Chat, events: ClientConnection, text: str) -> None:
    """The chat socket still posts as its user; the events socket still answers."""
    await chat.say(text)
    assert (await chat.expect("message", text=text))["user"]["role"] == "broadcaster"
    await events.send(msgpack.packb({"type": "ping"}))
    while (frame := msgpack.unpackb(await asyncio.wait_for(events.recv(), 5)))["type"] != "pong":
        assert frame["type"] != "error", frame


@pytest.mark.parametrize("how", ["access token", "refresh token", "refresh token reuse"])
async def test_signing_out_one_session_closes_only_its_sockets(srv: KitchServer, how: str) -> None:
    user = account(srv, "two")
    other = srv.login(user.username, user.password)  # a second session (another device)
    channel = user.username
    chat_here = await Chat.open(srv, channel, user.access_token)
    chat_there = await Chat.open(srv, channel, other["access_token"])
    events_here = await events_socket(srv, user.access_token)
    events_there = await events_socket(srv, other["access_token"])

    t0 = time.monotonic()
    if how == "access token":
        status, _ = srv.request("POST", "/api/v1/auth/logout", token=user.access_token)
        assert status == 204
    elif how == "refresh token":  # a client whose access token expired signs out with this
        body = {"refresh_token": user.refresh_token}
        status, _ = srv.request("POST", "/api/v1/auth/logout", body)
        assert status == 204
    else:  # a used refresh token presented again after the grace: the session is revoked
        status, _ = srv.refresh(user.refresh_token)
        assert status == 200
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        status, answer = srv.refresh(user.refresh_token)
        assert status == 401 and answer["error"]["code"] == "token_reused", answer

    signed_out = await chat_here.expect("error", timeout=1.0)
    assert signed_out["code"] == "signed_out" and signed_out["message"]
    assert await closed_within(chat_here.ws, 1.0) is not None
    assert await closed_within(events_here, 1.0) == 4001
    took = time.monotonic() - t0
    print(f"{how}: both sockets of the session closed after {took:.2f} s")
    assert took < 1.5  # at once, not at the periodic checks (chat 5 s, events 25 s)

    # the other session's sockets stay open and signed in
    assert await closed_within(chat_there.ws, 1.0) is None
    assert await closed_within(events_there, 1.0) is None
    await still_signed_in(chat_there, events_there, f"still here after {how}")
    await chat_there.close()
    await events_there.close()
