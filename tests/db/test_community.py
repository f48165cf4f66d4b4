"""Follows and notifications, chat storage, scheduled streams, broadcast analytics and recording
rows: the query modules' behaviour, on SQLite and on PostgreSQL alike (explicit times)."""

from __future__ import annotations

import pytest

from kitch.chat.room import Message
from kitch.db import Database, analytics, chat, follows, recordings, schedule
from kitch.db.queries import end_broadcast, get_channel, start_broadcast
from kitch.db.users import create_user

T0 = 1_764_560_000.5


async def _channel(db: Database, name: str) -> tuple[int, int]:
    """``(user id, channel id)`` of a new account."""
    user, _ = await create_user(db, name, f"{name}@example.com", "x")
    channel = await get_channel(db, name)
    assert channel is not None
    return user.id, channel.id


async def test_follows_and_notifications(db: Database) -> None:
    fan, _ = await _channel(db, "fan")
    other, _ = await _channel(db, "other")
    _, star = await _channel(db, "star")
    assert await follows.follow(db, fan, star, now=T0)
    assert not await follows.follow(db, fan, star, now=T0 + 5)  # a repeat keeps the first
    assert await follows.follow(db, other, star, now=T0 + 1)
    assert await follows.follower_count(db, star) == 2
    assert await follows.is_following(db, fan, star)
    assert await follows.followed_names(db, fan) == {"star"}
    assert [c.name for c in await follows.following_channels(db, fan)] == ["star"]
    assert await chat.follow_time(db, star, fan) == T0

    broadcast = await start_broadcast(db, star, {"encoder": "test"}, now=T0 + 10)
    made = await follows.notify_live(db, star, broadcast, {"title": "hi"}, now=T0 + 10)
    assert sorted(n.user_id for n in made) == [fan, other]
    assert all(n.channel == "star" and n.data == {"title": "hi"} for n in made)
    assert await follows.notify_live(db, star, broadcast, {"title": "hi"}) == []  # once
    listed, unread = await follows.list_notifications(db, fan)
    assert unread == 1 and [n.broadcast_id for n in listed] == [broadcast]
    assert await follows.mark_read(db, fan, [listed[0].id, 999], now=T0 + 20) == 1
    assert await follows.mark_read(db, other, now=T0 + 20) == 1
    assert (await follows.list_notifications(db, fan))[1] == 0

    assert await follows.unfollow(db, fan, star)
    assert not await follows.unfollow(db, fan, star)
    assert await follows.follower_count(db, star) == 1


async def test_chat_storage(db: Database) -> None:
    owner, room = await _channel(db, "room")
    talker, _ = await _channel(db, "talker")
    mod, _ = await _channel(db, "modder")
    base = 1_764_560_000_000  # chat message ids are millisecond clocks: above 32 bits

    def said(n: int, text: str) -> chat.Action:
        message = Message(base + n, talker, "talker", "talker", "", "viewer", text, T0 + n)
        return chat.Action(room, "message", {"message": message})

    await chat.write_batch(
        db,
        [
            said(1, "one"),
            said(2, "two 'quoted' ? text"),
            said(2, "a repeat of an id is ignored"),
            said(3, "three"),
            chat.Action(room, "mod", {"user_id": mod, "by": owner, "ts": T0}),
            chat.Action(room, "mod", {"user_id": mod, "by": owner, "ts": T0}),
            chat.Action(room, "delete", {"id": base + 3, "by": mod, "ts": T0 + 4}),
            chat.Action(
                room,
                "ban",
                {"user_id": talker, "until": T0 + 600, "reason": "spam", "by": mod, "ts": T0},
            ),
            chat.Action(
                room,
                "settings",
                {"slow": 5, "followers_only": None, "blocked_terms": ["bad"]},
            ),
            chat.Action(
                room,
                "audit",
                {
                    "actor_id": mod,
                    "action": "timeout",
                    "target_id": talker,
                    "message_id": None,
                    "reason": "spam",
                    "data": {"seconds": 600},
                    "ts": T0,
                },
            ),
        ],
    )
    assert await chat.max_message_id(db) == base + 3
    texts = [m.text for m in await chat.messages(db, room)]
    assert texts == ["one", "two 'quoted' ? text"]  # the deleted one is gone
    assert [m.id for m in await chat.messages(db, room, after=base + 1)] == [base + 2]
    assert [m.id for m in await chat.messages(db, room, before=base + 2)] == [base + 1]
    assert await chat.message_author(db, room, base + 1) == (True, talker)
    assert await chat.message_author(db, room, 1) == (False, None)
    record = await chat.load_room(db, room, T0 + 1)
    assert record.moderators == {mod} and record.bans == {talker: T0 + 600}
    assert (record.slow, record.followers_only, record.blocked_terms) == (5, None, ["bad"])
    assert (await chat.load_room(db, room, T0 + 601)).bans == {}
    bans = await chat.current_bans(db, room, T0 + 1)
    assert [(b["user"], b["by"], b["until"]) for b in bans] == [("talker", "modder", T0 + 600)]
    audit = await chat.audit_entries(db, room)
    assert [(a["actor"], a["target"], a["data"]) for a in audit] == [
        ("modder", "talker", {"seconds": 600})
    ]
    await chat.write_batch(
        db,
        [
            chat.Action(room, "unban", {"user_id": talker}),
            chat.Action(room, "unmod", {"user_id": mod}),
            chat.Action(room, "clear", {"by": owner, "ts": T0 + 9}),
        ],
    )
    record = await chat.load_room(db, room, T0 + 1)
    assert record.moderators == set() and record.bans == {}
    assert await chat.messages(db, room) == []


async def test_scheduled_streams(db: Database) -> None:
    fan, _ = await _channel(db, "sfan")
    _, channel = await _channel(db, "caster")
    await follows.follow(db, fan, channel, now=T0)
    fields = {
        "title": "Speedrun night",
        "category": "Retro Games",
        "starts_at": T0 + 3600,
        "timezone": "Europe/Paris",
        "duration": 7200,
    }
    made = await schedule.create(db, channel, fields, now=T0, max_upcoming=2)
    assert made is not None and made.channel == "caster" and made.starts_at == T0 + 3600
    second = await schedule.create(db, channel, {**fields, "starts_at": T0 + 90_000}, now=T0,
                                   max_upcoming=2)  # fmt: skip
    assert second is not None
    assert await schedule.create(db, channel, fields, now=T0, max_upcoming=2) is None
    assert await schedule.count_ahead(db, channel, T0) == 2
    assert [s.id for s in await schedule.upcoming(db, T0)] == [made.id, second.id]
    assert [s.id for s in await schedule.upcoming(db, T0, after=(made.starts_at, made.id))] == [
        second.id
    ]
    assert [s.id for s in await schedule.channel_upcoming(db, channel, T0)] == [made.id, second.id]
    changed = await schedule.update(db, second.id, {"title": "Later"}, now=T0 + 1)
    assert changed is not None and changed.sequence == 1 and changed.title == "Later"
    cancelled = await schedule.cancel(db, second.id, now=T0 + 2)
    assert cancelled is not None and cancelled.status == schedule.CANCELLED
    assert len(await schedule.feed(db, channel, T0)) == 2  # the feed lists cancelled ones too

    lead = 900.5
    assert await schedule.next_due(db, lead) == T0 + 3600 - lead
    assert await schedule.due(db, T0, lead) == []
    due = await schedule.due(db, T0 + 3600 - lead, lead)
    assert [(d.id, d.reminded) for d in due] == [(made.id, False)]
    sent = await schedule.notify(db, made.id, schedule.REMINDER, T0 + 2700)
    assert [(n.user_id, n.schedule_id, n.kind) for n in sent] == [(fan, made.id, schedule.REMINDER)]
    assert await schedule.notify(db, made.id, schedule.REMINDER, T0 + 2701) == []
    assert await schedule.next_due(db, lead) == T0 + 3600

    broadcast = await start_broadcast(db, channel, {}, now=T0 + 3500)
    linked = await schedule.link_broadcast(db, channel, broadcast, before=600, after=600)
    assert linked == made.id
    assert await schedule.next_due(db, lead) is None
    assert await schedule.notify(db, made.id, schedule.START, T0 + 3600) == []


async def test_broadcast_analytics_and_recordings(db: Database) -> None:
    fan, _ = await _channel(db, "viewer")
    _, channel = await _channel(db, "showrunner")
    broadcast = await start_broadcast(db, channel, {}, now=T0)
    await follows.follow(db, fan, channel, now=T0 + 10)
    await chat.write_batch(
        db,
        [
            chat.Action(
                channel,
                "message",
                {"message": Message(7, fan, "viewer", "viewer", "", "viewer", "hi", T0 + 20)},
            )
        ],
    )
    await follows.record_viewers(db, broadcast, 9, [(T0 + 30, 3), (T0 + 60, 9)])
    await end_broadcast(db, broadcast, "publisher_closed", now=T0 + 100)
    listed = await analytics.broadcasts(db, channel, now=T0 + 200)
    assert len(listed) == 1
    stats = listed[0]
    assert (stats.peak_viewers, stats.average_viewers, stats.samples) == (9, 6.0, 2)
    assert (stats.chat_messages, stats.new_followers, stats.duration(T0 + 200)) == (1, 1, 100.0)
    found = await analytics.broadcast(db, channel, broadcast, now=T0 + 200)
    assert found is not None and found[1] == [(T0 + 30, 3), (T0 + 60, 9)]
    assert await analytics.broadcast(db, channel, broadcast + 1, now=T0) is None

    assert await recordings.recording_enabled(db, channel)
    await recordings.set_recording_enabled(db, channel, False)
    assert not await recordings.recording_enabled(db, channel)
    rid = await recordings.create_recording(db, channel, broadcast, "showrunner/1", now=T0)
    assert rid > 0
    await recordings.update_recording(
        db, rid, state="ended", reason=None, segments=3, size=2**33, duration=12.5,
        ended_at=T0 + 100, now=T0 + 100,
    )  # fmt: skip
    got = await recordings.get_recording(db, rid)
    assert got is not None and (got.state, got.bytes, got.channel) == ("ended", 2**33, "showrunner")
    assert [r.id for r in await recordings.list_recordings(db, channel, everything=False)] == [rid]
    assert [r.id for r in await recordings.finished_recordings(db)] == [rid]
    assert await recordings.open_recordings(db) == []
    assert await recordings.bytes_used(db) == await recordings.bytes_used(db, channel) == 2**33
    assert await recordings.all_paths(db) == {"showrunner/1"}
    assert await recordings.delete_recording(db, rid) == "showrunner/1"
    assert await recordings.delete_recording(db, rid) is None
    with pytest.raises(ValueError):
        await recordings.update_recording(
            db, rid, state="nope", reason=None, segments=0, size=0, duration=0
        )
