"""Recordings (past broadcasts): ``/api/v1`` routes and the ``/vod`` files.

* ``GET channels/{name}/recordings``: the channel's recordings, newest first (public; the owner
  or an admin also sees failed ones);
* ``GET/PATCH channels/{name}/recording-settings``: the recording switch (owner or admin),
  with the server's retention and the bytes the channel's recordings take;
* ``GET/PATCH/DELETE recordings/{id}``: one recording; rename and delete are the owner's (or an
  admin's); a recording still being written cannot be deleted (409);
* ``/vod/{id}/index.m3u8`` and the init and segment files beside it, served from disk with
  Range requests; segments and inits never change (cached forever), the playlist of a
  recording still being written is not cached. Files are found by name pattern only
  (``files.FILE_NAME``) inside the recording's own directory.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from kitch.api.auth import _db, current_user, optional_user
from kitch.api.bodies import get_bool, only_fields, read_json, require_str
from kitch.api.errors import ApiError, error_response, invalid, not_found
from kitch.api.routing import api_route
from kitch.api.views import iso
from kitch.auth.names import text_problem
from kitch.config import Settings
from kitch.db import queries
from kitch.db import recordings as rows
from kitch.db.users import User
from kitch.recordings import files

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_TITLE = 140
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
IMMUTABLE = "public, max-age=31536000, immutable"
_MEDIA_TYPES = {".mp4": "video/mp4", ".m4s": "video/iso.segment", ".ts": "video/mp2t"}
_CORS = {"Access-Control-Allow-Origin": "*"}


def _manages(user: User | None, channel_user_id: int) -> bool:
    return user is not None and (user.id == channel_user_id or user.is_admin)


def recording_json(r: rows.Recording) -> dict[str, Any]:
    return {
        "id": r.id,
        "channel": r.channel,
        "title": r.title,
        "state": r.state,
        "reason": r.reason,
        "started_at": iso(r.started_at),
        "ended_at": iso(r.ended_at),
        "duration": round(r.duration, 3),
        "segments": r.segments,
        "bytes": r.bytes,
        "playlist_url": f"/vod/{r.id}/index.m3u8",
    }


def _int(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) > maximum:
        raise invalid(f"{name} must be an integer between 0 and {maximum}")
    return int(raw)


def _id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise not_found("no such recording")
    return int(raw)


async def _viewer(request: Request) -> User | None:
    try:
        return await optional_user(request)
    except ApiError:
        return None  # a stale token on a public page: answer what anyone sees


async def list_recordings(request: Request) -> Response:
    """A channel's recordings, newest first (``limit`` <= 100, ``offset``)."""
    limit = _int(request.query_params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _int(request.query_params.get("offset"), "offset", 0, 1_000_000)
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    viewer = await _viewer(request)
    found = await rows.list_recordings(
        _db(request),
        channel.id,
        everything=_manages(viewer, channel.user_id),
        limit=limit,
        offset=offset,
    )
    return JSONResponse({"recordings": [recording_json(r) for r in found]})


async def _visible(request: Request) -> tuple[rows.Recording, bool]:
    """The recording of the path and whether the caller manages it; 404 when the caller may
    not see it (a failed recording is its owner's business)."""
    rec = await rows.get_recording(_db(request), _id(request))
    if rec is None:
        raise not_found("no such recording")
    channel = await queries.get_channel(_db(request), rec.channel)
    viewer = await _viewer(request)
    manager = channel is not None and _manages(viewer, channel.user_id)
    if not rec.public and not manager:
        raise not_found("no such recording")
    return rec, manager


async def _managed(request: Request) -> rows.Recording:
    """The recording of the path for its channel's owner or an admin (401, 403, 404)."""
    user = await current_user(request)
    rec = await rows.get_recording(_db(request), _id(request))
    if rec is None:
        raise not_found("no such recording")
    channel = await queries.get_channel(_db(request), rec.channel)
    if channel is None or not _manages(user, channel.user_id):
        if not rec.public:
            raise not_found("no such recording")
        raise ApiError(403, "forbidden", "only the channel owner may change its recordings")
    return rec


async def get_recording(request: Request) -> Response:
    """One recording (a failed one only for its owner or an admin)."""
    rec, _ = await _visible(request)
    return JSONResponse(recording_json(rec))


async def rename_recording(request: Request) -> Response:
    """Owner (or admin) renames a recording: ``{"title": "..."}`` (1-140 characters)."""
    rec = await _managed(request)
    body = await read_json(request)
    only_fields(body, {"title"})
    title = require_str(body, "title", max_len=MAX_TITLE, strip=True)
    if not title:
        raise invalid("title must not be empty")
    problem = text_problem(title)
    if problem is not None:
        raise invalid(f"title {problem}")
    await rows.rename_recording(_db(request), rec.id, title)
    updated = await rows.get_recording(_db(request), rec.id)
    if updated is None:
        raise not_found("no such recording")
    return JSONResponse(recording_json(updated))


def _root(request: Request) -> Path:
    settings: Settings = request.app.state.settings
    return settings.recordings_root


async def delete_recording(request: Request) -> Response:
    """Owner (or admin) deletes a finished recording and its files (409 while recording)."""
    rec = await _managed(request)
    if rec.state == "recording":
        raise ApiError(
            409,
            "conflict",
            "this recording is still being written; it can be deleted once the broadcast ends",
        )
    path = await rows.delete_recording(_db(request), rec.id)
    if path is not None:
        await asyncio.to_thread(files.remove, _root(request) / path)
    return Response(status_code=204)


async def _managed_channel(request: Request) -> queries.ChannelInfo:
    user = await current_user(request)
    channel = await queries.get_channel(_db(request), request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    if not _manages(user, channel.user_id):
        raise ApiError(403, "forbidden", "only the channel owner may change it")
    return channel


async def _settings_json(request: Request, channel: queries.ChannelInfo) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    return {
        "enabled": await rows.recording_enabled(_db(request), channel.id),
        "server_enabled": settings.recordings,
        "retention_days": settings.recording_retention_days,
        "quota_bytes": settings.recording_quota_bytes,
        "used_bytes": await rows.bytes_used(_db(request), channel.id),
    }


async def get_recording_settings(request: Request) -> Response:
    """The channel's recording switch and the server's retention (owner or admin)."""
    channel = await _managed_channel(request)
    return JSONResponse(await _settings_json(request, channel))


async def patch_recording_settings(request: Request) -> Response:
    """Owner (or admin) turns recording on or off: ``{"enabled": bool}`` (next broadcast)."""
    channel = await _managed_channel(request)
    body = await read_json(request)
    only_fields(body, {"enabled"})
    if "enabled" not in body:
        raise invalid("enabled is required")
    await rows.set_recording_enabled(_db(request), channel.id, get_bool(body, "enabled"))
    return JSONResponse(await _settings_json(request, channel))


def routes() -> list[BaseRoute]:
    return [
        api_route("/channels/{name}/recordings", GET=list_recordings),
        api_route(
            "/channels/{name}/recording-settings",
            GET=get_recording_settings,
            PATCH=patch_recording_settings,
        ),
        api_route(
            "/recordings/{id}",
            GET=get_recording,
            PATCH=rename_recording,
            DELETE=delete_recording,
        ),
    ]


# -- /vod -----------------------------------------------------------------------------------


def _vod_error(status: int, code: str, message: str) -> Response:
    response = error_response(status, code, message)
    response.headers.update(_CORS)
    return response


async def vod_file(request: Request) -> Response:
    """A recording's playlist, init segment or segment."""
    raw, name = str(request.path_params["id"]), str(request.path_params["file"])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not files.FILE_NAME.match(name):
        return _vod_error(404, "not_found", "no such recording file")
    rec = await rows.get_recording(_db(request), int(raw))
    if rec is None or not rec.public:
        return _vod_error(404, "not_found", "no such recording")
    root = _root(request).resolve()
    directory = (root / rec.path).resolve()
    if not directory.is_relative_to(root):
        return _vod_error(404, "not_found", "no such recording")
    path = directory / name
    if name == files.PLAYLIST:
        return await _playlist(path, live=rec.state == "recording")
    try:  # the file itself, never what a link in the directory points to
        st = await asyncio.to_thread(os.lstat, path)
    except OSError:
        return _vod_error(404, "not_found", "no such recording file")
    if not stat.S_ISREG(st.st_mode):
        return _vod_error(404, "not_found", "no such recording file")
    return FileResponse(
        path,
        stat_result=st,
        media_type=_MEDIA_TYPES[os.path.splitext(name)[1]],
        headers={**_CORS, "Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


async def _playlist(path: Path, *, live: bool) -> Response:
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return _vod_error(404, "not_ready", "the recording has no whole segment yet")
    body = files.live_text(text) if live else files.as_vod(text)
    if not body:
        return _vod_error(404, "not_ready", "the recording has no whole segment yet")
    return Response(
        body,
        media_type=PLAYLIST_TYPE,
        headers={
            **_CORS,
            "Cache-Control": "no-cache" if live else "public, max-age=60",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def vod_options(request: Request) -> Response:
    return Response(
        status_code=204,
        headers={
            **_CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "*",
            "Access-Control-Max-Age": "86400",
        },
    )


async def vod(request: Request) -> Response:
    if request.method == "OPTIONS":
        return await vod_options(request)
    return await vod_file(request)


def vod_routes() -> list[BaseRoute]:
    return [Route("/vod/{id}/{file}", vod, methods=["GET", "HEAD", "OPTIONS"])]
