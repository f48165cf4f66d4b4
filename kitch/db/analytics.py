"""A streamer's broadcasts in figures: duration, viewers, chat messages and new followers.

API::

    await broadcasts(db, channel_id, now=..., limit=20)     # BroadcastStats list, newest first
    await broadcast(db, channel_id, broadcast_id, now=...)  # (BroadcastStats, series) or None

Viewers come from the samples the events side stores with each broadcast
(:func:`kitch.db.follows.record_viewers`: ``metadata.viewers = {"peak", "series"}``, one
``[unix time, viewers]`` sample per tick); the average is the mean of the samples. Chat messages
are those posted on the channel between the broadcast's start and end (deleted ones too: they
were sent); new followers are the follows made in that span that still exist (an unfollow
deletes the follow).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kitch.db import Database, Row


@dataclass(frozen=True)
class BroadcastStats:
    id: int
    title: str
    started_at: float
    ended_at: float | None
    end_reason: str | None
    peak_viewers: int
    average_viewers: float | None
    samples: int
    chat_messages: int
    new_followers: int
    schedule_id: int | None
    schedule_title: str | None

    def duration(self, now: float) -> float:
        """Seconds from start to end (to ``now`` while live)."""
        return max(0.0, (self.ended_at if self.ended_at is not None else now) - self.started_at)


#: The viewer figures out of the metadata JSON, per dialect: peak, average, samples.
_VIEWERS = {
    "sqlite": (
        "coalesce(json_extract(b.metadata, '$.viewers.peak'), 0) AS peak, "
        "(SELECT avg(json_extract(v.value, '$[1]')) "
        "FROM json_each(b.metadata, '$.viewers.series') v) AS average, "
        "coalesce(json_array_length(b.metadata, '$.viewers.series'), 0) AS samples, "
    ),
    "postgresql": (
        "coalesce((CAST(b.metadata AS jsonb) #>> '{viewers,peak}')::numeric, 0) AS peak, "
        "(SELECT avg((v ->> 1)::numeric) FROM jsonb_array_elements(CASE WHEN "
        "jsonb_typeof(CAST(b.metadata AS jsonb) #> '{viewers,series}') = 'array' "
        "THEN CAST(b.metadata AS jsonb) #> '{viewers,series}' ELSE '[]' END) v) AS average, "
        "coalesce(CASE WHEN jsonb_typeof(CAST(b.metadata AS jsonb) #> '{viewers,series}') = "
        "'array' THEN jsonb_array_length(CAST(b.metadata AS jsonb) #> '{viewers,series}') END, 0)"
        " AS samples, "
    ),
}
#: The viewer samples (a JSON text) of one broadcast, per dialect.
_SERIES = {
    "sqlite": "json_extract(metadata, '$.viewers.series')",
    "postgresql": "CAST(metadata AS jsonb) #>> '{viewers,series}'",
}

_SELECT = (
    "SELECT b.id, b.title, b.started_at, b.ended_at, b.end_reason, {viewers}"
    "(SELECT count(*) FROM chat_messages m WHERE m.channel_id = b.channel_id "
    "AND m.created_at >= b.started_at AND m.created_at < coalesce(b.ended_at, ?)) AS chat, "
    "(SELECT count(*) FROM follows f WHERE f.channel_id = b.channel_id "
    "AND f.created_at >= b.started_at AND f.created_at < coalesce(b.ended_at, ?)) AS followers, "
    "s.id AS schedule_id, s.title AS schedule_title "
    "FROM broadcast_sessions b LEFT JOIN scheduled_streams s ON s.broadcast_id = b.id "
)


def _select(db: Database) -> str:
    return _SELECT.format(viewers=_VIEWERS[db.dialect])


def _stats(row: Row) -> BroadcastStats:
    average = row["average"]
    return BroadcastStats(
        id=row["id"],
        title=row["title"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        peak_viewers=int(row["peak"]),
        average_viewers=None if average is None else float(average),
        samples=int(row["samples"]),
        chat_messages=int(row["chat"]),
        new_followers=int(row["followers"]),
        schedule_id=row["schedule_id"],
        schedule_title=row["schedule_title"],
    )


async def broadcasts(
    db: Database, channel_id: int, *, now: float, limit: int = 20
) -> list[BroadcastStats]:
    """The channel's last ``limit`` broadcasts, newest first."""
    rows = await db.fetchall(
        _select(db) + "WHERE b.channel_id = ? ORDER BY b.id DESC LIMIT ?",
        (now, now, channel_id, limit),
    )
    return [_stats(row) for row in rows]


async def broadcast(
    db: Database, channel_id: int, broadcast_id: int, *, now: float
) -> tuple[BroadcastStats, list[tuple[float, int]]] | None:
    """One broadcast of the channel and its viewer samples ``[(unix time, viewers), ...]``;
    None when the channel has no such broadcast."""
    row = await db.fetchone(
        _select(db) + "WHERE b.channel_id = ? AND b.id = ?", (now, now, channel_id, broadcast_id)
    )
    if row is None:
        return None
    found = await db.fetchone(
        f"SELECT {_SERIES[db.dialect]} FROM broadcast_sessions WHERE id = ?",
        (broadcast_id,),
    )
    series: list[tuple[float, int]] = []
    if found is not None and found[0]:
        try:
            raw = json.loads(found[0])
        except ValueError:
            raw = []
        for item in raw if isinstance(raw, list) else []:
            if (
                isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], int | float)
                and isinstance(item[1], int)
            ):
                series.append((float(item[0]), item[1]))
    return _stats(row), series
