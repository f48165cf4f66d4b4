"""``/thumbnails/{channel}/640x360.jpg`` and ``/320x180.jpg``: a channel's picture.

While the channel is live the newest picture of its broadcast is served from memory; once the
broadcast has ended, its last picture from ``DATA_DIR/thumbnails`` (read in a thread). Both
answer ``Cache-Control: public, max-age=<interval / 2>`` (a CDN or browser keeps a picture at
most half an interval), an ``ETag`` and ``Last-Modified`` of the picture's time, and ``304 Not
Modified`` to a matching ``If-None-Match`` (or, without one, ``If-Modified-Since``). A channel
without a picture, an unknown channel and an unknown size are a JSON 404. The channel JSON's
``thumbnail_url`` points here with ``?v=<version>``, so a page shows a new picture as soon as
it reloads the channel list (the query is ignored by the server; it only busts caches).
"""

from __future__ import annotations

import asyncio
from email.utils import formatdate, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kitch.api.errors import not_found
from kitch.db import Database
from kitch.db.queries import channel_id_of
from kitch.ingest.thumbnails import DEFAULT_INTERVAL, SIZE_NAMES, ThumbnailStore
from kitch.transcode.thumbnails import MEDIA_TYPE

PREFIX = "/thumbnails"
#: The size ``thumbnail_url`` names (the other is the same URL with ``320x180.jpg``).
URL_SIZE = SIZE_NAMES[0]


def thumbnail_url(store: ThumbnailStore | None, name: str, channel_id: int) -> str | None:
    """The channel's picture URL with its version (None when it has none)."""
    version = None if store is None else store.version(name, channel_id)
    return None if version is None else f"{PREFIX}/{name}/{URL_SIZE}.jpg?v={version}"


def max_age(store: ThumbnailStore) -> int:
    interval = store.interval or DEFAULT_INTERVAL
    return max(1, round(interval / 2))


def _not_modified(request: Request, etag: str, taken_at: float) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return etag in tags or "*" in tags
    ims = request.headers.get("if-modified-since")
    if ims is None:
        return False
    try:
        since = parsedate_to_datetime(ims).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return int(taken_at) <= since


async def thumbnail(request: Request) -> Response:
    """A channel's live picture, else the last picture of its last broadcast."""
    store: ThumbnailStore | None = request.app.state.thumbnails
    name = str(request.path_params["channel"]).lower()
    file = str(request.path_params["file"])
    size = file.removesuffix(".jpg") if file.endswith(".jpg") else ""
    if size not in SIZE_NAMES:
        raise not_found(f"no such thumbnail size; sizes: {', '.join(SIZE_NAMES)} (.jpg)")
    if store is None:
        raise not_found("this channel has no thumbnail")
    data: bytes | None
    live = store.live_picture(name)
    if live is not None:
        data, version, taken_at = live.images.get(size), live.version, live.taken_at
        channel_id = 0
    else:
        db: Database = request.app.state.db
        found = await channel_id_of(db, name) if name.isascii() and len(name) <= 64 else None
        saved = None if found is None else store.saved_picture(name, found)
        if found is None or saved is None:
            raise not_found("this channel has no thumbnail")
        data, version, taken_at, channel_id = None, saved.version, saved.taken_at, found
    etag = f'"{version}"'
    headers = {
        "Cache-Control": f"public, max-age={max_age(store)}",
        "ETag": etag,
        "Last-Modified": formatdate(taken_at, usegmt=True),
        "X-Content-Type-Options": "nosniff",
    }
    if _not_modified(request, etag, taken_at):
        return Response(status_code=304, headers=headers)
    if live is None:
        data = await asyncio.to_thread(store.read_saved, name, channel_id, size)
    if data is None:
        raise not_found("this channel has no thumbnail")
    return Response(data, media_type=MEDIA_TYPE, headers=headers)


def routes() -> list[BaseRoute]:
    return [Route(PREFIX + "/{channel}/{file}", thumbnail, methods=["GET", "HEAD"])]
