"""``/api/v1/channels*`` and public user avatars."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.auth import _db, current_user, optional_user
from kitch.api.bodies import get_bool, get_text, only_fields, read_json
from kitch.api.errors import ApiError, invalid, not_found
from kitch.api.routing import api_route
from kitch.api.thumbnails import thumbnail_url
from kitch.api.views import channel_json, hls_base
from kitch.db import queries
from kitch.db.discovery import find_category
from kitch.db.follows import is_following
from kitch.db.users import User, get_avatar
from kitch.db.vocabulary import MAX_TAGS, normalise_tag, tag_key

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

#: What the server passes to create_app as ``health``: the live health document of a channel
#: (by name), or None when it is not live.
HealthProvider = Callable[[str], dict[str, Any] | None]


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # isdigit() alone accepts "²" and 5000-digit strings, which int() refuses (a 500).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) > maximum:
        raise invalid(f"{name} must be an integer between 0 and {maximum}")
    return int(raw)


async def list_channels(request: Request) -> Response:
    """Channels, live first and the most watched first, then the most recently live
    (``?live=true`` for live only; ``limit`` <= 100, ``offset``)."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 1_000_000)
    live = request.query_params.get("live", "false").lower()
    if live not in ("true", "false", "1", "0"):
        raise invalid("live must be true or false")
    events = request.app.state.events
    viewers = {name: events.viewer_count(name) or 0 for name in list(events.live)}
    channels = await queries.list_channels(
        _db(request),
        limit=limit,
        offset=offset,
        live_only=live in ("true", "1"),
        viewers=viewers,
    )
    return JSONResponse({"channels": listed(request, channels)})


def listed(request: Request, channels: Sequence[queries.ChannelInfo]) -> list[dict[str, Any]]:
    """Channels as the lists show them (browse, categories, tags, search): each with its
    viewer count and thumbnail."""
    count = request.app.state.events.viewer_count
    pictures = request.app.state.thumbnails
    base = hls_base(request)
    return [
        channel_json(
            c,
            viewers=count(c.name),
            thumbnail_url=thumbnail_url(pictures, c.name, c.id),
            hls_base=base,
        )
        for c in channels
    ]


def _manages(user: User | None, channel: queries.ChannelInfo) -> bool:
    return user is not None and (user.id == channel.user_id or user.is_admin)


async def get_channel(request: Request) -> Response:
    """One channel; ``live`` true|false and, while live, ``stream`` with start time and stats.

    Its owner (or an admin) also sees the ``ladder`` settings.
    """
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    try:
        viewer = await optional_user(request)
    except ApiError:
        viewer = None  # a stale token on a public page: answer what anyone sees
    following = None if viewer is None else await is_following(_db(request), viewer.id, channel.id)
    return JSONResponse(
        channel_json(
            channel,
            manager=_manages(viewer, channel),
            following=following,
            viewers=request.app.state.events.viewer_count(channel.name),
            thumbnail_url=thumbnail_url(request.app.state.thumbnails, channel.name, channel.id),
            hls_base=hls_base(request),
        )
    )


async def _managed_channel(request: Request) -> queries.ChannelInfo:
    """The channel of the path for its owner or an admin (401 signed out, 403 others, 404)."""
    user = await current_user(request)
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    if not _manages(user, channel):
        raise ApiError(403, "forbidden", "only the channel owner may change it")
    return channel


def _tags(value: Any) -> list[str]:
    """The tags of a PATCH, normalised (:func:`kitch.db.vocabulary.normalise_tag`); a tag that
    matches an earlier one (ignoring case) is dropped."""
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise invalid(f"tags must be a list of at most {MAX_TAGS} strings")
    tags: dict[str, str] = {}
    for position, item in enumerate(value, 1):
        if not isinstance(item, str) or len(item) > 1000:
            raise invalid(f"tag {position} must be a string of at most 25 characters")
        tag, problem = normalise_tag(item)
        if tag is None:
            raise invalid(f"tag {position} {problem}")
        tags.setdefault(tag_key(tag), tag)
    return list(tags.values())


async def _category_id(request: Request, value: Any) -> int | None:
    """A PATCH's ``category``: a category's slug or name, or null / "" for none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise invalid("category must be a category's slug or name, or null")
    found = await find_category(_db(request), value)
    if found is None:
        raise invalid("category is not in the list (see GET /api/v1/categories)")
    return found.id


def _ladder(value: Any) -> dict[str, Any]:
    """``{"enabled": bool, "rungs": [names]}`` (either may be left out) -> update_channel's
    ``ladder_enabled`` / ``ladder_rungs``."""
    if not isinstance(value, dict):
        raise invalid('ladder must be an object like {"enabled": true, "rungs": ["720p"]}')
    unknown = sorted(set(value) - {"enabled", "rungs"})
    if unknown:
        raise invalid(f"unknown ladder field(s): {', '.join(unknown)[:200]}")
    changes: dict[str, Any] = {}
    if "enabled" in value:
        changes["ladder_enabled"] = get_bool(value, "enabled")
    if "rungs" in value:
        rungs = value["rungs"]
        known = ", ".join(queries.LADDER_RUNGS)
        if not isinstance(rungs, list) or not all(
            isinstance(r, str) and r in queries.LADDER_RUNGS for r in rungs
        ):
            raise invalid(f"ladder rungs must be a list of names from: {known}")
        if len(set(rungs)) != len(rungs):
            raise invalid("ladder rungs must not repeat a name")
        changes["ladder_rungs"] = rungs
    return changes


async def patch_channel(request: Request) -> Response:
    """Owner (or admin) changes title, description, category, tags, ladder (next broadcast).

    ``category`` is a category's slug or name from ``GET categories`` (null or "" for none);
    ``tags`` a list of at most 10 tags (see docs/DISCOVERY.md for the rules). Title, category
    and tag changes reach the channel's viewers at once (the events socket). The ``ladder``
    settings are read when a broadcast starts: a change reaches viewers at the streamer's next
    broadcast, never in the middle of one.
    """
    channel = await _managed_channel(request)
    body = await read_json(request)
    only_fields(body, {"title", "description", "category", "tags", "ladder"})
    changes: dict[str, Any] = {}
    for name, max_len, multiline in (("title", 140, False), ("description", 2000, True)):
        value = get_text(body, name, max_len=max_len, multiline=multiline)
        if value is not None:
            changes[name] = value
    if "category" in body:
        changes["category_id"] = await _category_id(request, body["category"])
    if "tags" in body:
        changes["tags"] = _tags(body["tags"])
    if "ladder" in body:
        changes.update(_ladder(body["ladder"]))
    await queries.update_channel(_db(request), channel.id, changes)
    updated = await queries.get_channel(_db(request), channel.name)
    assert updated is not None
    if (updated.title, updated.category, updated.tags) != (
        channel.title,
        channel.category,
        channel.tags,
    ):
        request.app.state.events.channel_changed(
            updated.name,
            updated.title,
            updated.category,
            tags=updated.tags if updated.tags != channel.tags else None,
        )
    return JSONResponse(
        channel_json(
            updated,
            manager=True,
            viewers=request.app.state.events.viewer_count(updated.name),
            thumbnail_url=thumbnail_url(request.app.state.thumbnails, updated.name, updated.id),
            hls_base=hls_base(request),
        )
    )


async def channel_health(request: Request) -> Response:
    """Live stream health (owner or admin); {"live": false} while the channel is not live.

    Ingest figures, the ladder's state (and why it is not running), and each rendition's encode
    speed, dropped frames, restarts, CPU seconds and bytes held.
    """
    channel = await _managed_channel(request)
    provider: HealthProvider | None = request.app.state.health
    document = None if provider is None else provider(channel.name)
    return JSONResponse(
        {"live": False} if document is None else document, headers={"Cache-Control": "no-store"}
    )


async def user_avatar(request: Request) -> Response:
    """A user's avatar image (404 when none)."""
    found = await get_avatar(_db(request), request.path_params["name"])
    if found is None:
        raise not_found("no avatar")
    media_type, data, updated_at = found
    return Response(
        data,
        media_type=media_type,
        headers={
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
            "ETag": f'"{int(updated_at * 1000)}"',
        },
    )


def routes() -> list[BaseRoute]:
    return [
        api_route("/channels", GET=list_channels),
        api_route("/channels/{name}", GET=get_channel, PATCH=patch_channel),
        api_route("/channels/{name}/health", GET=channel_health),
        api_route("/users/{name}/avatar", GET=user_avatar),
    ]
