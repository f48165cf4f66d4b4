"""``/api/v1/openapi.json``: generated from the registered routes plus the schemas below.

Every :class:`~kitch.api.routing.ApiRoute` appears with each of its methods; the summary is the
handler's docstring. Request bodies, query parameters, success statuses other than 200 and the
auth requirement are listed here by handler name; a test reads every handler's source and fails
when one of these lists has fallen behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount

import kitch
from kitch.api.routing import ApiRoute
from kitch.db.queries import LADDER_RUNGS


def _obj(required: Iterable[str] = (), **props: Any) -> dict[str, Any]:
    """A closed object schema: exactly ``props``, of which ``required`` are always present."""
    return {
        "type": "object",
        "required": list(required),
        "properties": props,
        "additionalProperties": False,
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
#: ISO 8601 UTC with milliseconds, e.g. ``2026-01-31T12:00:00.000Z``.
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
TOKEN_DELIVERY: dict[str, Any] = {
    "type": "string",
    "enum": ["body"],
    "description": "for clients without cookies: answer the refresh token in the body "
    "instead of setting the kitch_refresh cookie",
}

_PUBLIC_USER = {
    "id": INT,
    "username": STR,
    "display_name": STR,
    "bio": STR,
    "avatar_url": _nullable(STR),
    "created_at": TIME,
}
_TOKENS = {
    "access_token": STR,
    "token_type": {"type": "string", "enum": ["bearer"]},
    "expires_in": {**INT, "description": "access token lifetime in seconds"},
    "refresh_token": {
        **STR,
        "description": 'only with "token_delivery": "body" (else it is the kitch_refresh cookie)',
    },
}
_STATS_FIELDS = ("video_codec", "audio_codec", "encoder")
_STATS_NUMBERS = ("width", "height", "fps", "bitrate_kbps", "keyframe_interval_s")
_INGEST_URLS = {"rtmp_url": STR, "rtmps_url": _nullable(STR)}
_RUNG_NAMES: dict[str, Any] = {"type": "string", "enum": list(LADDER_RUNGS)}
_LADDER_SETTINGS = {
    "enabled": {**BOOL, "description": "false: the source rendition only (passthrough)"},
    "rungs": {
        "type": "array",
        "items": _RUNG_NAMES,
        "maxItems": len(LADDER_RUNGS),
        "description": "the rungs to encode, no repeats; rungs at or above the source height "
        "are skipped",
    },
}
_NUMBER_OR_NULL = _nullable(NUM)
_SCHEDULE_FIELDS: dict[str, Any] = {
    "title": {**STR, "maxLength": 140},
    "category": {**STR, "maxLength": 50},
    "starts_at": {
        **STR,
        "description": "ISO 8601; with an offset or Z it is the instant, without one a "
        "wall-clock time in timezone (e.g. 2026-03-01T20:00)",
    },
    "timezone": {**STR, "description": "IANA time zone name, e.g. Europe/Paris"},
    "duration_minutes": {
        **INT,
        "minimum": 5,
        "maximum": 1440,
        "description": "expected duration (default 60)",
    },
}
_CHANNEL_PAGE: dict[str, Any] = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/Channel"},
    "description": "live first and the most watched first, then the most recently live",
}
_NEXT_OFFSET: dict[str, Any] = {
    "type": ["integer", "null"],
    "description": "the offset of the next page, null on the last page",
}


def _limit(maximum: int, minimum: int = 1) -> dict[str, Any]:
    """The ``limit`` query parameter of a listing: an integer in ``minimum``..``maximum``."""
    schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    return {"name": "limit", "in": "query", "schema": schema}


_PAGING: list[dict[str, Any]] = [
    _limit(50),
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "live", "in": "query", "schema": BOOL, "description": "only live channels"},
]
_CATEGORY_FIELDS: dict[str, Any] = {
    "name": {**STR, "description": "1-50 characters, unique ignoring case"},
    "slug": {
        **STR,
        "description": "a-z, 0-9 and single dashes, at most 50 (made from the name if left out)",
    },
    "hue": {"type": "integer", "minimum": 0, "maximum": 359},
}
_HEALTH_INGEST = ("bitrate_kbps", "fps", "keyframe_interval", "av_drift_ms", "width", "height")
_HEALTH_LADDER = ("decode_cpu_seconds", "dropped_packets", "decoder_restarts")
_HEALTH_THUMBNAILS = ("interval", "encode_ms", "made", "skips", "failures")
_HEALTH_RENDITION = (
    "width",
    "height",
    "bitrate_kbps",
    "fps",
    "encode_speed",
    "dropped_frames",
    "restarts",
    "cpu_seconds",
    "bytes_held",
    "window_bytes",
)

#: Named answer shapes (``components.schemas``); web/src/api/schema.ts is generated from them.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _obj(["error"], error=_obj(["code", "message"], code=STR, message=STR)),
    "PrivateUser": _obj(
        [*_PUBLIC_USER, "email", "is_admin"], **_PUBLIC_USER, email=STR, is_admin=BOOL
    ),
    "Session": _obj(
        ["access_token", "token_type", "expires_in", "user"], **_TOKENS, user=_ref("PrivateUser")
    ),
    "StreamStats": {
        "type": "object",
        "description": "ingest figures; empty until the first report, each figure null until known",
        "properties": {
            **{name: _nullable(STR) for name in _STATS_FIELDS},
            **{name: _nullable(NUM) for name in _STATS_NUMBERS},
            "hls": {"type": "object"},
        },
        "additionalProperties": False,
    },
    "LiveStream": _obj(
        ["id", "started_at", "title", "stats", "stats_updated_at"],
        id=INT,
        started_at=TIME,
        title=STR,
        stats=_ref("StreamStats"),
        stats_updated_at=_nullable(TIME),
    ),
    "Channel": _obj(
        [
            "name",
            "display_name",
            "title",
            "description",
            "category",
            "category_slug",
            "tags",
            "live",
            "last_live_at",
            "ingest_enabled",
            "avatar_url",
            "hls_url",
            "thumbnail_url",
            "follower_count",
        ],
        name=STR,
        display_name=STR,
        title=STR,
        description=STR,
        category={**STR, "description": 'the category\'s name, "" when none'},
        category_slug={**_nullable(STR), "description": "the category's slug, null when none"},
        tags={"type": "array", "items": STR, "maxItems": 10},
        live=BOOL,
        last_live_at=_nullable(TIME),
        ingest_enabled=BOOL,
        avatar_url=_nullable(STR),
        hls_url={
            **STR,
            "description": "the master playlist: a path on this origin, or an absolute URL when "
            "HLS worker processes serve /hls on their own port",
        },
        thumbnail_url={
            **_nullable(STR),
            "description": "the channel's 640x360 JPEG (live: refreshed every few seconds; "
            "offline: the last broadcast's last picture), with a ?v= version that changes with "
            "each picture; the same path with 320x180.jpg is the small one. null: no picture",
        },
        follower_count=INT,
        following={**BOOL, "description": "only for a signed-in caller: whether they follow it"},
        viewers={
            **INT,
            "description": "present only while live: distinct clients (address + User-Agent) "
            "with the player (a playlist read in the viewer window) or the chat open",
        },
        stream={**_ref("LiveStream"), "description": "present only while live"},
        ladder={
            **_ref("LadderSettings"),
            "description": "only for the owner (or an admin); applied at the next broadcast",
        },
    ),
    "LadderSettings": _obj(["enabled", "rungs"], **_LADDER_SETTINGS),
    "ChannelHealth": {
        **_obj(
            ["live"],
            live=BOOL,
            since={**TIME, "description": "when the broadcast started"},
            ingest=_obj(
                [*_HEALTH_INGEST, "video_codec", "audio_codec"],
                **{name: _NUMBER_OR_NULL for name in _HEALTH_INGEST},
                video_codec=_nullable(STR),
                audio_codec=_nullable(STR),
            ),
            ladder=_obj(
                ["state", "reason", *_HEALTH_LADDER],
                state={"type": "string", "enum": ["off", "running", "waiting", "unavailable"]},
                reason={
                    **_nullable(STR),
                    "description": "why the ladder is not running (e.g. waiting for a free "
                    "encoder slot)",
                },
                **{name: _NUMBER_OR_NULL for name in _HEALTH_LADDER},
            ),
            thumbnails={
                **_obj(
                    ["state", "reason", "last_at", *_HEALTH_THUMBNAILS, "error"],
                    state={"type": "string", "enum": ["waiting", "running", "unavailable"]},
                    reason={
                        **_nullable(STR),
                        "description": "why there is no picture yet (waiting for a keyframe, "
                        "or a codec this server cannot decode)",
                    },
                    last_at={**_nullable(TIME), "description": "time of the newest picture"},
                    **{name: _NUMBER_OR_NULL for name in _HEALTH_THUMBNAILS},
                    error=_nullable(STR),
                ),
                "description": "present when thumbnails are on (thumbnail_interval > 0); "
                "encode_ms is the CPU milliseconds of the newest picture (decode, scale, JPEG), "
                "skips the keyframes passed over because the previous picture was still being made",
            },
            renditions={
                "type": "array",
                "description": "source first (its encode_speed is null), then the rungs",
                "items": _obj(
                    ["name", *_HEALTH_RENDITION, "error"],
                    name=STR,
                    **{name: _NUMBER_OR_NULL for name in _HEALTH_RENDITION},
                    error=_nullable(STR),
                ),
            },
        ),
        "description": 'while live every field is present; otherwise just {"live": false}',
    },
    "ChannelList": _obj(["channels"], channels={"type": "array", "items": _ref("Channel")}),
    "Category": _obj(
        ["slug", "name", "hue", "image_url", "custom_image", "live_channels", "viewers"],
        slug=STR,
        name=STR,
        hue={**INT, "description": "0-359: the colour of the generated cover art"},
        image_url={**STR, "description": "the cover (an uploaded picture, or generated SVG)"},
        custom_image={**BOOL, "description": "whether an admin uploaded the cover"},
        live_channels=INT,
        viewers={**INT, "description": "the viewers of its live channels, added up"},
    ),
    "CategoryList": _obj(
        ["categories"],
        categories={
            "type": "array",
            "items": _ref("Category"),
            "description": "the most watched first, then the most live channels, then by name",
        },
    ),
    "CategoryPage": _obj(
        ["category", "channels", "next_offset"],
        category=_ref("Category"),
        channels=_CHANNEL_PAGE,
        next_offset=_NEXT_OFFSET,
    ),
    "TagPage": _obj(
        ["tag", "channels", "next_offset"],
        tag={**STR, "description": "the tag, normalised"},
        channels=_CHANNEL_PAGE,
        next_offset=_NEXT_OFFSET,
    ),
    "SearchResults": _obj(
        ["terms", "categories", "channels", "next_offset"],
        terms={
            "type": "array",
            "items": STR,
            "description": "the words searched for (empty: nothing searchable, no results)",
        },
        categories={
            "type": "array",
            "items": _ref("Category"),
            "description": "matching categories, on the first page only (offset 0, not live)",
        },
        channels={
            "type": "array",
            "items": _ref("Channel"),
            "description": "live first, then the most relevant, then the most watched",
        },
        next_offset=_NEXT_OFFSET,
    ),
    "FollowState": _obj(["following", "follower_count"], following=BOOL, follower_count=INT),
    "Notification": _obj(
        ["id", "kind", "channel", "title", "broadcast_id", "created_at", "read"],
        id=INT,
        kind={
            "type": "string",
            "enum": ["live", "schedule_reminder", "schedule_start"],
            "description": "live: a followed channel went live; schedule_reminder / "
            "schedule_start: one of its scheduled streams starts soon / now",
        },
        channel=_nullable(STR),
        title={
            **STR,
            "description": "the channel's title when it went live, or the scheduled stream's",
        },
        broadcast_id=_nullable(INT),
        created_at=TIME,
        read=BOOL,
        schedule_id={**INT, "description": "only for the schedule kinds"},
        starts_at={**_nullable(TIME), "description": "only for the schedule kinds"},
    ),
    "NotificationList": _obj(
        ["notifications", "unread"],
        notifications={"type": "array", "items": _ref("Notification")},
        unread=INT,
    ),
    "UnreadCount": _obj(["unread"], unread=INT),
    "StreamKey": _obj(
        ["stream_key", "rtmp_url", "rtmps_url", "ingest_enabled"],
        stream_key=STR,
        **_INGEST_URLS,
        ingest_enabled=BOOL,
    ),
    "IngestState": _obj(["ingest_enabled", "live"], ingest_enabled=BOOL, live=BOOL),
    "Avatar": _obj(["avatar_url"], avatar_url=STR),
    "ServerInfo": _obj(
        ["rtmp_url", "rtmps_url", "rtmp_port", "public_url", "version"],
        **_INGEST_URLS,
        rtmp_port=INT,
        public_url=_nullable(STR),
        version=STR,
    ),
    "OpenApi": {"type": "object", "required": ["openapi", "info", "paths"]},
    "ScheduledStream": _obj(
        [
            "id",
            "channel",
            "title",
            "category",
            "starts_at",
            "ends_at",
            "starts_at_local",
            "timezone",
            "duration_minutes",
            "status",
            "broadcast_id",
            "created_at",
            "updated_at",
        ],
        id=INT,
        channel=_obj(
            ["name", "display_name", "avatar_url", "live"],
            name=STR,
            display_name=STR,
            avatar_url=_nullable(STR),
            live=BOOL,
        ),
        title=STR,
        category=STR,
        starts_at={**TIME, "description": "the start (UTC)"},
        ends_at={**TIME, "description": "the start plus the expected duration (UTC)"},
        starts_at_local={
            **TIME,
            "description": "the start in the stream's time zone, with its offset "
            "(e.g. 2026-03-01T20:00:00+01:00)",
        },
        timezone={**STR, "description": "IANA time zone name, e.g. Europe/Paris"},
        duration_minutes=INT,
        status={"type": "string", "enum": ["scheduled", "cancelled"]},
        broadcast_id={
            **_nullable(INT),
            "description": "the broadcast that started near the scheduled time, once there is one",
        },
        created_at=TIME,
        updated_at=TIME,
    ),
    "ChannelSchedule": _obj(
        ["schedule", "ics_url"],
        schedule={"type": "array", "items": _ref("ScheduledStream")},
        ics_url={**STR, "description": "the channel's iCalendar feed"},
    ),
    "UpcomingSchedule": _obj(
        ["schedule", "next_cursor"],
        schedule={"type": "array", "items": _ref("ScheduledStream")},
        next_cursor={**_nullable(STR), "description": "pass as cursor for the next page"},
    ),
    "BroadcastStats": _obj(
        [
            "id",
            "title",
            "started_at",
            "ended_at",
            "live",
            "duration_seconds",
            "peak_viewers",
            "average_viewers",
            "viewer_samples",
            "chat_messages",
            "new_followers",
            "schedule",
        ],
        id=INT,
        title=STR,
        started_at=TIME,
        ended_at=_nullable(TIME),
        live=BOOL,
        duration_seconds=NUM,
        peak_viewers=INT,
        average_viewers={
            **_nullable(NUM),
            "description": "mean of the viewer samples; null without samples",
        },
        viewer_samples=INT,
        chat_messages={**INT, "description": "chat messages posted during the broadcast"},
        new_followers={**INT, "description": "follows made during it (and not undone)"},
        schedule={
            **_nullable(_obj(["id", "title"], id=INT, title=STR)),
            "description": "the scheduled stream it was linked to",
        },
    ),
    "AnalyticsList": _obj(
        ["broadcasts"], broadcasts={"type": "array", "items": _ref("BroadcastStats")}
    ),
    "BroadcastAnalytics": _obj(
        ["broadcast", "viewers", "tick_seconds"],
        broadcast=_ref("BroadcastStats"),
        viewers={
            "type": "array",
            "description": "viewers over time, one sample per tick",
            "items": _obj(["t", "viewers"], t={**NUM, "description": "Unix seconds"}, viewers=INT),
        },
        tick_seconds={**NUM, "description": "seconds between samples"},
    ),
    "ChatMessage": _obj(
        ["type", "id", "user", "text", "ts"],
        type={"type": "string", "enum": ["message"]},
        id=INT,
        user=_obj(
            ["name", "display_name", "color", "role"],
            name=STR,
            display_name=STR,
            color=STR,
            role={"type": "string", "enum": ["viewer", "moderator", "broadcaster"]},
        ),
        text=STR,
        ts=NUM,
    ),
    "ChatHistory": _obj(["messages"], messages={"type": "array", "items": _ref("ChatMessage")}),
    "Recording": _obj(
        [
            "id",
            "channel",
            "title",
            "state",
            "reason",
            "started_at",
            "ended_at",
            "duration",
            "segments",
            "bytes",
            "playlist_url",
        ],
        id=INT,
        channel=STR,
        title=STR,
        state={
            "type": "string",
            "enum": ["recording", "ended", "stopped", "failed"],
            "description": "recording: being written (an EVENT playlist); ended: closed as VOD; "
            "stopped: stopped before the broadcast ended (reason says why), playable up to "
            "there; failed: nothing playable (listed for the owner only)",
        },
        reason={**_nullable(STR), "description": "why it stopped early or failed"},
        started_at=TIME,
        ended_at=_nullable(TIME),
        duration={**NUM, "description": "seconds of media listed"},
        segments=INT,
        bytes={**INT, "description": "bytes on disk"},
        playlist_url={**STR, "description": "its HLS playlist: /vod/{id}/index.m3u8"},
    ),
    "RecordingList": _obj(["recordings"], recordings={"type": "array", "items": _ref("Recording")}),
    "RecordingSettings": _obj(
        ["enabled", "server_enabled", "retention_days", "quota_bytes", "used_bytes"],
        enabled={**BOOL, "description": "the channel's switch, read when a broadcast starts"},
        server_enabled={**BOOL, "description": "false: the server records nothing (--recordings)"},
        retention_days={**NUM, "description": "finished recordings are deleted after; 0: never"},
        quota_bytes={
            **INT,
            "description": "the server's disk quota for all recordings (oldest go first); 0: none",
        },
        used_bytes={**INT, "description": "bytes this channel's recordings take"},
    ),
    "ChatAudit": _obj(
        ["entries"],
        entries={
            "type": "array",
            "items": _obj(
                ["id", "action", "actor", "target", "message_id", "reason", "data", "ts"],
                id=INT,
                action=STR,
                actor=_nullable(STR),
                target=_nullable(STR),
                message_id=_nullable(INT),
                reason=STR,
                data={"type": "object"},
                ts=NUM,
            ),
        },
    ),
    "ChatBans": _obj(
        ["bans", "more"],
        bans={
            "type": "array",
            "items": _obj(
                ["user", "display_name", "until", "reason", "by", "ts"],
                user=STR,
                display_name=STR,
                until={
                    **_NUMBER_OR_NULL,
                    "description": "Unix seconds the timeout ends; null for a ban",
                },
                reason=STR,
                by={**_nullable(STR), "description": "the moderator (null: account deleted)"},
                ts={**NUM, "description": "Unix seconds of the ban or timeout"},
            ),
        },
        more={**BOOL, "description": "more bans than limit: the oldest were left out"},
    ),
}

#: The answer schema of each handler's success status (a test checks every one is listed and
#: validates real answers against them).
RESPONSES: dict[str, str] = {
    "register": "Session",
    "login": "Session",
    "refresh": "Session",
    "get_me": "PrivateUser",
    "patch_me": "PrivateUser",
    "change_password": "Session",
    "put_avatar": "Avatar",
    "get_stream_key": "StreamKey",
    "rotate_stream_key": "StreamKey",
    "end_broadcast": "IngestState",
    "enable_broadcast": "IngestState",
    "server_info": "ServerInfo",
    "list_channels": "ChannelList",
    "get_channel": "Channel",
    "patch_channel": "Channel",
    "channel_health": "ChannelHealth",
    "put_follow": "FollowState",
    "delete_follow": "FollowState",
    "get_following": "ChannelList",
    "get_notifications": "NotificationList",
    "read_notifications": "UnreadCount",
    "openapi_json": "OpenApi",
    "chat_history": "ChatHistory",
    "chat_audit": "ChatAudit",
    "chat_bans": "ChatBans",
    "list_recordings": "RecordingList",
    "get_recording": "Recording",
    "rename_recording": "Recording",
    "get_recording_settings": "RecordingSettings",
    "patch_recording_settings": "RecordingSettings",
    "get_schedule": "ChannelSchedule",
    "create_schedule": "ScheduledStream",
    "patch_schedule": "ScheduledStream",
    "cancel_schedule": "ScheduledStream",
    "upcoming_schedule": "UpcomingSchedule",
    "my_analytics": "AnalyticsList",
    "broadcast_analytics": "BroadcastAnalytics",
    "list_categories": "CategoryList",
    "create_category": "Category",
    "get_category": "CategoryPage",
    "patch_category": "Category",
    "put_category_image": "Category",
    "delete_category_image": "Category",
    "search": "SearchResults",
    "tag_channels": "TagPage",
}

REQUEST_BODIES: dict[str, dict[str, Any]] = {
    "register": _obj(
        ["username", "email", "password"],
        username=STR,
        email=STR,
        password=STR,
        token_delivery=TOKEN_DELIVERY,
    ),
    "login": _obj(
        ["username", "password"], username=STR, password=STR, token_delivery=TOKEN_DELIVERY
    ),
    "refresh": _obj(["refresh_token"], refresh_token=STR),
    "logout": _obj([], refresh_token=STR, everywhere=BOOL),
    "patch_me": _obj(
        [],
        display_name=STR,
        bio=STR,
        email=STR,
        current_password={**STR, "description": "needed when email changes"},
    ),
    "change_password": _obj(
        ["current_password", "new_password"],
        current_password=STR,
        new_password=STR,
        token_delivery=TOKEN_DELIVERY,
    ),
    "delete_me": _obj(["password"], password=STR),
    "patch_channel": _obj(
        [],
        title=STR,
        description=STR,
        category={
            **_nullable(STR),
            "description": 'a category\'s slug or name (GET categories); null or "" for none',
        },
        tags={
            "type": "array",
            "items": STR,
            "maxItems": 10,
            "description": "1-25 characters each: letters, numbers, spaces and - _ + # . & '",
        },
        ladder={
            **_obj([], **_LADDER_SETTINGS),
            "description": "either field may be left out; applied when the next broadcast starts",
        },
    ),
    "rename_recording": _obj(["title"], title={**STR, "description": "1-140 characters"}),
    "patch_recording_settings": _obj(
        ["enabled"], enabled={**BOOL, "description": "record the next broadcasts"}
    ),
    "create_schedule": _obj(["title", "starts_at", "timezone"], **_SCHEDULE_FIELDS),
    "patch_schedule": {
        **_obj([], **_SCHEDULE_FIELDS),
        "description": "any of the fields; a timezone without starts_at keeps the instant",
    },
    "create_category": _obj(["name"], **_CATEGORY_FIELDS),
    "patch_category": _obj([], **_CATEGORY_FIELDS),
    "read_notifications": {
        "oneOf": [
            _obj(["ids"], ids={"type": "array", "items": INT, "maxItems": 500}),
            _obj(["all"], all={"type": "boolean", "enum": [True]}),
        ]
    },
}
#: Bodies that may be left out: refresh and logout then use the kitch_refresh cookie (with the
#: ``X-Kitch-CSRF: 1`` header).
OPTIONAL_BODIES = {"refresh", "logout"}
RAW_BODIES = {"put_avatar", "put_category_image"}
#: Raw bodies that take a picture alone (no multipart form).
IMAGE_ONLY_BODIES = {"put_category_image"}
#: Success statuses other than 200 (a test reads each handler's source to keep this current).
SUCCESS_STATUS = {
    "register": 201,
    "logout": 204,
    "delete_me": 204,
    "delete_avatar": 204,
    "delete_recording": 204,
    "create_schedule": 201,
    "create_category": 201,
    "delete_category": 204,
}
SUCCESS_MEDIA = {"user_avatar": "image/*", "category_image": "image/*"}
QUERY_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "get_category": _PAGING,
    "tag_channels": _PAGING,
    "search": [
        {
            "name": "q",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "maxLength": 200},
            "description": "the words to find (each whole or as a word's start)",
        },
        *_PAGING,
    ],
    "list_channels": [
        _limit(100, minimum=0),
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "live", "in": "query", "schema": BOOL, "description": "only live channels"},
    ],
    "chat_history": [
        {"name": "before", "in": "query", "schema": INT, "description": "messages before this id"},
        {"name": "after", "in": "query", "schema": INT, "description": "messages after this id"},
        _limit(100),
    ],
    "chat_audit": [
        {"name": "before", "in": "query", "schema": INT, "description": "entries before this id"},
        _limit(100),
    ],
    "chat_bans": [
        _limit(500),
    ],
    "get_notifications": [
        _limit(100),
    ],
    "list_recordings": [
        _limit(100, minimum=0),
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    ],
    "upcoming_schedule": [
        _limit(50),
        {
            "name": "cursor",
            "in": "query",
            "schema": STR,
            "description": "the next_cursor of the page before",
        },
    ],
    "my_analytics": [
        _limit(100),
    ],
}
#: The CSRF header of the cookie-authenticated auth calls.
HEADER_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    name: [
        {
            "name": "X-Kitch-CSRF",
            "in": "header",
            "schema": {"type": "string", "enum": ["1"]},
            "description": "required when the refresh token comes from the kitch_refresh cookie",
        }
    ]
    for name in ("refresh", "logout")
}
PUBLIC = {
    "register",
    "login",
    "refresh",
    "logout",
    "list_channels",
    "get_channel",
    "user_avatar",
    "openapi_json",
    "server_info",
    "chat_history",
    "list_recordings",
    "get_recording",
    "get_schedule",
    "upcoming_schedule",
    "list_categories",
    "get_category",
    "category_image",
    "search",
    "tag_channels",
}

#: Routes outside /api/v1 that clients use: a recording's HLS files (kitch/api/recordings.py).
VOD_PATHS: dict[str, Any] = {
    "/vod/{id}/{file}": {
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": INT},
            {
                "name": "file",
                "in": "path",
                "required": True,
                "schema": {
                    "type": "string",
                    "pattern": r"^(index\.m3u8|init(-\d+)?\.mp4|s\d+\.(m4s|ts))$",
                },
            },
        ],
        "get": {
            "operationId": "vod_file",
            "summary": "A recording's HLS playlist (index.m3u8), init segment or segment; "
            "segments answer Range requests and are cached forever",
            "parameters": [
                {"name": "Range", "in": "header", "schema": STR, "description": "bytes=..."}
            ],
            "responses": {
                "200": {
                    "description": "the file",
                    "content": {
                        "application/vnd.apple.mpegurl": {"schema": STR},
                        "video/mp4": {"schema": {"type": "string", "format": "binary"}},
                        "video/iso.segment": {"schema": {"type": "string", "format": "binary"}},
                        "video/mp2t": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "206": {"description": "the range asked for"},
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            },
        },
    }
}


def iter_api_routes(
    routes: Iterable[BaseRoute], prefix: str = ""
) -> Iterator[tuple[str, ApiRoute]]:
    """``(full path, route)`` for every ApiRoute, descending into mounts."""
    for route in routes:
        if isinstance(route, Mount):
            yield from iter_api_routes(route.routes, prefix + route.path)
        elif isinstance(route, ApiRoute):
            yield prefix + route.path, route


def _operation(method: str, handler: Any) -> dict[str, Any]:
    name = handler.__name__
    doc = (handler.__doc__ or name).strip().splitlines()[0]
    status = SUCCESS_STATUS.get(name, 200)
    success: dict[str, Any] = {"description": "success"}
    if name in SUCCESS_MEDIA:
        success["content"] = {
            SUCCESS_MEDIA[name]: {"schema": {"type": "string", "format": "binary"}}
        }
    elif status != 204:
        success["content"] = {"application/json": {"schema": _ref(RESPONSES[name])}}
    op: dict[str, Any] = {
        "operationId": f"{name}",
        "summary": doc,
        "responses": {
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": _ref("Error")}},
            },
            str(status): success,
        },
    }
    parameters = QUERY_PARAMETERS.get(name, []) + HEADER_PARAMETERS.get(name, [])
    if parameters:
        op["parameters"] = parameters
    if name in REQUEST_BODIES:
        op["requestBody"] = {
            "required": name not in OPTIONAL_BODIES,
            "content": {"application/json": {"schema": REQUEST_BODIES[name]}},
        }
    elif name in RAW_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {
                "image/*": {"schema": {"type": "string", "format": "binary"}},
                **(
                    {}
                    if name in IMAGE_ONLY_BODIES
                    else {
                        "multipart/form-data": {
                            "schema": _obj(["file"], file={"type": "string", "format": "binary"})
                        }
                    }
                ),
            },
        }
    if name not in PUBLIC:
        op["security"] = [{"bearer": []}]
    return op


def build_spec(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, route in iter_api_routes(routes):
        entry = paths.setdefault(path, {})
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if params:
            entry["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": STR} for p in params
            ]
        for method, handler in route.handlers.items():
            if method != "HEAD":
                entry[method.lower()] = _operation(method, handler)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kitch API", "version": kitch.__version__},
        "paths": {**paths, **VOD_PATHS},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


async def openapi_json(request: Request) -> Response:
    """This OpenAPI document."""
    spec = getattr(request.app.state, "openapi", None)
    if spec is None:
        spec = build_spec(request.app.routes)
        request.app.state.openapi = spec
    return JSONResponse(spec)


def document() -> dict[str, Any]:
    """The document the API serves, built without a server (``python -m kitch.api.openapi``
    prints it; scripts/gen-api-types makes the web app's TypeScript types from it)."""
    from pathlib import Path

    from kitch.api.app import create_app
    from kitch.config import Settings

    # a secret is given, so nothing is written to the (never used) data dir
    settings = Settings(data_dir=Path("/nonexistent"), secret="openapi-" + "x" * 32)
    return build_spec(create_app(settings).routes)


def without_summaries(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` minus the operations' summaries (handler docstrings), so generated types change
    only when a shape does."""
    paths = {
        path: {
            method: (
                {k: v for k, v in op.items() if k != "summary"} if isinstance(op, dict) else op
            )
            for method, op in item.items()
        }
        for path, item in spec["paths"].items()
    }
    return {**spec, "paths": paths}


if __name__ == "__main__":
    import json
    import sys

    spec = document()
    if "--no-summaries" in sys.argv[1:]:
        spec = without_summaries(spec)
    json.dump(spec, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
