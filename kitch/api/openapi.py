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
_CHANNEL_PAGE: dict[str, Any] = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/Channel"},
    "description": "live first and the most watched first, then the most recently live",
}
_NEXT_OFFSET: dict[str, Any] = {
    "type": ["integer", "null"],
    "description": "the offset of the next page, null on the last page",
}
_PAGING: list[dict[str, Any]] = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
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
        hls_url=STR,
        follower_count=INT,
        following={**BOOL, "description": "only for a signed-in caller: whether they follow it"},
        viewers={
            **INT,
            "description": "present only while live: distinct HLS viewers in the viewer window",
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
        kind={"type": "string", "enum": ["live"], "description": "live: a followed channel"},
        channel=_nullable(STR),
        title={**STR, "description": "the channel's title when it went live"},
        broadcast_id=_nullable(INT),
        created_at=TIME,
        read=BOOL,
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
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "live", "in": "query", "schema": BOOL, "description": "only live channels"},
    ],
    "chat_history": [
        {"name": "before", "in": "query", "schema": INT, "description": "messages before this id"},
        {"name": "after", "in": "query", "schema": INT, "description": "messages after this id"},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        },
    ],
    "chat_audit": [
        {"name": "before", "in": "query", "schema": INT, "description": "entries before this id"},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        },
    ],
    "get_notifications": [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        },
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
    "list_categories",
    "get_category",
    "category_image",
    "search",
    "tag_channels",
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
        "paths": paths,
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
