"""Scheduled streams over the API (in-process app, real SQLite): create, edit, cancel, the
validation errors, owner-only access, time zones, the upcoming list and its pages, the
iCalendar feed read back strictly; then the reminder task over a real database (notifications
once, also across a restart) and the link of a broadcast to its scheduled stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from kitch.api.events import Events, Subscriber
from kitch.api.reminders import Reminders
from kitch.config import Settings
from kitch.db import Database, open_database
from kitch.db import schedule as db_schedule
from kitch.db.follows import list_notifications
from kitch.db.queries import get_channel, start_broadcast
from kitch.schedule import rules
from tests.api.helpers import Register, assert_error
from tests.schedule.ical_check import check_feed, start_of, text_list

API = "/api/v1"


def ahead(**delta: float) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)


def body(start: datetime | str, **extra: Any) -> dict[str, Any]:
    text = start if isinstance(start, str) else start.isoformat()
    return {"title": "Speedrun night", "starts_at": text, "timezone": "Europe/Paris", **extra}


async def schedule(
    client: httpx.AsyncClient, auth: dict[str, str], name: str, payload: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"{API}/channels/{name}/schedule", json=payload, headers=auth)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_create_list_edit_cancel(client: httpx.AsyncClient, register: Register) -> None:
    alice = (await register("alice"))["auth"]
    start = ahead(days=2)
    created = await schedule(
        client,
        alice,
        "alice",
        body(start, category="Games", duration_minutes=90, title="  Speedrun night  "),
    )
    assert created["title"] == "Speedrun night" and created["category"] == "Games"
    assert created["status"] == "scheduled" and created["broadcast_id"] is None
    assert created["duration_minutes"] == 90 and created["timezone"] == "Europe/Paris"
    assert datetime.fromisoformat(created["starts_at"]) == start
    assert datetime.fromisoformat(created["ends_at"]) == start + timedelta(minutes=90)
    local = datetime.fromisoformat(created["starts_at_local"])
    assert (
        local == start
        and local.utcoffset() == start.astimezone(ZoneInfo("Europe/Paris")).utcoffset()
    )
    assert created["channel"] == {
        "name": "alice", "display_name": "alice", "avatar_url": None, "live": False,
    }  # fmt: skip

    # public: anyone sees it, soonest first
    later = await schedule(client, alice, "alice", body(ahead(days=5), title="Later"))
    listed = (await client.get(f"{API}/channels/alice/schedule")).json()
    assert [s["id"] for s in listed["schedule"]] == [created["id"], later["id"]]
    assert listed["ics_url"] == "/channels/alice/schedule.ics"

    # edit: the title alone, then the start as a wall-clock time in the stored zone
    url = f"{API}/channels/alice/schedule/{created['id']}"
    edited = (await client.patch(url, json={"title": "Speedrun, part 2"}, headers=alice)).json()
    assert edited["title"] == "Speedrun, part 2" and edited["starts_at"] == created["starts_at"]
    day = ahead(days=3).astimezone(ZoneInfo("Europe/Paris")).date()
    moved = (await client.patch(url, json={"starts_at": f"{day}T21:15"}, headers=alice)).json()
    assert moved["starts_at_local"].startswith(f"{day}T21:15:00")
    # a zone change alone keeps the instant and shows it in the new zone
    tokyo = (await client.patch(url, json={"timezone": "Asia/Tokyo"}, headers=alice)).json()
    assert tokyo["starts_at"] == moved["starts_at"] and tokyo["starts_at_local"].endswith("+09:00")

    # cancel: gone from the list, idempotent, and no longer editable
    cancelled = await client.delete(url, headers=alice)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await client.delete(url, headers=alice)
    assert again.status_code == 200 and again.json()["updated_at"] == cancelled.json()["updated_at"]
    listed = (await client.get(f"{API}/channels/alice/schedule")).json()
    assert [s["id"] for s in listed["schedule"]] == [later["id"]]
    assert_error(await client.patch(url, json={"title": "x"}, headers=alice), 409, "cancelled")


async def test_only_the_owner_changes_a_schedule(
    client: httpx.AsyncClient, register: Register
) -> None:
    alice = (await register("alice"))["auth"]
    bob = (await register("bob"))["auth"]
    created = await schedule(client, alice, "alice", body(ahead(days=1)))
    url = f"{API}/channels/alice/schedule/{created['id']}"
    assert_error(await client.post(f"{API}/channels/alice/schedule", json=body(ahead(days=1))), 401)
    assert_error(await client.patch(url, json={"title": "x"}), 401)
    assert_error(await client.delete(url), 401)
    assert_error(
        await client.post(f"{API}/channels/alice/schedule", json=body(ahead(days=1)), headers=bob),
        403,
    )
    assert_error(await client.patch(url, json={"title": "x"}, headers=bob), 403)
    assert_error(await client.delete(url, headers=bob), 403)
    # bob's own channel path with alice's stream id: no such stream there
    other = f"{API}/channels/bob/schedule/{created['id']}"
    assert_error(await client.patch(other, json={"title": "x"}, headers=bob), 404)
    assert_error(await client.delete(other, headers=bob), 404)
    for bad in ("x", "-1", "9" * 30, "1.5"):
        assert_error(
            await client.delete(f"{API}/channels/alice/schedule/{bad}", headers=alice), 404
        )
    assert_error(await client.get(f"{API}/channels/nobody/schedule"), 404, "not_found")
    assert_error(
        await client.post(f"{API}/channels/nobody/schedule", json=body(ahead(days=1)), headers=bob),
        404,
    )
    unchanged = (await client.get(f"{API}/channels/alice/schedule")).json()["schedule"][0]
    assert unchanged["title"] == created["title"] and unchanged["status"] == "scheduled"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (body(ahead(minutes=-5)), 422, "start_in_past"),
        (body(ahead(days=91)), 422, "start_too_far_ahead"),
        (body(ahead(days=1), duration_minutes=4), 422, "invalid_duration"),
        (body(ahead(days=1), duration_minutes=1441), 422, "invalid_duration"),
        (body(ahead(days=1), duration_minutes="60"), 422, "invalid_duration"),
        (body(ahead(days=1), timezone="Mars/Olympus_Mons"), 422, "unknown_time_zone"),
        (body(ahead(days=1), timezone="../../etc/passwd"), 422, "unknown_time_zone"),
        (body(ahead(days=1), timezone=None), 422, "unknown_time_zone"),
        (body("2099-03-29T02:30"), 422, "nonexistent_time"),
        (body("next friday"), 422, "invalid_start"),
        (body(f"{ahead(days=1).date()}"), 422, "invalid_start"),
        ({"title": "x", "timezone": "UTC"}, 422, "invalid_start"),
        (body(ahead(days=1), title="   "), 422, "validation_error"),
        (body(ahead(days=1), title="x" * 141), 422, "validation_error"),
        (body(ahead(days=1), title="a\u202eb"), 422, "validation_error"),
        (body(ahead(days=1), category=7), 422, "validation_error"),
        (body(ahead(days=1), when="now"), 422, "validation_error"),
        ({k: v for k, v in body(ahead(days=1)).items() if k != "title"}, 422, "validation_error"),
        (
            {k: v for k, v in body(ahead(days=1)).items() if k != "timezone"},
            422,
            "unknown_time_zone",
        ),
    ],
)
async def test_validation_errors(
    client: httpx.AsyncClient,
    register: Register,
    payload: dict[str, Any],
    status: int,
    code: str,
) -> None:
    alice = (await register("alice"))["auth"]
    response = await client.post(f"{API}/channels/alice/schedule", json=payload, headers=alice)
    assert_error(response, status, code)
    assert (await client.get(f"{API}/channels/alice/schedule")).json()["schedule"] == []


async def test_edits_are_validated_too(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    alice = (await register("alice"))["auth"]
    created = await schedule(client, alice, "alice", body(ahead(days=1)))
    url = f"{API}/channels/alice/schedule/{created['id']}"
    for payload, code in (
        ({"starts_at": ahead(hours=-1).isoformat()}, "start_in_past"),
        ({"duration_minutes": 0}, "invalid_duration"),
        ({"timezone": "Nowhere/Land"}, "unknown_time_zone"),
        ({"title": ""}, "validation_error"),
        ({"status": "cancelled"}, "validation_error"),
    ):
        assert_error(await client.patch(url, json=payload, headers=alice), 422, code)
    # a stream whose start has passed is not edited any more
    await db.execute(
        "UPDATE scheduled_streams SET starts_at = ? WHERE id = ?",
        (ahead(minutes=-1).timestamp(), created["id"]),
    )
    assert_error(
        await client.patch(url, json={"title": "x"}, headers=alice), 409, "already_started"
    )


async def test_too_many_upcoming(client: httpx.AsyncClient, register: Register) -> None:
    alice = (await register("alice"))["auth"]
    base = ahead(days=1)
    for i in range(rules.MAX_UPCOMING):
        await schedule(client, alice, "alice", body(base + timedelta(hours=i), title=f"s{i}"))
    response = await client.post(
        f"{API}/channels/alice/schedule", json=body(base - timedelta(hours=1)), headers=alice
    )
    assert_error(response, 409, "too_many_scheduled")
    assert str(rules.MAX_UPCOMING) in response.json()["error"]["message"]
    first = (await client.get(f"{API}/channels/alice/schedule")).json()["schedule"][0]
    await client.delete(f"{API}/channels/alice/schedule/{first['id']}", headers=alice)
    await schedule(client, alice, "alice", body(base - timedelta(hours=1)))


async def test_upcoming_across_channels_in_pages(
    client: httpx.AsyncClient, register: Register
) -> None:
    made = []
    base = ahead(hours=6)
    for n, name in enumerate(("alice", "bob", "carol")):
        auth = (await register(name))["auth"]
        for i in range(3):
            start = base + timedelta(minutes=10 * (3 * i + n))
            made.append(await schedule(client, auth, name, body(start, title=f"{name} {i}")))
    # the same start twice: the id breaks the tie, no page repeats or skips either
    made.append(await schedule(client, auth, "carol", body(base, title="tie")))
    cancelled = await schedule(client, auth, "carol", body(base + timedelta(minutes=1)))
    await client.delete(f"{API}/channels/carol/schedule/{cancelled['id']}", headers=auth)
    want = [s["id"] for s in sorted(made, key=lambda s: (s["starts_at"], s["id"]))]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/schedule/upcoming", params=params)).json()
        seen += [s["id"] for s in page["schedule"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == want and pages == 3
    first = (await client.get(f"{API}/schedule/upcoming")).json()["schedule"]
    assert [s["channel"]["name"] for s in first[:2]] == ["alice", "carol"]
    for params in ({"limit": "0"}, {"limit": "51"}, {"limit": "x"}, {"cursor": "nope"},
                   {"cursor": "inf_3"}):  # fmt: skip
        assert_error(await client.get(f"{API}/schedule/upcoming", params=params), 422)


async def test_the_icalendar_feed(
    client: httpx.AsyncClient, register: Register, settings: Settings
) -> None:
    alice = (await register("alice"))["auth"]
    await client.patch(f"{API}/me", json={"display_name": "Alice, the 2nd"}, headers=alice)
    paris = await schedule(
        client,
        alice,
        "alice",
        body(ahead(days=2), title="Retro; games, and \\o/ more 🎮", category="Games, retro"),
    )
    york = await schedule(
        client,
        alice,
        "alice",
        body(ahead(days=40), timezone="America/New_York", duration_minutes=45),
    )
    utc = await schedule(client, alice, "alice", body(ahead(days=3), timezone="UTC"))
    gone = await schedule(client, alice, "alice", body(ahead(days=4), title="Gone"))
    await client.delete(f"{API}/channels/alice/schedule/{gone['id']}", headers=alice)
    await client.patch(
        f"{API}/channels/alice/schedule/{york['id']}", json={"title": "NY"}, headers=alice
    )

    response = await client.get("/channels/alice/schedule.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    cal, zones = check_feed(response.content)
    assert sorted(zones) == ["America/New_York", "Europe/Paris"]
    assert cal.text("X-WR-CALNAME") == "Alice, the 2nd on Kitch"
    events = {e.text("UID"): e for e in cal.children if e.name == "VEVENT"}
    assert sorted(events) == sorted(
        f"schedule-{s['id']}@kitch.test" for s in (paris, york, utc, gone)
    )
    for made in (paris, york, utc, gone):
        vevent = events[f"schedule-{made['id']}@kitch.test"]
        assert start_of(vevent, zones) == datetime.fromisoformat(made["starts_at"])
    first = events[f"schedule-{paris['id']}@kitch.test"]
    assert first.text("SUMMARY") == "Retro; games, and \\o/ more 🎮"
    assert text_list(first.one("CATEGORIES").value) == ["Games, retro"]
    assert first.one("DTSTART").params == {"TZID": "Europe/Paris"}
    assert first.one("DURATION").value == "PT1H" and first.one("SEQUENCE").value == "0"
    assert first.one("URL").value == "http://kitch.test/alice"
    assert events[f"schedule-{utc['id']}@kitch.test"].one("DTSTART").value.endswith("Z")
    assert events[f"schedule-{york['id']}@kitch.test"].one("SEQUENCE").value == "1"
    assert events[f"schedule-{york['id']}@kitch.test"].one("DURATION").value == "PT45M"
    cancelled = events[f"schedule-{gone['id']}@kitch.test"]
    assert cancelled.one("STATUS").value == "CANCELLED" and cancelled.one("SEQUENCE").value == "1"
    assert (await client.get("/channels/alice/schedule.ics")).content == response.content

    missing = await client.get("/channels/nobody/schedule.ics")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/plain")
    empty = await client.get("/channels/ALICE/schedule.ics")
    assert empty.status_code == 200


async def test_the_feed_names_the_public_url(
    settings: Settings, db: Database, register: Register
) -> None:
    from dataclasses import replace

    from kitch.api.app import create_app

    app = create_app(replace(settings, public_url="https://tv.example.com/"), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        answer = await c.post(
            f"{API}/auth/register",
            json={"username": "zoe", "email": "z@example.com", "password": "correct horse 1",
                  "token_delivery": "body"},
        )  # fmt: skip
        auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        made = await schedule(c, auth, "zoe", body(ahead(days=1)))
        cal, _ = check_feed((await c.get("/channels/zoe/schedule.ics")).content)
    (vevent,) = (e for e in cal.children if e.name == "VEVENT")
    assert vevent.text("UID") == f"schedule-{made['id']}@tv.example.com"
    assert vevent.one("URL").value == "https://tv.example.com/zoe"


# -- notifications: the reminder task over a real database ---------------------------------------


async def _follower_setup(
    client: httpx.AsyncClient, register: Register, start: datetime
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    alice = await register("alice")
    bob = await register("bob")
    await client.put(f"{API}/channels/alice/follow", headers=bob["auth"])
    made = await schedule(client, alice["auth"], "alice", body(start))
    return alice, bob, made


def _pushed(sub: Subscriber) -> list[bytes]:
    frames = []
    while not sub.queue.empty():
        frames.append(sub.queue.get_nowait())
    return frames


async def test_reminder_and_start_notices_once_even_across_a_restart(
    client: httpx.AsyncClient, register: Register, db: Database, settings: Settings
) -> None:
    import msgpack

    start = ahead(hours=1)
    alice, bob, made = await _follower_setup(client, register, start)
    events = Events()
    sub = Subscriber(user_id=bob["user"]["id"])
    events.sockets.add(sub)
    reminders = Reminders(events, 600)
    reminders.db = db
    t0 = start.timestamp()
    assert await reminders.run_once(t0 - 601) == t0 - 600
    assert _pushed(sub) == []
    assert await reminders.run_once(t0 - 590) == t0
    (frame,) = (msgpack.unpackb(f) for f in _pushed(sub))
    assert frame["kind"] == "schedule_reminder" and frame["schedule_id"] == made["id"]
    assert frame["channel"] == "alice" and frame["title"] == "Speedrun night"
    assert frame["starts_at"] == t0
    await reminders.run_once(t0 - 500)  # nothing new
    assert _pushed(sub) == []

    # a restart: another process, another reminder task, the same file
    other = await open_database(settings.database_url)
    try:
        again = Reminders(events, 600)
        again.db = other
        assert await again.run_once(t0 - 100) == t0
        assert _pushed(sub) == []
        assert await again.run_once(t0 + 1) is None
        (frame,) = (msgpack.unpackb(f) for f in _pushed(sub))
        assert frame["kind"] == "schedule_start"
        await again.run_once(t0 + 2)
    finally:
        await other.close()
    await reminders.run_once(t0 + 3)
    assert _pushed(sub) == []
    notes, unread = await list_notifications(db, bob["user"]["id"])
    assert [n.kind for n in notes] == ["schedule_start", "schedule_reminder"] and unread == 2
    assert all(n.schedule_id == made["id"] for n in notes)
    assert (await list_notifications(db, alice["user"]["id"]))[0] == []
    listed = (await client.get(f"{API}/me/notifications", headers=bob["auth"])).json()
    assert listed["notifications"][0]["schedule_id"] == made["id"]
    assert listed["notifications"][0]["starts_at"] == made["starts_at"]

    # a new start time forgets the flags, but each follower still gets each kind once
    await db.execute(
        "UPDATE scheduled_streams SET reminded_at = NULL, start_notified_at = NULL WHERE id = ?",
        (made["id"],),
    )
    await reminders.run_once(t0 + 4)
    assert _pushed(sub) == [] and (await list_notifications(db, bob["user"]["id"]))[1] == 2


async def test_late_cancelled_and_linked_streams_send_nothing_wrong(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    start = ahead(hours=2)
    alice, bob, _late = await _follower_setup(client, register, start)
    cancelled = await schedule(client, alice["auth"], "alice", body(start + timedelta(hours=1)))
    await client.delete(f"{API}/channels/alice/schedule/{cancelled['id']}", headers=alice["auth"])
    linked = await schedule(client, alice["auth"], "alice", body(start + timedelta(hours=2)))
    channel = await get_channel(db, "alice")
    assert channel is not None
    broadcast = await start_broadcast(db, channel.id, {}, now=start.timestamp() + 2 * 3600 - 60)
    assert (
        await db_schedule.link_broadcast(db, channel.id, broadcast, before=1800, after=3600)
        == linked["id"]
    )
    reminders = Reminders(Events(), 600)
    reminders.db = db
    # the server was down through the reminder and the start of the first stream: it is too
    # late for either; the cancelled and the linked streams send nothing at all
    assert await reminders.run_once(start.timestamp() + 4 * 3600) is None
    assert await list_notifications(db, bob["user"]["id"]) == ([], 0)


@pytest.mark.parametrize(
    ("offset_minutes", "linked"),
    [(-31, False), (-29, True), (0, True), (59, True), (61, False)],
)
async def test_a_broadcast_links_to_the_stream_starting_near_it(
    client: httpx.AsyncClient, register: Register, db: Database, offset_minutes: int, linked: bool
) -> None:
    alice = (await register("alice"))["auth"]
    start = ahead(days=1)
    made = await schedule(client, alice, "alice", body(start))
    channel = await get_channel(db, "alice")
    assert channel is not None
    at = start.timestamp() + 60 * offset_minutes
    broadcast = await start_broadcast(db, channel.id, {}, now=at)
    got = await db_schedule.link_broadcast(
        db,
        channel.id,
        broadcast,
        before=rules.LINK_BEFORE.total_seconds(),
        after=rules.LINK_AFTER.total_seconds(),
    )
    assert got == (made["id"] if linked else None)
    listed = (await client.get(f"{API}/channels/alice/schedule")).json()["schedule"]
    assert listed[0]["broadcast_id"] == (broadcast if linked else None)


async def test_the_nearest_stream_wins_and_is_linked_once(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    alice = (await register("alice"))["auth"]
    start = ahead(days=1)
    early = await schedule(client, alice, "alice", body(start))
    late = await schedule(client, alice, "alice", body(start + timedelta(minutes=40)))
    channel = await get_channel(db, "alice")
    assert channel is not None
    first = await start_broadcast(db, channel.id, {}, now=start.timestamp() + 30 * 60)
    assert (
        await db_schedule.link_broadcast(db, channel.id, first, before=1800, after=3600)
        == late["id"]
    )
    second = await start_broadcast(db, channel.id, {}, now=start.timestamp() + 35 * 60)
    assert (
        await db_schedule.link_broadcast(db, channel.id, second, before=1800, after=3600)
        == early["id"]
    )
    third = await start_broadcast(db, channel.id, {}, now=start.timestamp() + 36 * 60)
    assert await db_schedule.link_broadcast(db, channel.id, third, before=1800, after=3600) is None


async def test_the_reminder_task_wakes_when_a_stream_is_scheduled(
    client: httpx.AsyncClient, register: Register, db: Database, app: Any
) -> None:
    """The task sleeps until the next due time (here: nothing pending, so a minute); a new
    stream inside the lead wakes it at once."""
    events: Events = app.state.events
    reminders: Reminders = app.state.reminders
    alice = await register("alice")
    bob = await register("bob")
    await client.put(f"{API}/channels/alice/follow", headers=bob["auth"])
    sub = Subscriber(user_id=bob["user"]["id"])
    events.sockets.add(sub)
    reminders.start(db)
    try:
        await asyncio.sleep(0.2)  # asleep now
        await schedule(client, alice["auth"], "alice", body(ahead(minutes=5)))
        for _ in range(100):
            if not sub.queue.empty():
                break
            await asyncio.sleep(0.05)
        assert not sub.queue.empty(), "no reminder within 5 s"
    finally:
        await reminders.stop()
