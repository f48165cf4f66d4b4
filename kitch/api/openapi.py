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


def _obj(required: Iterable[str] = (), **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": props}


STR: dict[str, Any] = {"type": "string"}
BOOL: dict[str, Any] = {"type": "boolean"}

REQUEST_BODIES: dict[str, dict[str, Any]] = {
    "register": _obj(["username", "email", "password"], username=STR, email=STR, password=STR),
    "login": _obj(["username", "password"], username=STR, password=STR),
    "refresh": _obj(["refresh_token"], refresh_token=STR),
    "logout": _obj([], refresh_token=STR, everywhere=BOOL),
    "patch_me": _obj([], display_name=STR, bio=STR, email=STR),
    "change_password": _obj(
        ["current_password", "new_password"], current_password=STR, new_password=STR
    ),
    "delete_me": _obj(["password"], password=STR),
    "patch_channel": _obj(
        [],
        title=STR,
        description=STR,
        category=STR,
        tags={"type": "array", "items": STR, "maxItems": 10},
    ),
}
RAW_BODIES = {"put_avatar"}
#: Success statuses other than 200 (a test reads each handler's source to keep this current).
SUCCESS_STATUS = {"register": 201, "logout": 204, "delete_me": 204, "delete_avatar": 204}
SUCCESS_MEDIA = {"user_avatar": "image/*"}
QUERY_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "list_channels": [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "live", "in": "query", "schema": BOOL, "description": "only live channels"},
    ],
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
}

ERROR = {
    "type": "object",
    "properties": {
        "error": _obj(["code", "message"], code=STR, message=STR),
    },
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
    if status != 204:
        success["content"] = {SUCCESS_MEDIA.get(name, "application/json"): {}}
    op: dict[str, Any] = {
        "operationId": f"{name}",
        "summary": doc,
        "responses": {
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": ERROR}},
            },
            str(status): success,
        },
    }
    if name in QUERY_PARAMETERS:
        op["parameters"] = QUERY_PARAMETERS[name]
    if name in REQUEST_BODIES:
        op["requestBody"] = {
            "required": name != "logout",
            "content": {"application/json": {"schema": REQUEST_BODIES[name]}},
        }
    elif name in RAW_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {
                "image/*": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": _obj(["file"], file={"type": "string", "format": "binary"})
                },
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
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
    }


async def openapi_json(request: Request) -> Response:
    """This OpenAPI document."""
    spec = getattr(request.app.state, "openapi", None)
    if spec is None:
        spec = build_spec(request.app.routes)
        request.app.state.openapi = spec
    return JSONResponse(spec)
