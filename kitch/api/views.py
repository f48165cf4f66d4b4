"""JSON shapes of users and channels (one place, so every route answers the same fields)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from kitch.db.queries import ChannelInfo
from kitch.db.users import User

API = "/api/v1"


def iso(timestamp: float | None) -> str | None:
    """Unix seconds -> ``2026-01-31T12:00:00.000Z`` (UTC), None stays None."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def avatar_url(username: str, present: bool) -> str | None:
    return f"{API}/users/{username}/avatar" if present else None


def hls_base(request: Request) -> str:
    """Where players fetch ``/hls`` from: "" (this origin) unless HLS worker processes serve
    it, then ``hls_public_url``, else this request's scheme and host on ``hls_port``."""
    settings = getattr(request.app.state, "settings", None)
    if settings is None or not settings.hls_workers:
        return ""
    if settings.hls_public_url:
        return str(settings.hls_public_url).rstrip("/")
    host = request.url.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{request.url.scheme}://{host}:{settings.hls_port}"


def user_json(user: User, *, private: bool) -> dict[str, Any]:
    """Public profile; ``private`` adds email and admin flag (only for the user themself)."""
    data: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name or user.username,
        "bio": user.bio,
        "avatar_url": avatar_url(user.username, user.has_avatar),
        "created_at": iso(user.created_at),
    }
    if private:
        data["email"] = user.email
        data["is_admin"] = user.is_admin
    return data


def channel_json(
    channel: ChannelInfo,
    *,
    manager: bool = False,
    following: bool | None = None,
    viewers: int | None = None,
    thumbnail_url: str | None = None,
    hls_base: str = "",
) -> dict[str, Any]:
    """A channel; ``stream`` is present (not null) only while live. ``manager`` (the owner or
    an admin, who may change the channel) adds its ``ladder`` settings. ``following`` (for a
    signed-in caller) says whether they follow it; ``viewers`` (live only) its viewer count;
    ``thumbnail_url`` its picture (see :func:`kitch.api.thumbnails.thumbnail_url`);
    ``hls_base`` what goes before ``/hls`` in ``hls_url`` (see :func:`hls_base`)."""
    data: dict[str, Any] = {
        "name": channel.name,
        "display_name": channel.display_name or channel.name,
        "title": channel.title,
        "description": channel.description,
        "category": channel.category,
        "category_slug": channel.category_slug,
        "tags": channel.tags,
        "live": channel.live,
        "last_live_at": iso(channel.last_live_at),
        "ingest_enabled": channel.ingest_enabled,
        "avatar_url": avatar_url(channel.name, channel.has_avatar),
        "hls_url": f"{hls_base}/hls/{channel.name}/master.m3u8",
        "thumbnail_url": thumbnail_url,
        "follower_count": channel.follower_count,
    }
    if following is not None:
        data["following"] = following
    if channel.live:
        data["viewers"] = viewers or 0
    if channel.live and channel.stream is not None:
        stream = channel.stream
        data["stream"] = {
            "id": stream.id,
            "started_at": iso(stream.started_at),
            "title": stream.title,
            "stats": stream.stats,
            "stats_updated_at": iso(stream.stats_updated_at),
        }
    if manager:
        data["ladder"] = {"enabled": channel.ladder_enabled, "rungs": channel.ladder_rungs}
    return data
