"""``/api/v1/me/analytics*``: the signed-in streamer's broadcasts in figures (owner only).

Per broadcast: duration, peak and average viewers (from the viewer samples the events side
keeps: :mod:`kitch.api.events`), chat messages posted during it, new followers during it, and
the scheduled stream it was linked to. While a broadcast is live its viewer figures come from
memory (the stored copy is written once a minute). See docs/SCHEDULE.md.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.auth import _db, current_user
from kitch.api.errors import invalid, not_found
from kitch.api.events import Events, LiveChannel
from kitch.api.routing import api_route
from kitch.api.views import iso
from kitch.db import analytics as db
from kitch.db import queries

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _live(request: Request, name: str, broadcast_id: int) -> LiveChannel | None:
    events: Events = request.app.state.events
    found = events.live.get(name)
    return found if found is not None and found.broadcast_id == broadcast_id else None


def stats_json(stats: db.BroadcastStats, now: float, live: LiveChannel | None) -> dict[str, Any]:
    peak, average, samples = stats.peak_viewers, stats.average_viewers, stats.samples
    if live is not None and live.series:
        peak = max(peak, live.peak)
        samples = len(live.series)
        average = sum(n for _, n in live.series) / samples
    return {
        "id": stats.id,
        "title": stats.title,
        "started_at": iso(stats.started_at),
        "ended_at": iso(stats.ended_at),
        "live": stats.ended_at is None,
        "duration_seconds": round(stats.duration(now), 1),
        "peak_viewers": peak,
        "average_viewers": None if average is None else round(average, 2),
        "viewer_samples": samples,
        "chat_messages": stats.chat_messages,
        "new_followers": stats.new_followers,
        "schedule": None
        if stats.schedule_id is None
        else {"id": stats.schedule_id, "title": stats.schedule_title or ""},
    }


async def _channel(request: Request) -> queries.ChannelInfo:
    user = await current_user(request)
    channel = await queries.get_channel_of_user(_db(request), user.id)
    if channel is None:
        raise not_found("you have no channel")
    return channel


async def my_analytics(request: Request) -> Response:
    """Your last broadcasts (``limit`` <= 100, default 20), newest first, with their figures."""
    channel = await _channel(request)
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid(f"limit must be an integer between 1 and {MAX_LIMIT}")
    now = time.time()
    found = await db.broadcasts(_db(request), channel.id, now=now, limit=int(raw))
    return JSONResponse(
        {"broadcasts": [stats_json(s, now, _live(request, channel.name, s.id)) for s in found]}
    )


async def broadcast_analytics(request: Request) -> Response:
    """One of your broadcasts: its figures and its viewers over time (one sample per viewer
    tick: ``{"t": Unix seconds, "viewers"}``)."""
    channel = await _channel(request)
    raw = request.path_params["broadcast_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise not_found("no such broadcast")
    now = time.time()
    found = await db.broadcast(_db(request), channel.id, int(raw), now=now)
    if found is None:
        raise not_found("no such broadcast")
    stats, series = found
    live = _live(request, channel.name, stats.id)
    if live is not None and live.series:
        series = list(live.series)
    return JSONResponse(
        {
            "broadcast": stats_json(stats, now, live),
            "viewers": [{"t": round(t, 1), "viewers": n} for t, n in series],
            "tick_seconds": request.app.state.events.tick,
        }
    )


def routes() -> list[BaseRoute]:
    return [
        api_route("/me/analytics", GET=my_analytics),
        api_route("/me/analytics/{broadcast_id}", GET=broadcast_analytics),
    ]
