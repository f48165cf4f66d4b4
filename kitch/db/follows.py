"""Follows and notifications.

API::

    await follow(db, user_id, channel_id)            # idempotent; True when it was new
    await unfollow(db, user_id, channel_id)          # idempotent
    await follower_count(db, channel_id)
    await is_following(db, user_id, channel_id)
    await following_channels(db, user_id)            # ChannelInfo list, live first
    await followed_names(db, user_id)                # channel names, for the events socket
    await notify_live(db, channel_id, broadcast_id, data)   # one row per follower, once
    await list_notifications(db, user_id, limit)     # (rows, unread count), newest first
    await mark_read(db, user_id, ids=None)           # None: all
    await record_viewers(db, broadcast_id, peak, series)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kitch.db import Database
from kitch.db.queries import _CHANNEL_SELECT, ChannelInfo, _channel

LIVE = "live"
#: The other kinds (kitch.db.schedule): a scheduled stream starts soon / starts now.
SCHEDULE_REMINDER = "schedule_reminder"
SCHEDULE_START = "schedule_start"


@dataclass(frozen=True)
class Notification:
    id: int
    user_id: int
    kind: str
    channel: str | None
    broadcast_id: int | None
    data: dict[str, Any]
    created_at: float
    read_at: float | None
    #: The scheduled stream a ``schedule_reminder`` / ``schedule_start`` notification is about.
    schedule_id: int | None = None


async def follow(db: Database, user_id: int, channel_id: int, *, now: float | None = None) -> bool:
    """Follow the channel; True when the follow is new (a repeat keeps the first time)."""
    _, count = await db.execute(
        "INSERT INTO follows (follower_id, channel_id, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (user_id, channel_id, time.time() if now is None else now),
    )
    return count > 0


async def unfollow(db: Database, user_id: int, channel_id: int) -> bool:
    """Stop following; True when there was a follow."""
    _, count = await db.execute(
        "DELETE FROM follows WHERE follower_id = ? AND channel_id = ?", (user_id, channel_id)
    )
    return count > 0


async def follower_count(db: Database, channel_id: int) -> int:
    row = await db.fetchone("SELECT count(*) FROM follows WHERE channel_id = ?", (channel_id,))
    return int(row[0]) if row is not None else 0


async def is_following(db: Database, user_id: int, channel_id: int) -> bool:
    row = await db.fetchone(
        "SELECT 1 FROM follows WHERE follower_id = ? AND channel_id = ?", (user_id, channel_id)
    )
    return row is not None


async def following_channels(db: Database, user_id: int, *, limit: int = 500) -> list[ChannelInfo]:
    """The channels ``user_id`` follows: live first, then most recently live, then by name."""
    rows = await db.fetchall(
        _CHANNEL_SELECT + "JOIN follows f ON f.channel_id = c.id AND f.follower_id = ? "
        "ORDER BY c.live DESC, c.last_live_at IS NULL, c.last_live_at DESC, u.username LIMIT ?",
        (user_id, limit),
    )
    return [_channel(row) for row in rows]


async def followed_names(db: Database, user_id: int) -> set[str]:
    rows = await db.fetchall(
        "SELECT u.username FROM follows f JOIN channels c ON c.id = f.channel_id "
        "JOIN users u ON u.id = c.user_id WHERE f.follower_id = ?",
        (user_id,),
    )
    return {row[0] for row in rows}


async def notify_live(
    db: Database,
    channel_id: int,
    broadcast_id: int,
    data: dict[str, Any],
    *,
    now: float | None = None,
) -> list[Notification]:
    """Store one ``live`` notification per follower of the channel for this broadcast (the
    UNIQUE (user_id, kind, broadcast_id) makes a repeat a no-op); return the new rows."""
    at = time.time() if now is None else now
    async with db.transaction() as tx:
        before = await tx.fetchone("SELECT coalesce(max(id), 0) FROM notifications")
        await tx.execute(
            "INSERT INTO notifications (user_id, kind, channel_id, broadcast_id, data, created_at) "
            "SELECT follower_id, CAST(? AS TEXT), channel_id, CAST(? AS BIGINT), CAST(? AS TEXT), "
            "CAST(? AS DOUBLE PRECISION) FROM follows WHERE channel_id = ? ON CONFLICT DO NOTHING",
            (LIVE, broadcast_id, json.dumps(data), at, channel_id),
        )
        rows = await tx.fetchall(
            _NOTIFICATION_SELECT + "WHERE n.id > ? AND n.broadcast_id = ? AND n.kind = ?",
            (before[0] if before is not None else 0, broadcast_id, LIVE),
        )
    return [_notification(row) for row in rows]


_NOTIFICATION_SELECT = (
    "SELECT n.*, u.username AS channel FROM notifications n "
    "LEFT JOIN channels c ON c.id = n.channel_id LEFT JOIN users u ON u.id = c.user_id "
)


def _notification(row: Any) -> Notification:
    try:
        data = json.loads(row["data"])
    except ValueError:
        data = {}
    return Notification(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        channel=row["channel"],
        broadcast_id=row["broadcast_id"],
        data=data if isinstance(data, dict) else {},
        created_at=row["created_at"],
        read_at=row["read_at"],
        schedule_id=row["schedule_id"],
    )


async def list_notifications(
    db: Database, user_id: int, *, limit: int = 50
) -> tuple[list[Notification], int]:
    """The user's newest notifications (newest first) and how many are unread in all."""
    rows = await db.fetchall(
        _NOTIFICATION_SELECT + "WHERE n.user_id = ? ORDER BY n.id DESC LIMIT ?", (user_id, limit)
    )
    unread = await db.fetchone(
        "SELECT count(*) FROM notifications WHERE user_id = ? AND read_at IS NULL", (user_id,)
    )
    return [_notification(row) for row in rows], int(unread[0]) if unread is not None else 0


async def mark_read(
    db: Database, user_id: int, ids: Sequence[int] | None = None, *, now: float | None = None
) -> int:
    """Mark the user's notifications ``ids`` (None: all) read; return how many changed."""
    at = time.time() if now is None else now
    if ids is None:
        _, count = await db.execute(
            "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL",
            (at, user_id),
        )
        return count
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    _, count = await db.execute(
        f"UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL "
        f"AND id IN ({marks})",
        (at, user_id, *ids),
    )
    return count


async def record_viewers(
    db: Database, broadcast_id: int, peak: int, series: Sequence[tuple[float, int]]
) -> None:
    """Store the broadcast's viewer peak and its (unix time, viewers) samples in the
    session's metadata (``viewers``: ``{"peak", "series"}``)."""
    value = json.dumps({"peak": peak, "series": [[round(t, 1), n] for t, n in series]})
    if db.dialect == "postgresql":
        update = "jsonb_set(CAST(metadata AS jsonb), '{viewers}', CAST(? AS jsonb))::text"
    else:
        update = "json_set(metadata, '$.viewers', json(?))"
    await db.execute(
        f"UPDATE broadcast_sessions SET metadata = {update} WHERE id = ?", (value, broadcast_id)
    )
