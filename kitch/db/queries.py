"""Channel and broadcast queries; the ingest (RTMP server) calls the first group.

Ingest API::

    ref = await channel_for_stream_key(db, key)          # None: unknown key or ingest disabled
    bid = await start_broadcast(db, ref.channel_id, {"encoder": "obs", ...})
    await update_broadcast_stats(db, bid, {"video_codec": "h264", "width": 1280, ...})
    await end_broadcast(db, bid, "publisher_closed")
    await close_stale_broadcasts(db)                      # once at start-up
    enabled, rungs = await ladder_settings(db, ref.channel_id)  # at publish time
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kitch.db import Database, Row
from kitch.db.vocabulary import tag_key
from kitch.keys import hash_stream_key, looks_like_stream_key

#: The ladder's rung names, highest first: the values ``ladder_rungs`` may hold.
LADDER_RUNGS: tuple[str, ...] = ("720p", "480p", "360p")


@dataclass(frozen=True)
class ChannelRef:
    """What the ingest needs about the owner of a stream key."""

    user_id: int
    username: str
    channel_id: int


@dataclass(frozen=True)
class StreamInfo:
    """The open broadcast session of a live channel."""

    id: int
    started_at: float
    title: str
    metadata: dict[str, Any]
    stats: dict[str, Any]
    stats_updated_at: float | None


@dataclass(frozen=True)
class ChannelInfo:
    id: int
    user_id: int
    name: str
    display_name: str
    title: str
    description: str
    #: The category's name ("" when none) and slug (None when none).
    category: str
    tags: list[str]
    live: bool
    last_live_at: float | None
    ingest_enabled: bool
    has_avatar: bool
    stream: StreamInfo | None = field(default=None)
    #: Transcoding ladder on/off and the rungs to encode (read at the start of a broadcast).
    ladder_enabled: bool = True
    ladder_rungs: list[str] = field(default_factory=lambda: list(LADDER_RUNGS))
    follower_count: int = 0
    category_slug: str | None = None


async def channel_for_stream_key(db: Database, key: str) -> ChannelRef | None:
    """The channel a stream key publishes to, or None (unknown key, or ingest disabled).

    Looks up the SHA-256 of the key and compares digests with ``hmac.compare_digest``.
    """
    if not isinstance(key, str) or not looks_like_stream_key(key):
        return None
    digest = hash_stream_key(key)
    row = await db.fetchone(
        "SELECT k.key_hash, u.id AS user_id, u.username, c.id AS channel_id, c.ingest_enabled "
        "FROM stream_keys k JOIN users u ON u.id = k.user_id JOIN channels c ON c.user_id = u.id "
        "WHERE k.key_hash = ?",
        (digest,),
    )
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    if not row["ingest_enabled"]:
        return None
    return ChannelRef(row["user_id"], row["username"], row["channel_id"])


async def channel_id_of(db: Database, name: str) -> int | None:
    """The id of user ``name``'s channel (case-insensitive), or None."""
    row = await db.fetchone(
        "SELECT c.id FROM channels c JOIN users u ON u.id = c.user_id WHERE u.username = ?",
        (name.lower(),),
    )
    return None if row is None else int(row["id"])


async def set_ingest_enabled(db: Database, channel_id: int, enabled: bool) -> None:
    """Allow or block publishing to the channel (a blocked key resolves to None)."""
    await db.execute(
        "UPDATE channels SET ingest_enabled = ? WHERE id = ?", (int(enabled), channel_id)
    )


async def start_broadcast(
    db: Database, channel_id: int, metadata: dict[str, Any], *, now: float | None = None
) -> int:
    """Mark the channel live and open a broadcast session (closing any left open); return its id."""
    at = time.time() if now is None else now
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE broadcast_sessions SET ended_at = ?, end_reason = 'superseded' "
            "WHERE channel_id = ? AND ended_at IS NULL",
            (at, channel_id),
        )
        await tx.execute(
            "UPDATE channels SET live = 1, last_live_at = ? WHERE id = ?", (at, channel_id)
        )
        broadcast_id = await tx.insert(
            "INSERT INTO broadcast_sessions (channel_id, started_at, title, metadata) "
            "SELECT id, CAST(? AS DOUBLE PRECISION), title, CAST(? AS TEXT) FROM channels "
            "WHERE id = ?",
            (at, json.dumps(metadata, default=str), channel_id),
        )
    if not broadcast_id:
        raise LookupError(f"no channel {channel_id}")
    return broadcast_id


async def update_broadcast_stats(db: Database, broadcast_id: int, stats: dict[str, Any]) -> None:
    """Replace the session's ingest stats (codec, width, height, fps, bitrate_kbps, ...)."""
    await db.execute(
        "UPDATE broadcast_sessions SET stats = ?, stats_updated_at = ? WHERE id = ?",
        (json.dumps(stats, default=str), time.time(), broadcast_id),
    )


async def end_broadcast(
    db: Database, broadcast_id: int, reason: str, *, now: float | None = None
) -> None:
    """Close the session (idempotent) and mark its channel offline unless another is open."""
    at = time.time() if now is None else now
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE broadcast_sessions SET ended_at = ?, end_reason = ? "
            "WHERE id = ? AND ended_at IS NULL",
            (at, reason, broadcast_id),
        )
        await tx.execute(
            "UPDATE channels SET live = 0 WHERE id = "
            "(SELECT channel_id FROM broadcast_sessions WHERE id = ?) AND NOT EXISTS "
            "(SELECT 1 FROM broadcast_sessions b WHERE b.channel_id = channels.id "
            "AND b.ended_at IS NULL)",
            (broadcast_id,),
        )


async def close_stale_broadcasts(db: Database) -> int:
    """Close sessions left open by a crash (ended at their last stats time); return how many."""
    async with db.transaction() as tx:
        _, count = await tx.execute(
            "UPDATE broadcast_sessions SET ended_at = CASE WHEN stats_updated_at > started_at "
            "THEN stats_updated_at ELSE started_at END, end_reason = 'server_restart' "
            "WHERE ended_at IS NULL"
        )
        await tx.execute("UPDATE channels SET live = 0 WHERE live = 1")
    return count


def _rungs(stored: str) -> list[str]:
    """The stored rung list, highest first, keeping only known names (never fails on odd data)."""
    try:
        names = json.loads(stored)
    except ValueError:
        return list(LADDER_RUNGS)
    if not isinstance(names, list):
        return list(LADDER_RUNGS)
    return [name for name in LADDER_RUNGS if name in names]


async def ladder_settings(db: Database, channel_id: int) -> tuple[bool, list[str]]:
    """``(enabled, rung names)`` of the channel's ladder, for a broadcast that starts now.

    Rung names are a subset of :data:`LADDER_RUNGS`, highest first; an unknown channel gets
    the defaults (on, every rung).
    """
    row = await db.fetchone(
        "SELECT ladder_enabled, ladder_rungs FROM channels WHERE id = ?", (channel_id,)
    )
    if row is None:
        return True, list(LADDER_RUNGS)
    return bool(row["ladder_enabled"]), _rungs(row["ladder_rungs"])


_CHANNEL_SELECT = (
    "SELECT c.*, u.username, u.display_name, "
    "EXISTS(SELECT 1 FROM avatars a WHERE a.user_id = u.id) AS has_avatar, "
    "(SELECT count(*) FROM follows f WHERE f.channel_id = c.id) AS follower_count, "
    "b.id AS b_id, b.started_at AS b_started_at, b.title AS b_title, b.metadata AS b_metadata, "
    "b.stats AS b_stats, b.stats_updated_at AS b_stats_updated_at, "
    "k.name AS category_name, k.slug AS category_slug "
    "FROM channels c JOIN users u ON u.id = c.user_id "
    "LEFT JOIN categories k ON k.id = c.category_id "
    "LEFT JOIN broadcast_sessions b ON b.id = (SELECT id FROM broadcast_sessions "
    "WHERE channel_id = c.id AND ended_at IS NULL ORDER BY id DESC LIMIT 1) "
)


def watching(db: Database) -> str:
    """A channel's live viewer count from a JSON object parameter (name -> count), looked up
    for live channels only (the object holds only those; offline rows skip the lookup)."""
    if db.dialect == "postgresql":
        lookup = "(CAST(? AS jsonb) ->> u.username)::bigint"
    else:
        lookup = "(SELECT value FROM json_each(?) WHERE key = u.username)"
    return f"CASE WHEN c.live = 1 THEN coalesce({lookup}, 0) ELSE 0 END"


def _channel(row: Row) -> ChannelInfo:
    stream = None
    if row["live"] and row["b_id"] is not None:
        stream = StreamInfo(
            id=row["b_id"],
            started_at=row["b_started_at"],
            title=row["b_title"],
            metadata=json.loads(row["b_metadata"]),
            stats=json.loads(row["b_stats"]),
            stats_updated_at=row["b_stats_updated_at"],
        )
    return ChannelInfo(
        id=row["id"],
        user_id=row["user_id"],
        name=row["username"],
        display_name=row["display_name"],
        title=row["title"],
        description=row["description"],
        category=row["category_name"] or "",
        tags=json.loads(row["tags"]),
        live=bool(row["live"]),
        last_live_at=row["last_live_at"],
        ingest_enabled=bool(row["ingest_enabled"]),
        has_avatar=bool(row["has_avatar"]),
        stream=stream,
        ladder_enabled=bool(row["ladder_enabled"]),
        ladder_rungs=_rungs(row["ladder_rungs"]),
        follower_count=row["follower_count"],
        category_slug=row["category_slug"],
    )


async def get_channel(db: Database, name: str) -> ChannelInfo | None:
    """The channel of user ``name`` (case-insensitive), with its open broadcast when live."""
    row = await db.fetchone(_CHANNEL_SELECT + "WHERE u.username = ?", (name.lower(),))
    return None if row is None else _channel(row)


async def get_channel_of_user(db: Database, user_id: int) -> ChannelInfo | None:
    row = await db.fetchone(_CHANNEL_SELECT + "WHERE c.user_id = ?", (user_id,))
    return None if row is None else _channel(row)


async def list_channels(
    db: Database,
    *,
    limit: int = 50,
    offset: int = 0,
    live_only: bool = False,
    viewers: Mapping[str, int] | None = None,
    category_id: int | None = None,
    tag: str | None = None,
) -> list[ChannelInfo]:
    """Channels, live first (the most watched first, by ``viewers``: name -> live viewer count),
    then most recently live, then by name. ``category_id`` keeps the channels of one category,
    ``tag`` (a normalised tag) the channels that carry it."""
    where = ["c.live = 1"] if live_only else []
    params: list[Any] = [json.dumps(dict(viewers or {}))]
    if category_id is not None:
        where.append("c.category_id = ?")
        params.append(category_id)
    if tag is not None:
        where.append("c.id IN (SELECT channel_id FROM channel_tags WHERE tag_key = ?)")
        params.append(tag_key(tag))
    # The page is ordered and cut on the cheap columns first; only its rows get the full select.
    order = "live DESC, watching DESC, last_live_at IS NULL, last_live_at DESC, name"
    rows = await db.fetchall(
        _CHANNEL_SELECT + f"JOIN (SELECT c.id AS hit, c.live AS live, {watching(db)} AS watching, "
        "c.last_live_at AS last_live_at, u.username AS name FROM channels c "
        "JOIN users u ON u.id = c.user_id "
        + ("WHERE " + " AND ".join(where) + " " if where else "")
        + f"ORDER BY {order} LIMIT ? OFFSET ?) m ON m.hit = c.id "
        + "ORDER BY "
        + ", ".join(f"m.{part}" for part in order.split(", ")),
        (*params, limit, offset),
    )
    return [_channel(row) for row in rows]


async def update_channel(db: Database, channel_id: int, changes: dict[str, Any]) -> None:
    """Set any of title, description (str), category_id (int or None), tags (list of tags
    already normalised by :func:`kitch.db.vocabulary.normalise_tag`), ladder_enabled (bool) and
    ladder_rungs (list of names from :data:`LADDER_RUNGS`)."""
    values: dict[str, Any] = {}
    for name in ("title", "description", "category_id"):
        if name in changes:
            values[name] = changes[name]
    if "tags" in changes:
        values["tags"] = json.dumps(changes["tags"])
    if "ladder_enabled" in changes:
        values["ladder_enabled"] = int(bool(changes["ladder_enabled"]))
    if "ladder_rungs" in changes:
        unknown = set(changes["ladder_rungs"]) - set(LADDER_RUNGS)
        if unknown:
            raise ValueError(f"unknown ladder rungs: {sorted(unknown)}")
        values["ladder_rungs"] = json.dumps(
            [name for name in LADDER_RUNGS if name in changes["ladder_rungs"]]
        )
    if not values:
        return
    assignments = ", ".join(f"{name} = ?" for name in values)  # names from the fixed list only
    async with db.transaction() as tx:
        await tx.execute(
            f"UPDATE channels SET {assignments} WHERE id = ?", [*values.values(), channel_id]
        )
        if "tags" in changes:  # the lookup keys go with the list, in the same transaction
            await tx.execute("DELETE FROM channel_tags WHERE channel_id = ?", (channel_id,))
            for key in dict.fromkeys(tag_key(tag) for tag in changes["tags"]):
                await tx.execute(
                    "INSERT INTO channel_tags (channel_id, tag_key) VALUES (?, ?)",
                    (channel_id, key),
                )
