"""Discovery: ``/api/v1/categories*`` (browse; admins add and edit), ``/api/v1/search`` and
``/api/v1/tags/{tag}``. See docs/DISCOVERY.md.

Live channels come first everywhere, the most watched first: viewer counts live in memory
(:meth:`kitch.api.events.Events.viewer_count`) and go into the queries as a name -> count map.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.auth import _db, current_user
from kitch.api.bodies import only_fields, read_body, read_json
from kitch.api.category_art import category_svg
from kitch.api.channels import listed
from kitch.api.errors import ApiError, invalid, not_found
from kitch.api.events import Events
from kitch.api.routing import api_route
from kitch.api.views import API
from kitch.db import discovery as db
from kitch.db import queries
from kitch.db.queries import ChannelInfo
from kitch.db.users import User
from kitch.db.vocabulary import (
    MAX_QUERY_LENGTH,
    default_hue,
    normalise_category_name,
    normalise_tag,
    search_terms,
    slug_problem,
    slugify,
)
from kitch.transcode.images import MAX_PIXELS, MEDIA_TYPE, ImageError, reencode_avatar

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
MAX_OFFSET = 10_000
#: Categories a search answers with (on its first page).
SEARCH_CATEGORIES = 6
#: An uploaded cover is re-encoded to fit in a square of this many pixels (3:4 art: 285x380).
COVER_SIZE = 380
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _events(request: Request) -> Events:
    events: Events = request.app.state.events
    return events


def live_viewers(events: Events) -> dict[str, int]:
    """Live channel name -> its viewer count now."""
    return {name: events.viewer_count(name) or 0 for name in list(events.live)}


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    # isdigit() alone accepts "²" and 5000-digit strings, which int() refuses (a 500).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not low <= int(raw) <= high:
        raise invalid(f"{name} must be an integer between {low} and {high}")
    return int(raw)


def _paging(params: QueryParams) -> tuple[int, int, bool]:
    """``(limit, offset, live_only)`` from ``limit`` (1-50, default 20), ``offset`` and
    ``live`` (true/false, default false)."""
    limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(params, "offset", 0, 0, MAX_OFFSET)
    live = params.get("live", "false").lower()
    if live not in ("true", "false", "1", "0"):
        raise invalid("live must be true or false")
    return limit, offset, live in ("true", "1")


def _page(request: Request, channels: list[ChannelInfo], limit: int, offset: int) -> dict[str, Any]:
    """``channels`` (fetched with ``limit + 1`` to see whether more follow) as a page."""
    more = len(channels) > limit
    return {
        "channels": listed(request, channels[:limit]),
        "next_offset": offset + limit if more else None,
    }


def category_json(category: db.Category, viewers: int = 0) -> dict[str, Any]:
    version = int(category.updated_at * 1000)
    return {
        "slug": category.slug,
        "name": category.name,
        "hue": category.hue,
        "image_url": f"{API}/categories/{category.slug}/image?v={version}",
        "custom_image": category.image_type is not None,
        "live_channels": category.live_channels,
        "viewers": viewers,
    }


async def _category_viewers(request: Request) -> dict[int, int]:
    """Category id -> the viewers of its live channels, added up."""
    count = _events(request).viewer_count
    by_category = await db.live_channels_by_category(_db(request))
    return {cid: sum(count(n) or 0 for n in names) for cid, names in by_category.items()}


async def _category(request: Request) -> db.Category:
    category = await db.get_category(_db(request), request.path_params["slug"])
    if category is None:
        raise not_found("no such category")
    return category


async def _admin(request: Request) -> User:
    user = await current_user(request)
    if not user.is_admin:
        raise ApiError(403, "forbidden", "only administrators may change categories")
    return user


# -- browsing ----------------------------------------------------------------------------------


async def _channel_page(
    request: Request, *, category_id: int | None = None, tag: str | None = None
) -> dict[str, Any]:
    """One page of the channels of a category or carrying a tag, live first and the most
    watched first (the query's ``live``, ``limit`` and ``offset``)."""
    limit, offset, live_only = _paging(request.query_params)
    channels = await queries.list_channels(
        _db(request),
        limit=limit + 1,
        offset=offset,
        live_only=live_only,
        viewers=live_viewers(_events(request)),
        category_id=category_id,
        tag=tag,
    )
    return _page(request, channels, limit, offset)


async def list_categories(request: Request) -> Response:
    """Every category with its live channels and viewers, the most watched first."""
    categories = await db.list_categories(_db(request))
    viewers = await _category_viewers(request)
    categories.sort(key=lambda c: (-viewers.get(c.id, 0), -c.live_channels))  # stable: by name
    return JSONResponse(
        {"categories": [category_json(c, viewers.get(c.id, 0)) for c in categories]}
    )


async def get_category(request: Request) -> Response:
    """One category and its channels, live first and the most watched first (``live=true``
    for live ones only; ``limit`` 1-50, ``offset``)."""
    category = await _category(request)
    page = await _channel_page(request, category_id=category.id)
    viewers = (await _category_viewers(request)).get(category.id, 0)
    return JSONResponse({"category": category_json(category, viewers), **page})


async def category_image(request: Request) -> Response:
    """The category's cover: the uploaded picture, or generated SVG art."""
    category = await _category(request)
    headers = {
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        "ETag": f'"{int(category.updated_at * 1000)}"',
    }
    uploaded = await db.get_category_image(_db(request), category.id)
    if uploaded is not None:
        media_type, data = uploaded
        return Response(data, media_type=media_type, headers=headers)
    svg = category_svg(category.name, category.slug, category.hue)
    return Response(svg, media_type="image/svg+xml", headers=headers)


async def tag_channels(request: Request) -> Response:
    """The channels carrying a tag (matched ignoring case), live first and the most watched
    first (``live=true`` for live ones only; ``limit`` 1-50, ``offset``)."""
    tag, problem = normalise_tag(request.path_params["tag"])
    if tag is None:
        raise invalid(f"the tag {problem}")
    return JSONResponse({"tag": tag, **await _channel_page(request, tag=tag)})


async def search(request: Request) -> Response:
    """Search channels (name, display name, title, description, tags, category) and
    categories: every word must match, whole or as a word's start; live channels first, then
    the most relevant, then the most watched (``q``; ``live``, ``limit`` 1-50, ``offset``)."""
    q = request.query_params.get("q")
    if q is None:
        raise invalid("q (the text to search for) is required")
    if len(q) > MAX_QUERY_LENGTH:
        raise invalid(f"q must be at most {MAX_QUERY_LENGTH} characters")
    limit, offset, live_only = _paging(request.query_params)
    terms = search_terms(q)
    events = _events(request)
    channels = await db.search_channels(
        _db(request),
        terms,
        viewers=live_viewers(events),
        live_only=live_only,
        limit=limit + 1,
        offset=offset,
    )
    categories: list[dict[str, Any]] = []
    if offset == 0 and not live_only:
        found = await db.search_categories(_db(request), terms, limit=SEARCH_CATEGORIES)
        viewers = await _category_viewers(request) if found else {}
        categories = [category_json(c, viewers.get(c.id, 0)) for c in found]
    return JSONResponse(
        {"terms": terms, "categories": categories, **_page(request, channels, limit, offset)}
    )


# -- admin -------------------------------------------------------------------------------------


def _name(body: Mapping[str, Any]) -> str:
    value = body["name"]
    if not isinstance(value, str) or len(value) > 1000:
        raise invalid("name must be a string of at most 50 characters")
    name, problem = normalise_category_name(value)
    if name is None:
        raise invalid(f"name {problem}")
    return name


def _slug(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("slug must be a string")
    problem = slug_problem(value)
    if problem is not None:
        raise invalid(f"slug {problem}")
    return value


def _hue(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 359:
        raise invalid("hue must be an integer from 0 to 359")
    return value


def _conflict(exc: db.CategoryConflict) -> ApiError:
    return ApiError(409, "conflict", f"another category has that {exc.field}")


async def _announce(request: Request, category_id: int) -> None:
    """Tell viewers of the category's live channels its (new) name."""
    events = _events(request)
    channels = await queries.list_channels(
        _db(request), limit=1000, live_only=True, category_id=category_id
    )
    for channel in channels:
        events.channel_changed(channel.name, channel.title, channel.category)


async def create_category(request: Request) -> Response:
    """Add a category (admins): ``name``, and ``slug`` (made from the name when left out) and
    ``hue`` of its generated art (0-359) if wanted."""
    await _admin(request)
    body = await read_json(request)
    only_fields(body, {"name", "slug", "hue"})
    if "name" not in body:
        raise invalid("name is required")
    name = _name(body)
    if "slug" in body:
        slug = _slug(body["slug"])
    else:
        slug = slugify(name)
        if not slug:
            raise invalid("the name gives no slug (it has no a-z or 0-9): send a slug")
    hue = _hue(body["hue"]) if "hue" in body else default_hue(slug)
    try:
        category = await db.create_category(_db(request), name, slug, hue)
    except db.CategoryConflict as exc:
        raise _conflict(exc) from None
    except db.TooManyCategories:
        raise ApiError(
            409, "too_many_categories", f"the list holds {db.MAX_CATEGORIES} categories already"
        ) from None
    return JSONResponse(category_json(category), status_code=201)


async def patch_category(request: Request) -> Response:
    """Rename a category, change its slug or the hue of its art (admins); its channels follow
    (and their viewers are told a new name at once)."""
    await _admin(request)
    category = await _category(request)
    body = await read_json(request)
    only_fields(body, {"name", "slug", "hue"})
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _name(body)
    if "slug" in body:
        changes["slug"] = _slug(body["slug"])
    if "hue" in body:
        changes["hue"] = _hue(body["hue"])
    try:
        await db.update_category(_db(request), category.id, changes)
    except db.CategoryConflict as exc:
        raise _conflict(exc) from None
    updated = await db.get_category(_db(request), changes.get("slug", category.slug))
    assert updated is not None
    if updated.name != category.name:
        await _announce(request, category.id)
    viewers = (await _category_viewers(request)).get(category.id, 0)
    return JSONResponse(category_json(updated, viewers))


async def delete_category(request: Request) -> Response:
    """Remove a category (admins); its channels are left without one."""
    await _admin(request)
    category = await _category(request)
    live = await queries.list_channels(
        _db(request), limit=1000, live_only=True, category_id=category.id
    )
    await db.delete_category(_db(request), category.id)
    events = _events(request)
    for channel in live:
        events.channel_changed(channel.name, channel.title, "")
    return Response(status_code=204)


async def put_category_image(request: Request) -> Response:
    """Upload a cover (admins): a PNG, JPEG, GIF or WebP body (at most the avatar size limit),
    stored re-encoded as a WebP that fits in 380x380, without metadata."""
    await _admin(request)
    category = await _category(request)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in IMAGE_TYPES:
        raise ApiError(
            415, "unsupported_media_type", "send the cover as image/png, jpeg, gif or webp"
        )
    limit: int = request.app.state.settings.max_avatar_bytes
    data = await read_body(request, limit)
    try:
        image = await asyncio.to_thread(reencode_avatar, data, size=COVER_SIZE)
    except ImageError as exc:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the cover must be a PNG, JPEG, GIF or WebP picture of at most {MAX_PIXELS} "
            f"pixels ({exc})",
        ) from None
    await db.set_category_image(_db(request), category.id, MEDIA_TYPE, image)
    updated = await db.get_category(_db(request), category.slug)
    assert updated is not None
    return JSONResponse(category_json(updated))


async def delete_category_image(request: Request) -> Response:
    """Remove the uploaded cover (admins): the generated art is back."""
    await _admin(request)
    category = await _category(request)
    await db.set_category_image(_db(request), category.id, None, None)
    updated = await db.get_category(_db(request), category.slug)
    assert updated is not None
    return JSONResponse(category_json(updated))


def routes() -> list[BaseRoute]:
    return [
        api_route("/categories", GET=list_categories, POST=create_category),
        api_route(
            "/categories/{slug}", GET=get_category, PATCH=patch_category, DELETE=delete_category
        ),
        api_route(
            "/categories/{slug}/image",
            GET=category_image,
            PUT=put_category_image,
            DELETE=delete_category_image,
        ),
        api_route("/search", GET=search),
        api_route("/tags/{tag}", GET=tag_channels),
    ]
