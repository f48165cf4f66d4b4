"""Follows and notifications: ``channels/{name}/follow``, ``me/following``,
``me/notifications`` (the live push is the events socket, :mod:`kitch.api.events`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.auth import _db, current_user
from kitch.api.bodies import get_bool, only_fields, read_json
from kitch.api.errors import ApiError, invalid, not_found
from kitch.api.events import Events
from kitch.api.routing import api_route
from kitch.api.thumbnails import thumbnail_url
from kitch.api.views import channel_json, hls_base, iso
from kitch.db import follows as db
from kitch.db import queries

MAX_NOTIFICATIONS = 100
#: Most ids one ``notifications/read`` may name.
MAX_READ_IDS = 500


def _events(request: Request) -> Events:
    events: Events = request.app.state.events
    return events


async def _follow(request: Request, following: bool) -> Response:
    user = await current_user(request)
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    if channel.user_id == user.id:
        raise ApiError(400, "cannot_follow_self", "you cannot follow your own channel")
    if following:
        await db.follow(_db(request), user.id, channel.id)
    else:
        await db.unfollow(_db(request), user.id, channel.id)
    _events(request).followed(user.id, channel.name, following)
    count = await db.follower_count(_db(request), channel.id)
    return JSONResponse({"following": following, "follower_count": count})


async def put_follow(request: Request) -> Response:
    """Follow the channel (idempotent); you cannot follow your own channel."""
    return await _follow(request, True)


async def delete_follow(request: Request) -> Response:
    """Stop following the channel (idempotent)."""
    return await _follow(request, False)


async def get_following(request: Request) -> Response:
    """The channels the signed-in user follows, live ones first."""
    user = await current_user(request)
    count = _events(request).viewer_count
    channels = await db.following_channels(_db(request), user.id)
    pictures = request.app.state.thumbnails
    base = hls_base(request)
    return JSONResponse(
        {
            "channels": [
                channel_json(
                    c,
                    following=True,
                    viewers=count(c.name),
                    thumbnail_url=thumbnail_url(pictures, c.name, c.id),
                    hls_base=base,
                )
                for c in channels
            ]
        },
        headers={"Cache-Control": "no-store"},
    )


def notification_json(note: db.Notification) -> dict[str, Any]:
    data = {
        "id": note.id,
        "kind": note.kind,
        "channel": note.channel,
        "title": note.data.get("title", ""),
        "broadcast_id": note.broadcast_id,
        "created_at": iso(note.created_at),
        "read": note.read_at is not None,
    }
    if note.schedule_id is not None:
        starts_at = note.data.get("starts_at")
        data["schedule_id"] = note.schedule_id
        data["starts_at"] = iso(starts_at) if isinstance(starts_at, int | float) else None
    return data


async def get_notifications(request: Request) -> Response:
    """The signed-in user's notifications, newest first (``limit`` <= 100), and the unread
    count."""
    user = await current_user(request)
    raw = request.query_params.get("limit", "50")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= 100:
        raise invalid(f"limit must be an integer between 1 and {MAX_NOTIFICATIONS}")
    notes, unread = await db.list_notifications(_db(request), user.id, limit=int(raw))
    return JSONResponse(
        {"notifications": [notification_json(n) for n in notes], "unread": unread},
        headers={"Cache-Control": "no-store"},
    )


async def read_notifications(request: Request) -> Response:
    """Mark notifications read: ``{"ids": [int, ...]}`` or ``{"all": true}``."""
    user = await current_user(request)
    body = await read_json(request)
    only_fields(body, {"ids", "all"})
    every = get_bool(body, "all")
    ids = body.get("ids")
    if every == (ids is not None):
        raise invalid('send either {"ids": [...]} or {"all": true}')
    if ids is not None and (
        not isinstance(ids, list)
        or len(ids) > MAX_READ_IDS
        or not all(type(i) is int and 0 < i < 2**62 for i in ids)
    ):
        raise invalid(f"ids must be a list of at most {MAX_READ_IDS} notification ids")
    await db.mark_read(_db(request), user.id, None if every else ids)
    _, unread = await db.list_notifications(_db(request), user.id, limit=0)
    return JSONResponse({"unread": unread})


def routes() -> list[BaseRoute]:
    return [
        api_route("/channels/{name}/follow", PUT=put_follow, DELETE=delete_follow),
        api_route("/me/following", GET=get_following),
        api_route("/me/notifications", GET=get_notifications),
        api_route("/me/notifications/read", POST=read_notifications),
    ]
