"""Channel listing (live first), one channel with live stream stats, owner-only PATCH."""

from __future__ import annotations

import httpx

from kitch.db import Database
from kitch.db.queries import (
    channel_for_stream_key,
    end_broadcast,
    start_broadcast,
    update_broadcast_stats,
)
from tests.api.helpers import Register, assert_error


async def _go_live(client: httpx.AsyncClient, db: Database, auth: dict[str, str]) -> int:
    key = (await client.get("/api/v1/me/stream-key", headers=auth)).json()["stream_key"]
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    return await start_broadcast(db, ref.channel_id, {"encoder": "obs-test"})


async def test_live_channel_shows_stream_and_stats(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    data = await register("vera")
    await client.patch("/api/v1/channels/vera", json={"title": "Speedrun"}, headers=data["auth"])
    offline = (await client.get("/api/v1/channels/vera")).json()
    assert offline["live"] is False and "stream" not in offline

    broadcast = await _go_live(client, db, data["auth"])
    stats = {"video_codec": "h264", "width": 320, "height": 240, "fps": 30.0, "bitrate_kbps": 900}
    await update_broadcast_stats(db, broadcast, stats)
    live = (await client.get("/api/v1/channels/VERA")).json()
    assert live["live"] is True
    assert live["stream"]["title"] == "Speedrun"
    assert live["stream"]["stats"] == stats
    assert live["stream"]["started_at"].endswith("Z")
    assert live["last_live_at"] == live["stream"]["started_at"]

    await end_broadcast(db, broadcast, "publisher_closed")
    after = (await client.get("/api/v1/channels/vera")).json()
    assert after["live"] is False and "stream" not in after
    assert after["last_live_at"] is not None


async def test_list_puts_live_channels_first(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    await register("aaa")
    live_user = await register("zzz")
    await register("mmm")
    await _go_live(client, db, live_user["auth"])
    names = [c["name"] for c in (await client.get("/api/v1/channels")).json()["channels"]]
    assert names == ["zzz", "aaa", "mmm"]
    only_live = (await client.get("/api/v1/channels?live=true")).json()["channels"]
    assert [c["name"] for c in only_live] == ["zzz"]
    page = (await client.get("/api/v1/channels?limit=1&offset=1")).json()["channels"]
    assert [c["name"] for c in page] == ["aaa"]
    assert_error(await client.get("/api/v1/channels?limit=-1"), 422)
    assert_error(await client.get("/api/v1/channels?limit=1000"), 422)
    # str.isdigit() accepts these but int() refuses them: each was a 500.
    for bad in ("\u00b2", "\u0663", "9" * 5000, "1" + "0" * 30):
        assert_error(await client.get("/api/v1/channels", params={"offset": bad}), 422)


async def test_patch_channel_owner_only(client: httpx.AsyncClient, register: Register) -> None:
    owner = await register("wendy")
    other = await register("xavier")
    changes = {
        "title": "Hello",
        "description": "d",
        "category": "retro games",
        "tags": ["rpg", "RPG", "chill"],
    }
    response = await client.patch("/api/v1/channels/wendy", json=changes, headers=owner["auth"])
    assert response.status_code == 200
    assert response.json()["tags"] == ["rpg", "chill"]
    assert response.json()["category"] == "Retro Games"
    assert response.json()["category_slug"] == "retro-games"
    forbidden = await client.patch(
        "/api/v1/channels/wendy", json={"title": "pwned"}, headers=other["auth"]
    )
    assert_error(forbidden, 403)
    assert_error(await client.patch("/api/v1/channels/wendy", json={"title": "x"}), 401)
    assert_error(
        await client.patch("/api/v1/channels/nobody", json={"title": "x"}, headers=owner["auth"]),
        404,
    )
    for bad in ({"tags": "rpg"}, {"tags": [1]}, {"tags": ["x"] * 11}, {"title": "t" * 141}):
        response = await client.patch("/api/v1/channels/wendy", json=bad, headers=owner["auth"])
        assert_error(response, 422)
    assert (await client.get("/api/v1/channels/wendy")).json()["title"] == "Hello"


async def test_unknown_channel_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/channels/nobody"), 404, "not_found")
    assert_error(await client.get("/api/v1/channels/'%20OR%201=1--"), 404)
