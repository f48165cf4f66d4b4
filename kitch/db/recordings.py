"""Recording rows (past broadcasts) and the channel's recording switch.

The recorder's glue creates a row when a broadcast starts recording and updates it as segments
land and when it ends or stops; start-up closes rows a dead process left ``recording``; the
cleanup deletes expired rows (the caller removes their files).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kitch.db import Database, Row

#: Every state a recording row can be in.
STATES = ("recording", "ended", "stopped", "failed")
#: States anyone may see (with something to play); the owner also sees ``failed`` ones.
PUBLIC_STATES = ("recording", "ended", "stopped")


@dataclass(frozen=True)
class Recording:
    id: int
    channel_id: int
    channel: str  # the owner's username
    broadcast_id: int | None
    title: str
    state: str
    reason: str | None
    path: str
    started_at: float
    ended_at: float | None
    updated_at: float
    duration: float
    bytes: int
    segments: int

    @property
    def public(self) -> bool:
        """Whether anyone may see and play it (the owner sees every recording)."""
        return self.state in PUBLIC_STATES and self.segments > 0


_SELECT = (
    "SELECT r.*, u.username AS channel FROM recordings r "
    "JOIN channels c ON c.id = r.channel_id JOIN users u ON u.id = c.user_id "
)


def _recording(row: Row) -> Recording:
    return Recording(
        id=row["id"],
        channel_id=row["channel_id"],
        channel=row["channel"],
        broadcast_id=row["broadcast_id"],
        title=row["title"],
        state=row["state"],
        reason=row["reason"],
        path=row["path"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        updated_at=row["updated_at"],
        duration=row["duration"],
        bytes=row["bytes"],
        segments=row["segments"],
    )


async def recording_enabled(db: Database, channel_id: int) -> bool:
    """The channel's recording switch (an unknown channel: off)."""
    row = await db.fetchone("SELECT recording_enabled FROM channels WHERE id = ?", (channel_id,))
    return row is not None and bool(row["recording_enabled"])


async def set_recording_enabled(db: Database, channel_id: int, enabled: bool) -> None:
    await db.execute(
        "UPDATE channels SET recording_enabled = ? WHERE id = ?", (int(enabled), channel_id)
    )


async def create_recording(
    db: Database, channel_id: int, broadcast_id: int, path: str, *, now: float | None = None
) -> int:
    """A new row in state ``recording``, titled as the broadcast; returns its id."""
    at = time.time() if now is None else now
    return await db.insert(
        "INSERT INTO recordings (channel_id, broadcast_id, title, path, started_at, updated_at) "
        "SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), "
        "coalesce((SELECT title FROM broadcast_sessions WHERE id = ?), ''), CAST(? AS TEXT), "
        "CAST(? AS DOUBLE PRECISION), CAST(? AS DOUBLE PRECISION)",
        (channel_id, broadcast_id, broadcast_id, path, at, at),
    )


async def update_recording(
    db: Database,
    recording_id: int,
    *,
    state: str,
    reason: str | None,
    segments: int,
    size: int,
    duration: float,
    ended_at: float | None = None,
    now: float | None = None,
) -> None:
    """Store the recording's progress or its end (``ended_at`` given once it is over)."""
    if state not in STATES:
        raise ValueError(f"unknown recording state {state!r}")
    at = time.time() if now is None else now
    await db.execute(
        "UPDATE recordings SET state = ?, reason = ?, segments = ?, bytes = ?, duration = ?, "
        "ended_at = coalesce(?, ended_at), updated_at = ? WHERE id = ?",
        (state, reason, segments, size, duration, ended_at, at, recording_id),
    )


async def get_recording(db: Database, recording_id: int) -> Recording | None:
    row = await db.fetchone(_SELECT + "WHERE r.id = ?", (recording_id,))
    return None if row is None else _recording(row)


async def list_recordings(
    db: Database, channel_id: int, *, everything: bool, limit: int = 50, offset: int = 0
) -> list[Recording]:
    """The channel's recordings, newest first; without ``everything`` only the public ones."""
    where = "WHERE r.channel_id = ? "
    if not everything:
        where += f"AND r.segments > 0 AND r.state IN ({', '.join('?' * len(PUBLIC_STATES))}) "
    params: list[object] = [channel_id, *(() if everything else PUBLIC_STATES), limit, offset]
    rows = await db.fetchall(
        _SELECT + where + "ORDER BY r.started_at DESC, r.id DESC LIMIT ? OFFSET ?", params
    )
    return [_recording(row) for row in rows]


async def rename_recording(db: Database, recording_id: int, title: str) -> None:
    await db.execute("UPDATE recordings SET title = ? WHERE id = ?", (title, recording_id))


async def delete_recording(db: Database, recording_id: int) -> str | None:
    """Delete the row; returns its path (for the caller to remove the files), None if gone."""
    async with db.transaction() as tx:
        row = await tx.fetchone("SELECT path FROM recordings WHERE id = ?", (recording_id,))
        if row is None:
            return None
        await tx.execute("DELETE FROM recordings WHERE id = ?", (recording_id,))
    path: str = row["path"]
    return path


async def open_recordings(db: Database) -> list[Recording]:
    """Rows in state ``recording`` (at start-up: left by a process that died)."""
    rows = await db.fetchall(_SELECT + "WHERE r.state = 'recording' ORDER BY r.id")
    return [_recording(row) for row in rows]


async def finished_recordings(db: Database) -> list[Recording]:
    """Every recording no longer being written, oldest end first (the cleanup's input)."""
    rows = await db.fetchall(
        _SELECT + "WHERE r.state != 'recording' ORDER BY coalesce(r.ended_at, r.started_at), r.id"
    )
    return [_recording(row) for row in rows]


async def all_paths(db: Database) -> set[str]:
    rows = await db.fetchall("SELECT path FROM recordings")
    return {row["path"] for row in rows}


async def bytes_used(db: Database, channel_id: int | None = None) -> int:
    """Bytes on disk of every recording (or of one channel's)."""
    if channel_id is None:
        row = await db.fetchone("SELECT coalesce(sum(bytes), 0) FROM recordings")
    else:
        row = await db.fetchone(
            "SELECT coalesce(sum(bytes), 0) FROM recordings WHERE channel_id = ?", (channel_id,)
        )
    return int(row[0]) if row is not None else 0
