"""Chat storage: messages (written in batches), moderators, bans and timeouts, room settings,
deleted messages and the moderation audit log (schema 5)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kitch.db import Database, Row, Transaction


@dataclass(frozen=True)
class StoredMessage:
    id: int
    user_id: int | None
    username: str
    display_name: str
    text: str
    created_at: float


@dataclass(frozen=True)
class RoomRecord:
    moderators: set[int]
    bans: dict[int, float | None]
    slow: int
    followers_only: int | None
    blocked_terms: list[str]


@dataclass(frozen=True)
class Action:
    """One storage action of a room, carried out in order with the others of its batch."""

    channel_id: int
    kind: str
    data: dict[str, Any]


_MESSAGE_SELECT = (
    "SELECT m.id, m.user_id, m.username, coalesce(u.display_name, m.username) AS display_name, "
    "m.text, m.created_at FROM chat_messages m LEFT JOIN users u ON u.id = m.user_id "
)


def _message(row: Row) -> StoredMessage:
    return StoredMessage(
        row["id"],
        row["user_id"],
        row["username"],
        row["display_name"],
        row["text"],
        row["created_at"],
    )


async def max_message_id(db: Database) -> int:
    row = await db.fetchone("SELECT coalesce(max(id), 0) FROM chat_messages")
    return int(row[0]) if row is not None else 0


async def load_room(db: Database, channel_id: int, now: float) -> RoomRecord:
    """Moderators, bans and timeouts still running, and the settings of a channel's room."""
    mods = await db.fetchall(
        "SELECT user_id FROM chat_moderators WHERE channel_id = ?", (channel_id,)
    )
    bans = await db.fetchall(
        "SELECT user_id, until FROM chat_bans "
        "WHERE channel_id = ? AND (until IS NULL OR until > ?)",
        (channel_id, now),
    )
    row = await db.fetchone(
        "SELECT slow_seconds, followers_only_seconds, blocked_terms FROM chat_settings "
        "WHERE channel_id = ?",
        (channel_id,),
    )
    return RoomRecord(
        moderators={r["user_id"] for r in mods},
        bans={r["user_id"]: r["until"] for r in bans},
        slow=int(row["slow_seconds"]) if row else 0,
        followers_only=row["followers_only_seconds"] if row else None,
        blocked_terms=list(json.loads(row["blocked_terms"])) if row else [],
    )


async def messages(
    db: Database,
    channel_id: int,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[StoredMessage]:
    """Messages not deleted, oldest first: the last ``limit`` before ``before``, or (with
    ``after``) the first ``limit`` after ``after``."""
    where = "WHERE m.channel_id = ? AND m.deleted_at IS NULL "
    params: list[Any] = [channel_id]
    if after is not None:
        rows = await db.fetchall(
            _MESSAGE_SELECT + where + "AND m.id > ? ORDER BY m.id LIMIT ?",
            (*params, after, limit),
        )
        return [_message(r) for r in rows]
    if before is not None:
        where += "AND m.id < ? "
        params.append(before)
    rows = await db.fetchall(
        _MESSAGE_SELECT + where + "ORDER BY m.id DESC LIMIT ?", (*params, limit)
    )
    return [_message(r) for r in reversed(rows)]


async def message_author(db: Database, channel_id: int, message_id: int) -> tuple[bool, int | None]:
    """``(found, user id)`` of a stored message of the channel."""
    row = await db.fetchone(
        "SELECT user_id FROM chat_messages WHERE id = ? AND channel_id = ?",
        (message_id, channel_id),
    )
    return (False, None) if row is None else (True, row["user_id"])


async def follow_time(db: Database, channel_id: int, user_id: int) -> float | None:
    """When ``user_id`` followed the channel (None: not a follower)."""
    row = await db.fetchone(
        "SELECT created_at FROM follows WHERE channel_id = ? AND follower_id = ?",
        (channel_id, user_id),
    )
    return float(row[0]) if row is not None else None


async def _apply(tx: Transaction, action: Action) -> None:
    cid, data = action.channel_id, action.data
    kind = action.kind
    if kind == "message":
        m = data["message"]
        await tx.execute(
            "INSERT INTO chat_messages (id, channel_id, user_id, username, text, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (m.id, cid, m.user_id, m.name, m.text, m.ts),
        )
    elif kind == "delete":
        await tx.execute(
            "UPDATE chat_messages SET deleted_at = ?, deleted_by = ? "
            "WHERE id = ? AND channel_id = ? AND deleted_at IS NULL",
            (data["ts"], data["by"], data["id"], cid),
        )
    elif kind == "clear":
        await tx.execute(
            "UPDATE chat_messages SET deleted_at = ?, deleted_by = ? "
            "WHERE channel_id = ? AND deleted_at IS NULL",
            (data["ts"], data["by"], cid),
        )
    elif kind == "ban":
        await tx.execute(
            "INSERT INTO chat_bans (channel_id, user_id, until, reason, by_user_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, user_id) DO UPDATE SET "
            "until = excluded.until, reason = excluded.reason, by_user_id = excluded.by_user_id, "
            "created_at = excluded.created_at",
            (cid, data["user_id"], data["until"], data["reason"], data["by"], data["ts"]),
        )
    elif kind == "unban":
        await tx.execute(
            "DELETE FROM chat_bans WHERE channel_id = ? AND user_id = ?", (cid, data["user_id"])
        )
    elif kind == "mod":
        await tx.execute(
            "INSERT INTO chat_moderators (channel_id, user_id, added_by, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (cid, data["user_id"], data["by"], data["ts"]),
        )
    elif kind == "unmod":
        await tx.execute(
            "DELETE FROM chat_moderators WHERE channel_id = ? AND user_id = ?",
            (cid, data["user_id"]),
        )
    elif kind == "settings":
        await tx.execute(
            "INSERT INTO chat_settings (channel_id, slow_seconds, followers_only_seconds, "
            "blocked_terms) VALUES (?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET "
            "slow_seconds = excluded.slow_seconds, "
            "followers_only_seconds = excluded.followers_only_seconds, "
            "blocked_terms = excluded.blocked_terms",
            (cid, data["slow"], data["followers_only"], json.dumps(data["blocked_terms"])),
        )
    elif kind == "audit":
        await tx.execute(
            "INSERT INTO chat_audit (channel_id, actor_id, action, target_id, message_id, reason, "
            "data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid,
                data["actor_id"],
                data["action"],
                data["target_id"],
                data["message_id"],
                data["reason"],
                json.dumps(data["data"]),
                data["ts"],
            ),
        )
    else:
        raise ValueError(f"unknown chat storage action {kind!r}")


async def write_batch(db: Database, actions: Iterable[Action]) -> None:
    """Carry out ``actions`` in order, in one transaction."""
    async with db.transaction() as tx:
        for action in actions:
            await _apply(tx, action)


async def audit_entries(
    db: Database, channel_id: int, *, before: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The channel's moderation log, newest first."""
    params: list[Any] = [channel_id]
    where = "WHERE a.channel_id = ? "
    if before is not None:
        where += "AND a.id < ? "
        params.append(before)
    rows = await db.fetchall(
        "SELECT a.id, a.action, a.message_id, a.reason, a.data, a.created_at, "
        "actor.username AS actor, target.username AS target FROM chat_audit a "
        "LEFT JOIN users actor ON actor.id = a.actor_id "
        "LEFT JOIN users target ON target.id = a.target_id " + where + "ORDER BY a.id DESC LIMIT ?",
        (*params, limit),
    )
    return [
        {
            "id": r["id"],
            "action": r["action"],
            "actor": r["actor"],
            "target": r["target"],
            "message_id": r["message_id"],
            "reason": r["reason"],
            "data": json.loads(r["data"]),
            "ts": r["created_at"],
        }
        for r in rows
    ]


async def current_bans(
    db: Database, channel_id: int, now: float, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The channel's running bans and timeouts, newest first: who (``user``, ``display_name``),
    ``until`` (None: a ban), ``reason``, ``by`` (the moderator's name; None once their account
    is gone) and ``ts`` (when)."""
    rows = await db.fetchall(
        "SELECT u.username AS user, u.display_name, b.until, b.reason, mod.username AS by, "
        "b.created_at FROM chat_bans b JOIN users u ON u.id = b.user_id "
        "LEFT JOIN users mod ON mod.id = b.by_user_id "
        "WHERE b.channel_id = ? AND (b.until IS NULL OR b.until > ?) "
        "ORDER BY b.created_at DESC, b.user_id LIMIT ?",
        (channel_id, now, limit),
    )
    return [
        {
            "user": r["user"],
            "display_name": r["display_name"] or r["user"],
            "until": r["until"],
            "reason": r["reason"],
            "by": r["by"],
            "ts": r["created_at"],
        }
        for r in rows
    ]
