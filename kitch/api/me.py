"""``/api/v1/me*``: the signed-in user's profile, password, avatar, stream key, broadcast switch."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import Message

import kitch
from kitch.api.auth import (
    _db,
    _settings,
    account_keys,
    body_delivery,
    conflict_error,
    count_attempt,
    current_user,
    guards,
    password_matches,
    sign_in,
    signed_out,
)
from kitch.api.bodies import get_str, get_text, only_fields, read_body, read_json, require_str
from kitch.api.errors import ApiError, invalid, unauthorized
from kitch.api.routing import api_route
from kitch.api.views import avatar_url, user_json
from kitch.auth.names import normalise_email
from kitch.auth.passwords import MAX_LENGTH, password_problem
from kitch.config import parse_hostport
from kitch.db import queries
from kitch.db import users as db_users
from kitch.db.users import User
from kitch.logs import fingerprint
from kitch.transcode.images import MAX_PIXELS, MEDIA_TYPE, ImageError, reencode_avatar

log = logging.getLogger("kitch.api")

MULTIPART_OVERHEAD = 16 * 1024


async def get_me(request: Request) -> Response:
    """The signed-in user's own profile (with email)."""
    user = await current_user(request)
    return JSONResponse(user_json(user, private=True))


async def require_password(request: Request, user: User, body: dict[str, Any], name: str) -> None:
    """The user's current password, from ``body[name]``: 400 ``password_required`` without it,
    403 ``wrong_password`` when wrong, 429 while the account waits after failures.
    """
    password = get_str(body, name, max_len=64 * 1024, required=False)
    if password is None:
        raise ApiError(400, "password_required", f"{name} is required for this change")
    if not await password_matches(request, user, account_keys(user), password):
        raise ApiError(403, "wrong_password", "the current password is wrong")


async def patch_me(request: Request) -> Response:
    """Change display_name, bio and/or email (an email change needs ``current_password``)."""
    user = await current_user(request)
    body = await read_json(request)
    only_fields(body, {"display_name", "bio", "email", "current_password"})
    changes: dict[str, str] = {}
    display_name = get_text(body, "display_name", max_len=50)
    if display_name is not None:
        changes["display_name"] = display_name
    bio = get_text(body, "bio", max_len=500, multiline=True)
    if bio is not None:
        changes["bio"] = bio
    raw_email = get_str(body, "email", max_len=320, required=False)
    if raw_email is not None:
        email, problem = normalise_email(raw_email)
        if email is None:
            raise invalid(problem or "invalid email")
        if email != user.email:
            await require_password(request, user, body, "current_password")
            changes["email"] = email
    try:
        await db_users.update_profile(_db(request), user.id, changes)
    except db_users.Conflict as exc:
        raise conflict_error(exc) from None
    updated = await db_users.get_user(_db(request), user.id)
    assert updated is not None
    return JSONResponse(user_json(updated, private=True))


async def change_password(request: Request) -> Response:
    """Set a new password; every session and access token is signed out, a new session given
    (its refresh token as the cookie, or in the body with ``"token_delivery": "body"``).
    """
    user = await current_user(request)
    body = await read_json(request)
    only_fields(body, {"current_password", "new_password", "token_delivery"})
    in_body = body_delivery(body)
    require_str(body, "current_password", max_len=64 * 1024)
    new = require_str(body, "new_password", max_len=MAX_LENGTH)
    problem = password_problem(new)
    if problem is not None:
        raise invalid(problem)
    count_attempt(request, guards(request).password_changes, "password changes from your address")
    await require_password(request, user, body, "current_password")
    new_hash = await guards(request).hasher.hash(new)
    await db_users.set_password(_db(request), user.id, new_hash)
    signed_out(request.app, user.id)
    refreshed = await db_users.get_user(_db(request), user.id)
    assert refreshed is not None
    log.info("user %s changed password; all sessions signed out", user.username)
    return await sign_in(request, refreshed, in_body=in_body)


async def delete_me(request: Request) -> Response:
    """Delete the account, its channel, key, avatar, history and sessions (needs the password)."""
    user = await current_user(request)
    body = await read_json(request)
    only_fields(body, {"password"})
    require_str(body, "password", max_len=64 * 1024)
    await require_password(request, user, body, "password")
    await db_users.delete_user(_db(request), user.id)
    signed_out(request.app, user.id)
    log.info("user %s deleted their account", user.username)
    return Response(status_code=204)


async def _avatar_bytes(request: Request, limit: int) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request, limit + MULTIPART_OVERHEAD)
    if media_type != "multipart/form-data":
        return body
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form_request = Request(request.scope, replay)
    try:
        async with form_request.form(max_files=1, max_fields=4) as form:
            for value in form.values():
                if isinstance(value, UploadFile):
                    return await value.read()
    except ApiError:
        raise
    except Exception:
        raise ApiError(400, "invalid_multipart", "the multipart body is malformed") from None
    raise invalid("the multipart body has no file")


async def put_avatar(request: Request) -> Response:
    """Upload an avatar: raw PNG/JPEG/GIF/WebP body or multipart with one file (max 2 MiB); it is
    decoded and stored re-encoded as a WebP of at most 256x256 without any metadata.
    """
    user = await current_user(request)
    limit = _settings(request).max_avatar_bytes
    data = await _avatar_bytes(request, limit)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the avatar is larger than {limit} bytes")
    try:
        image = await asyncio.to_thread(reencode_avatar, data)
    except ImageError as exc:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the avatar must be a PNG, JPEG, GIF or WebP picture of at most {MAX_PIXELS} "
            f"pixels ({exc})",
        ) from None
    await db_users.set_avatar(_db(request), user.id, MEDIA_TYPE, image)
    return JSONResponse({"avatar_url": avatar_url(user.username, True)})


async def delete_avatar(request: Request) -> Response:
    """Remove the avatar."""
    user = await current_user(request)
    await db_users.delete_avatar(_db(request), user.id)
    return Response(status_code=204)


def ingest_urls(request: Request) -> dict[str, str | None]:
    """OBS "Server" URLs: host from --public-url, else from the request; ports from settings."""
    settings = _settings(request)
    host = urlsplit(settings.public_url).hostname if settings.public_url else None
    host = host or request.url.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    _, rtmp_port = parse_hostport(settings.rtmp)
    rtmps_url = None
    if settings.rtmps is not None:
        _, rtmps_port = parse_hostport(settings.rtmps)
        rtmps_url = f"rtmps://{host}:{rtmps_port}/live"
    return {"rtmp_url": f"rtmp://{host}:{rtmp_port}/live", "rtmps_url": rtmps_url}


async def server_info(request: Request) -> Response:
    """Public facts the dashboard shows: ingest URLs (``rtmp_url``, ``rtmps_url``) and version."""
    settings = _settings(request)
    return JSONResponse(
        {
            **ingest_urls(request),
            "rtmp_port": parse_hostport(settings.rtmp)[1],
            "public_url": settings.public_url,
            "version": kitch.__version__,
        }
    )


async def _key_response(request: Request, user_id: int, key: str) -> Response:
    channel = await queries.get_channel_of_user(_db(request), user_id)
    payload: dict[str, Any] = {"stream_key": key, **ingest_urls(request)}
    payload["ingest_enabled"] = bool(channel and channel.ingest_enabled)
    return JSONResponse(payload)


async def get_stream_key(request: Request) -> Response:
    """Show the stream key (owner only) with the server URL to paste into OBS."""
    user = await current_user(request)
    key = await db_users.get_stream_key(_db(request), user.id)
    if key is None:
        key = await db_users.rotate_stream_key(_db(request), user.id)
    return await _key_response(request, user.id, key)


async def rotate_stream_key(request: Request) -> Response:
    """Replace the stream key; the old one stops working at once (live ingest drops within ~2 s)."""
    user = await current_user(request)
    key = await db_users.rotate_stream_key(_db(request), user.id)
    log.info("user %s rotated stream key to %s", user.username, fingerprint(key))
    return await _key_response(request, user.id, key)


async def _set_ingest(request: Request, enabled: bool) -> Response:
    user = await current_user(request)
    channel = await queries.get_channel_of_user(_db(request), user.id)
    if channel is None:
        raise unauthorized()
    await queries.set_ingest_enabled(_db(request), channel.id, enabled)
    return JSONResponse({"ingest_enabled": enabled, "live": channel.live})


async def end_broadcast(request: Request) -> Response:
    """Stop the live stream and refuse the stream key until ingest is enabled again."""
    return await _set_ingest(request, False)


async def enable_broadcast(request: Request) -> Response:
    """Accept the stream key again after an "end broadcast"."""
    return await _set_ingest(request, True)


def routes() -> list[BaseRoute]:
    return [
        api_route("/me", GET=get_me, PATCH=patch_me, DELETE=delete_me),
        api_route("/me/password", POST=change_password),
        api_route("/me/avatar", PUT=put_avatar, DELETE=delete_avatar),
        api_route("/me/stream-key", GET=get_stream_key, POST=rotate_stream_key),
        api_route("/me/broadcast/end", POST=end_broadcast),
        api_route("/me/broadcast/enable", POST=enable_broadcast),
        api_route("/server-info", GET=server_info),
    ]
