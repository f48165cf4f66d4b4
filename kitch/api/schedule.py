"""Scheduled streams: ``/api/v1/channels/{name}/schedule*``, ``/api/v1/schedule/upcoming`` and
the iCalendar feed ``/channels/{name}/schedule.ics``. See docs/SCHEDULE.md.

A start is sent as ISO 8601 with an offset (the instant) or without one (a wall-clock time in
``timezone``); ``timezone`` (an IANA name) is stored and used to show the start and to write
the feed. The rules are :mod:`kitch.schedule.rules`; the follower notifications are sent by
:mod:`kitch.api.reminders`.
"""

from __future__ import annotations

import asyncio
import math
import time
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from kitch.api.auth import _db, _settings
from kitch.api.bodies import get_text, only_fields, read_json
from kitch.api.channels import _managed_channel
from kitch.api.errors import ApiError, invalid, not_found
from kitch.api.routing import api_route
from kitch.api.views import avatar_url, iso
from kitch.db import queries
from kitch.db import schedule as db
from kitch.schedule import ical, rules
from kitch.schedule.rules import ScheduleError

#: Most streams per channel, cancelled ones included, that have not ended yet (so cancelling
#: and scheduling again cannot grow the table without bound).
MAX_AHEAD_ROWS = 4 * rules.MAX_UPCOMING
#: How far back the iCalendar feed reaches (ended and cancelled streams stay this long, so a
#: subscribed calendar sees a cancellation).
FEED_PAST = timedelta(days=30)
UPCOMING_LIMIT = 20
MAX_UPCOMING_LIMIT = 50

_zones: dict[str, zoneinfo.ZoneInfo] = {}
_known: frozenset[str] | None = None


def _load_zone(name: str) -> zoneinfo.ZoneInfo:
    """Runs in a thread: reads the tz database (the zone list once, then the zone's file)."""
    global _known
    if _known is None:
        _known = frozenset(zoneinfo.available_timezones())
    if name not in _known:
        raise ScheduleError(
            "unknown_time_zone",
            "timezone must be an IANA time zone name such as Europe/Paris "
            "(the server's time zone database does not know this one)",
        )
    return zoneinfo.ZoneInfo(name)


async def load_zone(name: object) -> zoneinfo.ZoneInfo:
    """The zone called ``name`` (cached; the first look-up reads files in a thread)."""
    key = rules.check_zone_name(name)
    zone = _zones.get(key)
    if zone is None:
        zone = await asyncio.to_thread(_load_zone, key)
        _zones[key] = zone
    return zone


async def _zone_or_utc(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return await load_zone(name)
    except ScheduleError:  # the tz database lost a zone after it was stored: show UTC
        return None


def _refused(exc: ScheduleError) -> ApiError:
    return ApiError(422, exc.code, exc.message)


def schedule_json(s: db.ScheduledStream, zone: zoneinfo.ZoneInfo | None) -> dict[str, Any]:
    start = datetime.fromtimestamp(s.starts_at, UTC)
    return {
        "id": s.id,
        "channel": {
            "name": s.channel,
            "display_name": s.display_name or s.channel,
            "avatar_url": avatar_url(s.channel, s.has_avatar),
            "live": s.channel_live,
        },
        "title": s.title,
        "category": s.category,
        "starts_at": iso(s.starts_at),
        "ends_at": iso(s.ends_at),
        "starts_at_local": rules.wall_text(start.astimezone(zone) if zone else start),
        "timezone": s.timezone,
        "duration_minutes": s.duration // 60,
        "status": s.status,
        "broadcast_id": s.broadcast_id,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
    }


async def _listing(streams: list[db.ScheduledStream]) -> list[dict[str, Any]]:
    zones = {name: await _zone_or_utc(name) for name in {s.timezone for s in streams}}
    return [schedule_json(s, zones[s.timezone]) for s in streams]


def _changed(request: Request) -> None:
    """Tell the reminder task the schedule changed (it re-plans its next wake-up)."""
    reminders = getattr(request.app.state, "reminders", None)
    if reminders is not None:
        reminders.changed()


async def _fields(body: dict[str, Any], current: db.ScheduledStream | None) -> dict[str, Any]:
    """The checked fields of a create (``current`` None) or an edit."""
    only_fields(body, {"title", "category", "starts_at", "timezone", "duration_minutes"})
    fields: dict[str, Any] = {}
    title = get_text(body, "title", max_len=140)
    if title is not None:
        if not title:
            raise invalid("title must not be empty")
        fields["title"] = title
    elif current is None:
        raise invalid("title is required")
    category = get_text(body, "category", max_len=50)
    if category is not None:
        fields["category"] = category
    try:
        if "timezone" in body:
            zone_name = rules.check_zone_name(body["timezone"])
            fields["timezone"] = zone_name
        elif current is None:
            raise ScheduleError(
                "unknown_time_zone", "timezone is required (an IANA name such as Europe/Paris)"
            )
        else:
            zone_name = current.timezone
        if "starts_at" in body:
            start = rules.parse_start(body["starts_at"], await load_zone(zone_name))
            rules.check_start(start, datetime.now(UTC))
            fields["starts_at"] = start.timestamp()
        elif current is None:
            raise ScheduleError("invalid_start", "starts_at is required")
        elif "timezone" in body:
            await load_zone(zone_name)  # a new zone for the same instant: it must exist
        if "duration_minutes" in body:
            fields["duration"] = 60 * rules.check_duration(body["duration_minutes"])
        elif current is None:
            fields["duration"] = 60 * rules.DEFAULT_DURATION_MINUTES
    except ScheduleError as exc:
        raise _refused(exc) from None
    return fields


def _schedule_id(request: Request) -> int:
    raw = request.path_params["schedule_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise not_found("no such scheduled stream")
    return int(raw)


async def _owned_stream(request: Request) -> db.ScheduledStream:
    """The path's scheduled stream, for the channel's owner (or an admin)."""
    channel = await _managed_channel(request)
    found = await db.get(_db(request), _schedule_id(request))
    if found is None or found.channel_id != channel.id:
        raise not_found("no such scheduled stream")
    return found


async def get_schedule(request: Request) -> Response:
    """The channel's scheduled streams that have not ended, soonest first (public)."""
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    streams = await db.channel_upcoming(_db(request), channel.id, time.time())
    return JSONResponse(
        {
            "schedule": await _listing(streams),
            "ics_url": f"/channels/{channel.name}/schedule.ics",
        }
    )


async def create_schedule(request: Request) -> Response:
    """Schedule a stream (owner): title, category, starts_at, timezone, duration_minutes."""
    channel = await _managed_channel(request)
    body = await read_json(request)
    fields = await _fields(body, None)
    now = time.time()
    if await db.count_ahead(_db(request), channel.id, now) >= MAX_AHEAD_ROWS:
        raise ApiError(
            409,
            "too_many_scheduled",
            f"this channel has {MAX_AHEAD_ROWS} scheduled or cancelled streams ahead; wait for "
            "some to pass",
        )
    created = await db.create(
        _db(request), channel.id, fields, now=now, max_upcoming=rules.MAX_UPCOMING
    )
    if created is None:
        raise ApiError(
            409,
            "too_many_scheduled",
            f"a channel can have at most {rules.MAX_UPCOMING} upcoming scheduled streams; "
            "cancel one first",
        )
    _changed(request)
    zone = await _zone_or_utc(created.timezone)
    return JSONResponse(schedule_json(created, zone), status_code=201)


async def patch_schedule(request: Request) -> Response:
    """Change a scheduled stream that has not started (owner); any of the create fields."""
    current = await _owned_stream(request)
    if current.status == db.CANCELLED:
        raise ApiError(409, "cancelled", "this scheduled stream was cancelled")
    if current.starts_at <= time.time():
        raise ApiError(409, "already_started", "this scheduled stream has started already")
    body = await read_json(request)
    fields = await _fields(body, current)
    updated = await db.update(_db(request), current.id, fields, now=time.time())
    if updated is None:
        raise not_found("no such scheduled stream")
    _changed(request)
    return JSONResponse(schedule_json(updated, await _zone_or_utc(updated.timezone)))


async def cancel_schedule(request: Request) -> Response:
    """Cancel a scheduled stream (owner; idempotent). It stays in the iCalendar feed as
    cancelled."""
    current = await _owned_stream(request)
    cancelled = await db.cancel(_db(request), current.id, now=time.time())
    if cancelled is None:
        raise not_found("no such scheduled stream")
    _changed(request)
    return JSONResponse(schedule_json(cancelled, await _zone_or_utc(cancelled.timezone)))


def _cursor(raw: str | None) -> tuple[float, int] | None:
    if raw is None:
        return None
    when, _, ident = raw.partition("_")
    try:
        start, number = float(when), int(ident)
    except ValueError:
        raise invalid("cursor must be a next_cursor this route answered") from None
    if not math.isfinite(start) or len(raw) > 40:
        raise invalid("cursor must be a next_cursor this route answered")
    return start, number


async def upcoming_schedule(request: Request) -> Response:
    """Every channel's scheduled streams that have not ended, soonest first (public; paged by
    ``limit`` and ``cursor``, the ``next_cursor`` of the page before)."""
    raw = request.query_params.get("limit", str(UPCOMING_LIMIT))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not (
        1 <= int(raw) <= MAX_UPCOMING_LIMIT
    ):
        raise invalid(f"limit must be an integer between 1 and {MAX_UPCOMING_LIMIT}")
    limit = int(raw)
    after = _cursor(request.query_params.get("cursor"))
    streams = await db.upcoming(_db(request), time.time(), after=after, limit=limit)
    last = streams[-1] if len(streams) == limit else None
    return JSONResponse(
        {
            "schedule": await _listing(streams),
            "next_cursor": None if last is None else f"{last.starts_at!r}_{last.id}",
        }
    )


def _site(request: Request) -> tuple[str, str]:
    """``(host, base URL)`` for the feed's UIDs and links: --public-url's, else the request's."""
    public = _settings(request).public_url
    if public:
        parts = urlsplit(public)
        return parts.hostname or "kitch", public.rstrip("/")
    host = request.url.hostname or "kitch"
    return host, f"{request.url.scheme}://{request.url.netloc}"


async def schedule_ics(request: Request) -> Response:
    """The channel's schedule as an iCalendar feed (RFC 5545): upcoming streams, and those of
    the last 30 days (cancelled ones as STATUS:CANCELLED)."""
    name = request.path_params["name"]
    channel = await queries.get_channel(_db(request), name)
    if channel is None:
        return PlainTextResponse("no such channel", status_code=404)
    now = time.time()
    streams = await db.feed(_db(request), channel.id, now - FEED_PAST.total_seconds())
    zones = {}
    for zone_name in {s.timezone for s in streams}:
        zone = await _zone_or_utc(zone_name)
        if zone is not None:
            zones[zone_name] = zone
    host, base = _site(request)
    display = channel.display_name or channel.name
    events = [
        ical.Event(
            uid=f"schedule-{s.id}@{host}",
            stamp=datetime.fromtimestamp(s.updated_at, UTC),
            start=datetime.fromtimestamp(s.starts_at, UTC),
            zone=s.timezone if s.timezone in zones else "UTC",
            minutes=s.duration // 60,
            summary=s.title,
            description=f"{display} streams on Kitch: {base}/{channel.name}",
            categories=(s.category,) if s.category else (),
            url=f"{base}/{channel.name}",
            cancelled=s.status == db.CANCELLED,
            sequence=s.sequence,
            created=datetime.fromtimestamp(s.created_at, UTC),
        )
        for s in streams
    ]
    body = await asyncio.to_thread(ical.calendar, events, zones, name=f"{display} on Kitch")
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=60",
            "Content-Disposition": f'inline; filename="{channel.name}.ics"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def routes() -> list[BaseRoute]:
    return [
        api_route("/channels/{name}/schedule", GET=get_schedule, POST=create_schedule),
        api_route(
            "/channels/{name}/schedule/{schedule_id}",
            PATCH=patch_schedule,
            DELETE=cancel_schedule,
        ),
        api_route("/schedule/upcoming", GET=upcoming_schedule),
    ]


def feed_routes() -> list[BaseRoute]:
    """Outside ``/api``: the iCalendar feed calendars subscribe to."""
    return [Route("/channels/{name}/schedule.ics", schedule_ics, methods=["GET", "HEAD"])]
