"""Chat moderation over REST: ``GET /api/v1/channels/{name}/chat/bans``, the channel's running
bans and timeouts, for the broadcaster and the channel's moderators (site admins act as
moderators). Bans, timeouts and unbans themselves are chat socket frames (docs/CHAT.md)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.auth import current_user
from kitch.api.chat import service
from kitch.api.errors import ApiError, invalid, not_found
from kitch.api.routing import api_route
from kitch.db import chat as store

#: Bans listed at most per answer (``limit``), and by default.
MAX_BANS, DEFAULT_BANS = 500, 100


def _bans_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_BANS
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 1 <= int(raw) <= MAX_BANS:
        raise invalid(f"limit must be an integer between 1 and {MAX_BANS}")
    return int(raw)


async def chat_bans(request: Request) -> Response:
    """The channel's running bans and timeouts, newest first (the broadcaster and moderators)."""
    user = await current_user(request)
    limit = _bans_limit(request.query_params.get("limit"))
    chat = service(request.app)
    await chat.start()
    channel = await chat.channel(request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    if not chat.channel_moderated_by(channel, user):
        raise ApiError(403, "forbidden", "only the broadcaster and moderators see the bans")
    await chat.flush()  # the bans and unbans just made are part of the answer
    bans = await store.current_bans(chat.db, channel.id, time.time(), limit=limit + 1)
    return JSONResponse({"bans": bans[:limit], "more": len(bans) > limit})


def routes() -> list[BaseRoute]:
    """The REST routes (under ``/api/v1``)."""
    return [api_route("/channels/{name}/chat/bans", GET=chat_bans)]
