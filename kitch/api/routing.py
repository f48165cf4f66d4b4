"""One Starlette route per path with a handler per method (correct 405 ``Allow`` headers).

``api_route("/me", GET=get_me, PATCH=patch_me)``; the handlers stay visible to the OpenAPI
generator as ``route.handlers``. Every answer gets the API's headers
(:data:`kitch.api.errors.API_HEADERS`) unless the handler set its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kitch.api.errors import with_api_headers

Handler = Callable[[Request], Awaitable[Response]]


class ApiRoute(Route):
    """A Route that dispatches on the HTTP method to ``handlers``."""

    handlers: dict[str, Handler]


def api_route(path: str, **handlers: Handler) -> ApiRoute:
    table = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])

    async def dispatch(request: Request) -> Response:
        return with_api_headers(await table[request.method](request))

    dispatch.__name__ = "_".join(h.__name__ for h in handlers.values())
    route = ApiRoute(path, dispatch, methods=list(table))
    route.handlers = table
    return route
