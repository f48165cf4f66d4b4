"""``GET /api/v1/channels/{name}/chat/bans`` against a real `kitch serve`: bans and timeouts made
on real chat sockets, listed for the broadcaster and moderators only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chat.test_chat_server import Chat, account
from tests.support.server import KitchServer, serving


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitchServer]:
    with serving(tmp_path_factory.mktemp("bans")) as server:
        yield server


def bans(srv: KitchServer, channel: str, token: str | None, query: str = "") -> tuple[int, Any]:
    return srv.request("GET", f"/api/v1/channels/{channel}/chat/bans{query}", token=token)


async def test_bans_and_timeouts_are_listed_for_moderators_only(srv: KitchServer) -> None:
    owner, mod, viewer = account(srv, "own"), account(srv, "mod"), account(srv, "view")
    spammer, loud, quick = account(srv, "spam"), account(srv, "loud"), account(srv, "quick")
    channel = owner.username
    o = await Chat.open(srv, channel, owner.access_token)
    await o.send({"type": "mod", "user": mod.username})
    await o.expect("mod")
    m = await Chat.open(srv, channel, mod.access_token)

    status, answer = bans(srv, channel, owner.access_token)
    assert (status, answer) == (200, {"bans": [], "more": False})

    t0 = time.time()
    await o.send({"type": "ban", "user": spammer.username, "reason": "spam links"})
    await o.expect("ban", user=spammer.username)
    await m.send({"type": "timeout", "user": loud.username, "seconds": 600, "reason": "calm"})
    await m.expect("timeout", user=loud.username)
    await m.send({"type": "timeout", "user": quick.username, "seconds": 1, "reason": ""})
    await m.expect("timeout", user=quick.username)

    # asked at once after the frames: what is still queued for the database is listed too
    for token in (owner.access_token, mod.access_token):
        status, answer = bans(srv, channel, token)
        assert status == 200, answer
        listed = answer["bans"]
        # newest first
        assert [b["user"] for b in listed] == [quick.username, loud.username, spammer.username]
        assert answer["more"] is False
    # a viewer of the channel does not see them
    status, answer = bans(srv, channel, viewer.access_token)
    assert status == 403 and answer["error"]["code"] == "forbidden", answer
    timeout, ban = listed[1], listed[2]
    assert ban == {
        "user": spammer.username,
        "display_name": spammer.username,
        "until": None,
        "reason": "spam links",
        "by": owner.username,
        "ts": ban["ts"],
    }
    assert t0 - 1 <= ban["ts"] <= time.time() + 1
    assert timeout["by"] == mod.username and timeout["reason"] == "calm"
    assert timeout["until"] == pytest.approx(timeout["ts"] + 600)

    # a timeout that ran out is no longer listed
    await asyncio.sleep(1.2)
    status, answer = bans(srv, channel, owner.access_token)
    assert [b["user"] for b in answer["bans"]] == [loud.username, spammer.username]

    status, answer = bans(srv, channel, owner.access_token, "?limit=1")
    assert status == 200 and [b["user"] for b in answer["bans"]] == [loud.username]
    assert answer["more"] is True

    # an unban on the socket takes the user off the list at once
    await m.send({"type": "unban", "user": spammer.username})
    await m.expect("unban", user=spammer.username)
    status, answer = bans(srv, channel, mod.access_token)
    assert [b["user"] for b in answer["bans"]] == [loud.username]

    # once no longer a moderator, the list is closed to them
    await o.send({"type": "unmod", "user": mod.username})
    await o.expect("unmod")
    status, answer = bans(srv, channel, mod.access_token)
    assert status == 403 and answer["error"]["code"] == "forbidden", answer
    for client in (o, m):
        await client.close()


def test_bans_route_errors(srv: KitchServer) -> None:
    owner, viewer = account(srv, "own"), account(srv, "view")
    status, answer = bans(srv, owner.username, viewer.access_token)
    assert status == 403 and answer["error"]["code"] == "forbidden"
    assert answer["error"]["message"]
    status, answer = bans(srv, owner.username, None)
    assert status == 401 and answer["error"]["code"]
    status, answer = bans(srv, "nosuchchannel", owner.access_token)
    assert status == 404 and answer["error"]["code"] == "not_found"
    for bad in ("0", "501", "x", "-1", "1.5"):
        status, answer = bans(srv, owner.username, owner.access_token, f"?limit={bad}")
        assert status == 422 and answer["error"]["code"] == "validation_error", (bad, answer)
    # a viewer's own channel: they are its broadcaster
    status, answer = bans(srv, viewer.username, viewer.access_token)
    assert (status, answer) == (200, {"bans": [], "more": False})
