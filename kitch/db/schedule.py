"""Scheduled streams: storage, the follower notifications they send, the broadcast they became.

API::

    s = await create(db, channel_id, fields, now=..., max_upcoming=50)   # None: too many
    s = await get(db, schedule_id)
    s = await update(db, schedule_id, fields, now=...)    # bumps the iCalendar sequence
    s = await cancel(db, schedule_id, now=...)
    await count_ahead(db, channel_id, now)                  # not ended, cancelled included
    await channel_upcoming(db, channel_id, now)            # not cancelled, not yet ended
    await upcoming(db, now, after=(starts_at, id) | None, limit=20)   # every channel
    await feed(db, channel_id, since)                     # the iCalendar feed, cancelled too
    await link_broadcast(db, channel_id, broadcast_id)     # a broadcast near a start: linked
    await due(db, now, lead)                               # streams with a notification due
    await notify(db, schedule_id, kind, now, send=True)    # store it once (or mark it skipped)
    await next_due(db, lead)                               # when the next one falls due

``fields`` hold ``title``, ``category``, ``starts_at`` (Unix seconds), ``timezone`` (an IANA
name) and ``duration`` (seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kitch.db import Database, Row
from kitch.db.follows import (
    _NOTIFICATION_SELECT,
    SCHEDULE_REMINDER,
    SCHEDULE_START,
    Notification,
    _notification,
)

SCHEDULED = "scheduled"
CANCELLED = "cancelled"
#: Notification kinds: the reminder shortly before the start, and the start itself.
REMINDER = SCHEDULE_REMINDER
START = SCHEDULE_START
_FLAG = {REMINDER: "reminded_at", START: "start_notified_at"}
_FIELDS = ("title", "category", "starts_at", "timezone", "duration")


@dataclass(frozen=True)
class ScheduledStream:
    id: int
    channel_id: int
    channel: str
    display_name: str
    has_avatar: bool
    channel_live: bool
    title: str
    category: str
    starts_at: float
    timezone: str
    duration: int
    status: str
    sequence: int
    broadcast_id: int | None
    created_at: float
    updated_at: float
    cancelled_at: float | None

    @property
    def ends_at(self) -> float:
        return self.starts_at + self.duration


@dataclass(frozen=True)
class DueStream:
    id: int
    starts_at: float
    reminded: bool
    start_noticed: bool


_SELECT = (
    "SELECT s.*, u.username AS channel, u.display_name, c.live AS channel_live, "
    "EXISTS(SELECT 1 FROM avatars a WHERE a.user_id = u.id) AS has_avatar "
    "FROM scheduled_streams s JOIN channels c ON c.id = s.channel_id "
    "JOIN users u ON u.id = c.user_id "
)


def _stream(row: Row) -> ScheduledStream:
    return ScheduledStream(
        id=row["id"],
        channel_id=row["channel_id"],
        channel=row["channel"],
        display_name=row["display_name"],
        has_avatar=bool(row["has_avatar"]),
        channel_live=bool(row["channel_live"]),
        title=row["title"],
        category=row["category"],
        starts_at=row["starts_at"],
        timezone=row["timezone"],
        duration=row["duration"],
        status=row["status"],
        sequence=row["sequence"],
        broadcast_id=row["broadcast_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        cancelled_at=row["cancelled_at"],
    )


async def create(
    db: Database,
    channel_id: int,
    fields: dict[str, Any],
    *,
    now: float,
    max_upcoming: int,
) -> ScheduledStream | None:
    """Store a new scheduled stream; None when the channel already has ``max_upcoming``
    upcoming ones (counted and inserted in one transaction)."""
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT count(*) FROM scheduled_streams WHERE channel_id = ? AND status = ? "
            "AND starts_at + duration > ?",
            (channel_id, SCHEDULED, now),
        )
        if row is not None and row[0] >= max_upcoming:
            return None
        schedule_id = await tx.insert(
            "INSERT INTO scheduled_streams (channel_id, title, category, starts_at, timezone, "
            "duration, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                channel_id,
                fields["title"],
                fields.get("category", ""),
                fields["starts_at"],
                fields["timezone"],
                fields["duration"],
                now,
                now,
            ),
        )
        found = await tx.fetchone(_SELECT + "WHERE s.id = ?", (schedule_id,))
    assert found is not None
    return _stream(found)


async def count_ahead(db: Database, channel_id: int, now: float) -> int:
    """The channel's streams that have not ended, cancelled ones included."""
    row = await db.fetchone(
        "SELECT count(*) FROM scheduled_streams WHERE channel_id = ? AND starts_at + duration > ?",
        (channel_id, now),
    )
    return int(row[0]) if row is not None else 0


async def get(db: Database, schedule_id: int) -> ScheduledStream | None:
    row = await db.fetchone(_SELECT + "WHERE s.id = ?", (schedule_id,))
    return None if row is None else _stream(row)


async def update(
    db: Database, schedule_id: int, fields: dict[str, Any], *, now: float
) -> ScheduledStream | None:
    """Change any of the fields; the sequence goes up by one. A new start forgets the
    notifications sent for the old one (the (user, kind, stream) uniqueness of notifications
    still lets each follower get each kind once)."""
    values = {name: fields[name] for name in _FIELDS if name in fields}
    assignments = [f"{name} = ?" for name in values]  # names from the fixed list only
    if "starts_at" in values:
        assignments += ["reminded_at = NULL", "start_notified_at = NULL"]
    assignments += ["sequence = sequence + 1", "updated_at = ?"]
    async with db.transaction() as tx:
        await tx.execute(
            f"UPDATE scheduled_streams SET {', '.join(assignments)} WHERE id = ?",
            (*values.values(), now, schedule_id),
        )
        row = await tx.fetchone(_SELECT + "WHERE s.id = ?", (schedule_id,))
    return None if row is None else _stream(row)


async def cancel(db: Database, schedule_id: int, *, now: float) -> ScheduledStream | None:
    """Cancel (idempotent: a second cancel changes nothing)."""
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE scheduled_streams SET status = ?, cancelled_at = ?, updated_at = ?, "
            "sequence = sequence + 1 WHERE id = ? AND status != ?",
            (CANCELLED, now, now, schedule_id, CANCELLED),
        )
        row = await tx.fetchone(_SELECT + "WHERE s.id = ?", (schedule_id,))
    return None if row is None else _stream(row)


async def channel_upcoming(
    db: Database, channel_id: int, now: float, *, limit: int = 100
) -> list[ScheduledStream]:
    """The channel's scheduled streams that have not ended (started ones included), soonest
    first."""
    rows = await db.fetchall(
        _SELECT + "WHERE s.channel_id = ? AND s.status = ? AND s.starts_at + s.duration > ? "
        "ORDER BY s.starts_at, s.id LIMIT ?",
        (channel_id, SCHEDULED, now, limit),
    )
    return [_stream(row) for row in rows]


async def upcoming(
    db: Database, now: float, *, after: tuple[float, int] | None = None, limit: int = 20
) -> list[ScheduledStream]:
    """Every channel's scheduled streams that have not started yet (or started within the last
    ``duration``), soonest first; ``after`` is the (starts_at, id) of the last one of the page
    before."""
    where = "WHERE s.status = ? AND s.starts_at + s.duration > ? "
    params: list[Any] = [SCHEDULED, now]
    if after is not None:
        where += "AND (s.starts_at > ? OR (s.starts_at = ? AND s.id > ?)) "
        params += [after[0], after[0], after[1]]
    rows = await db.fetchall(
        _SELECT + where + "ORDER BY s.starts_at, s.id LIMIT ?", (*params, limit)
    )
    return [_stream(row) for row in rows]


async def feed(
    db: Database, channel_id: int, since: float, *, limit: int = 500
) -> list[ScheduledStream]:
    """What the channel's iCalendar feed lists: every stream (cancelled ones too) that ends
    after ``since``, soonest first."""
    rows = await db.fetchall(
        _SELECT + "WHERE s.channel_id = ? AND s.starts_at + s.duration > ? "
        "ORDER BY s.starts_at, s.id LIMIT ?",
        (channel_id, since, limit),
    )
    return [_stream(row) for row in rows]


async def link_broadcast(
    db: Database, channel_id: int, broadcast_id: int, *, before: float, after: float
) -> int | None:
    """Link the broadcast to the channel's scheduled stream whose start is nearest to the
    broadcast's, among those starting at most ``before`` seconds after it or ``after`` seconds
    before it (not cancelled, not linked yet); return that stream's id."""
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT s.id FROM scheduled_streams s, broadcast_sessions b WHERE b.id = ? "
            "AND s.channel_id = ? AND s.status = ? AND s.broadcast_id IS NULL "
            "AND s.starts_at BETWEEN b.started_at - ? AND b.started_at + ? "
            "ORDER BY abs(s.starts_at - b.started_at), s.id LIMIT 1",
            (broadcast_id, channel_id, SCHEDULED, after, before),
        )
        if row is None:
            return None
        await tx.execute(
            "UPDATE scheduled_streams SET broadcast_id = ? WHERE id = ?", (broadcast_id, row[0])
        )
    schedule_id: int = row[0]
    return schedule_id


_PENDING = "s.status = 'scheduled' AND s.broadcast_id IS NULL AND s.start_notified_at IS NULL "
#: When a pending stream's next notification falls due (lead: the reminder's lead in seconds).
_DUE_AT = (
    "CASE WHEN s.reminded_at IS NULL AND CAST(? AS DOUBLE PRECISION) > 0 "
    "THEN s.starts_at - CAST(? AS DOUBLE PRECISION) ELSE s.starts_at END"
)


async def due(db: Database, now: float, lead: float, *, limit: int = 100) -> list[DueStream]:
    """Streams with a notification due at ``now`` (not cancelled, not linked to a broadcast)."""
    rows = await db.fetchall(
        f"SELECT s.id, s.starts_at, s.reminded_at, s.start_notified_at FROM scheduled_streams s "
        f"WHERE {_PENDING} AND {_DUE_AT} <= ? ORDER BY s.starts_at LIMIT ?",
        (lead, lead, now, limit),
    )
    return [DueStream(r["id"], r["starts_at"], r["reminded_at"] is not None, False) for r in rows]


async def next_due(db: Database, lead: float) -> float | None:
    """When the next notification of any stream falls due (None: nothing pending)."""
    row = await db.fetchone(
        f"SELECT min({_DUE_AT}) FROM scheduled_streams s WHERE {_PENDING}", (lead, lead)
    )
    return None if row is None or row[0] is None else float(row[0])


async def notify(
    db: Database, schedule_id: int, kind: str, now: float, *, send: bool = True
) -> list[Notification]:
    """Store one ``kind`` notification per follower of the stream's channel and mark the
    stream's flag for it, in one transaction, so it happens once even across a restart (a
    stream that was cancelled, linked or already notified meanwhile gets nothing). Without
    ``send`` only the flag is set (too late to send). Returns the new notifications."""
    flag = _FLAG[kind]
    async with db.transaction() as tx:
        row = await tx.fetchone(
            f"SELECT s.channel_id, s.title, s.category, s.starts_at FROM scheduled_streams s "
            f"WHERE s.id = ? AND s.status = ? AND s.broadcast_id IS NULL AND s.{flag} IS NULL",
            (schedule_id, SCHEDULED),
        )
        if row is None:
            return []
        await tx.execute(
            f"UPDATE scheduled_streams SET {flag} = ? WHERE id = ?", (now, schedule_id)
        )
        if not send:
            return []
        before = await tx.fetchone("SELECT coalesce(max(id), 0) FROM notifications")
        data = {"title": row["title"], "category": row["category"], "starts_at": row["starts_at"]}
        await tx.execute(
            "INSERT INTO notifications (user_id, kind, channel_id, schedule_id, data, created_at) "
            "SELECT follower_id, CAST(? AS TEXT), channel_id, CAST(? AS BIGINT), CAST(? AS TEXT), "
            "CAST(? AS DOUBLE PRECISION) FROM follows WHERE channel_id = ? ON CONFLICT DO NOTHING",
            (kind, schedule_id, json.dumps(data), now, row["channel_id"]),
        )
        rows = await tx.fetchall(
            _NOTIFICATION_SELECT + "WHERE n.id > ? AND n.schedule_id = ? AND n.kind = ?",
            (before[0] if before is not None else 0, schedule_id, kind),
        )
    return [_notification(r) for r in rows]
