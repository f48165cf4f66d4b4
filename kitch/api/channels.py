"""``/api/v1/channels*`` and public user avatars."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.auth import _db, current_user
from kitch.api.bodies import get_text, only_fields, read_json
from kitch.api.errors import ApiError, invalid, not_found
from kitch.api.routing import api_route
from kitch.api.views import channel_json
from kitch.auth.names import text_problem
from kitch.db import queries
from kitch.db.users import get_avatar

MAX_TAGS = 10
MAX_TAG_LENGTH = 25
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # isdigit() alone accepts "²" and 5000-digit strings, which int() refuses (a 500).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) > maximum:
        raise invalid(f"{name} must be an integer between 0 and {maximum}")
    return int(raw)


async def list_channels(request: Request) -> Response:
    """Channels, live first (``?live=true`` for live only; ``limit`` <= 100, ``offset``)."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 1_000_000)
    live = request.query_params.get("live", "false").lower()
    if live not in ("true", "false", "1", "0"):
        raise invalid("live must be true or false")
    channels = await queries.list_channels(
        _db(request), limit=limit, offset=offset, live_only=live in ("true", "1")
    )
    return JSONResponse({"channels": [channel_json(c) for c in channels]})


async def get_channel(request: Request) -> Response:
    """One channel; ``live`` true|false and, while live, ``stream`` with start time and stats."""
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    return JSONResponse(channel_json(channel))


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise invalid(f"tags must be a list of at most {MAX_TAGS} strings")
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise invalid("tags must be strings")
        tag = item.strip()
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise invalid(f"each tag must be 1-{MAX_TAG_LENGTH} characters")
        problem = text_problem(tag)
        if problem is not None:
            raise invalid(f"tags {problem}")
        if tag.lower() not in (t.lower() for t in tags):
            tags.append(tag)
    return tags


async def patch_channel(request: Request) -> Response:
    """Owner (or admin) changes title, description, category and/or tags."""
    user = await current_user(request)
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    if channel.user_id != user.id and not user.is_admin:
        raise ApiError(403, "forbidden", "only the channel owner may change it")
    body = await read_json(request)
    only_fields(body, {"title", "description", "category", "tags"})
    changes: dict[str, Any] = {}
    for name, max_len, multiline in (
        ("title", 140, False),
        ("description", 2000, True),
        ("category", 50, False),
    ):
        value = get_text(body, name, max_len=max_len, multiline=multiline)
        if value is not None:
            changes[name] = value
    if "tags" in body:
        changes["tags"] = _tags(body["tags"])
    await queries.update_channel(_db(request), channel.id, changes)
    updated = await queries.get_channel(_db(request), channel.name)
    assert updated is not None
    return JSONResponse(channel_json(updated))


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
        api_route("/users/{name}/avatar", GET=user_avatar),
    ]
