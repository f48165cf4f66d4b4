"""The streamer's analytics over the API (in-process app, real SQLite): what counts inside a
broadcast's span, the live figures from memory, the linked scheduled stream, owner-only access.
(tests/schedule/test_schedule_server.py measures the same with real viewers, chat and follows.)"""

from __future__ import annotations

import time
from typing import Any

import httpx

from kitch.api.events import Events, LiveChannel
from kitch.db import Database
from kitch.db.follows import follow, record_viewers, unfollow
from kitch.db.queries import end_broadcast, get_channel, start_broadcast
from tests.api.helpers import Register, assert_error

API = "/api/v1"


async def _message(db: Database, channel_id: int, at: float, text: str = "hi") -> None:
    await db.execute(
        "INSERT INTO chat_messages (channel_id, user_id, username, text, created_at) "
        "VALUES (?, NULL, 'someone', ?, ?)",
        (channel_id, text, at),
    )


async def test_figures_of_ended_and_live_broadcasts(
    client: httpx.AsyncClient, register: Register, db: Database, app: Any
) -> None:
    alice = await register("alice")
    fans = [await register(f"fan{i}") for i in range(4)]
    channel = await get_channel(db, "alice")
    assert channel is not None
    now = time.time()
    t0 = now - 3600
    first = await start_broadcast(db, channel.id, {}, now=t0)
    await record_viewers(db, first, 7, [(t0 + 5, 2), (t0 + 10, 7), (t0 + 15, 3)])
    await end_broadcast(db, first, "publisher_closed", now=t0 + 600)
    for at in (t0 - 1, t0, t0 + 300, t0 + 599.9, t0 + 600, t0 + 900):
        await _message(db, channel.id, at)
    await follow(db, fans[0]["user"]["id"], channel.id, now=t0 - 10)  # before: not counted
    await follow(db, fans[1]["user"]["id"], channel.id, now=t0 + 100)
    await follow(db, fans[2]["user"]["id"], channel.id, now=t0 + 200)
    await unfollow(db, fans[2]["user"]["id"], channel.id)  # undone: not counted

    second = await start_broadcast(db, channel.id, {}, now=now - 120)
    await _message(db, channel.id, now - 60)
    await follow(db, fans[3]["user"]["id"], channel.id, now=now - 30)
    events: Events = app.state.events
    events.live["alice"] = LiveChannel(
        "alice", second, "", "", viewers=4, peak=5, series=[(now - 20, 5), (now - 15, 4)]
    )
    try:
        answer = await client.get(f"{API}/me/analytics", headers=alice["auth"])
    finally:
        events.live.clear()
    assert answer.status_code == 200, answer.text
    live, ended = answer.json()["broadcasts"]
    assert ended["id"] == first and not ended["live"]
    assert ended["duration_seconds"] == 600.0
    assert (ended["peak_viewers"], ended["average_viewers"], ended["viewer_samples"]) == (7, 4.0, 3)
    assert ended["chat_messages"] == 3  # t0, t0+300, t0+599.9: the span is [start, end)
    assert ended["new_followers"] == 1
    assert ended["schedule"] is None
    assert live["id"] == second and live["live"] and live["ended_at"] is None
    assert 119 <= live["duration_seconds"] <= 140
    assert (live["peak_viewers"], live["average_viewers"]) == (5, 4.5)
    assert (live["chat_messages"], live["new_followers"]) == (1, 1)

    one = (await client.get(f"{API}/me/analytics/{first}", headers=alice["auth"])).json()
    assert one["broadcast"] == ended
    assert one["viewers"] == [
        {"t": round(t0 + 5, 1), "viewers": 2},
        {"t": round(t0 + 10, 1), "viewers": 7},
        {"t": round(t0 + 15, 1), "viewers": 3},
    ]
    assert one["tick_seconds"] == events.tick
    limited = (await client.get(f"{API}/me/analytics?limit=1", headers=alice["auth"])).json()
    assert [b["id"] for b in limited["broadcasts"]] == [second]


async def test_a_broadcast_without_samples_and_a_linked_schedule(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    from datetime import UTC, datetime, timedelta

    from kitch.db.schedule import link_broadcast

    alice = await register("alice")
    start = datetime.now(UTC) + timedelta(hours=1)
    made = await client.post(
        f"{API}/channels/alice/schedule",
        json={"title": "Planned", "starts_at": start.isoformat(), "timezone": "UTC"},
        headers=alice["auth"],
    )
    channel = await get_channel(db, "alice")
    assert channel is not None
    broadcast = await start_broadcast(db, channel.id, {}, now=start.timestamp() - 60)
    await link_broadcast(db, channel.id, broadcast, before=1800, after=3600)
    await end_broadcast(db, broadcast, "publisher_closed", now=start.timestamp() + 60)
    (row,) = (await client.get(f"{API}/me/analytics", headers=alice["auth"])).json()["broadcasts"]
    assert row["schedule"] == {"id": made.json()["id"], "title": "Planned"}
    assert (row["peak_viewers"], row["average_viewers"], row["viewer_samples"]) == (0, None, 0)
    assert row["duration_seconds"] == 120.0
    one = (await client.get(f"{API}/me/analytics/{broadcast}", headers=alice["auth"])).json()
    assert one["viewers"] == []


async def test_only_your_own_broadcasts(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    await register("alice")
    bob = await register("bob")
    channel = await get_channel(db, "alice")
    assert channel is not None
    broadcast = await start_broadcast(db, channel.id, {})
    assert_error(await client.get(f"{API}/me/analytics"), 401)
    assert_error(await client.get(f"{API}/me/analytics/{broadcast}"), 401)
    assert_error(await client.get(f"{API}/me/analytics/{broadcast}", headers=bob["auth"]), 404)
    assert (await client.get(f"{API}/me/analytics", headers=bob["auth"])).json() == {
        "broadcasts": []
    }
    for bad in ("x", "0", "99999", "1" * 20):
        assert_error(await client.get(f"{API}/me/analytics/{bad}", headers=bob["auth"]), 404)
    for limit in ("0", "101", "-1", "ten"):
        response = await client.get(f"{API}/me/analytics?limit={limit}", headers=bob["auth"])
        assert_error(response, 422, "validation_error")
