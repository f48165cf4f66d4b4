"""The one JSON error shape of the API: ``{"error": {"code": "...", "message": "..."}}``.

Raise :class:`ApiError` in handlers. Starlette's own ``HTTPException`` (404 for unmatched paths,
405 for a wrong method) and unexpected exceptions (500) are turned into the same shape for any
path under ``/api``; other paths keep Starlette's plain-text behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

log = logging.getLogger("kitch.api")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


class ApiError(Exception):
    """An error answered as JSON with ``status``, a stable ``code`` and a human ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def unauthorized(message: str = "authentication required", code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message, {"WWW-Authenticate": "Bearer"})


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, "not_found", message)


def invalid(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


#: Every API answer carries these unless its handler set them: nothing private or token-bearing
#: is kept by a browser or proxy cache, and no answer is sniffed into another content type.
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def with_api_headers(response: Response) -> Response:
    """``response`` with :data:`API_HEADERS` added where the handler did not set its own."""
    for name, value in API_HEADERS.items():
        if name not in response.headers:
            response.headers[name] = value
    return response


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    response = JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers=dict(headers or {}),
    )
    return with_api_headers(response)


def _is_api(request: Request) -> bool:
    path: str = request.scope.get("path", "")
    return path == "/api" or path.startswith("/api/")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    if not _is_api(request):
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail
    # The request path is never echoed: an answer that repeats attacker-chosen text is a
    # reflection vector (and the client knows what it asked for).
    if exc.status_code == 404:
        message = "no such API route; the API lives under /api/v1"
    elif exc.status_code == 405:
        message = "this method is not allowed on this route (see the Allow header)"
    return error_response(exc.status_code, code, message, exc.headers)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    """Last resort (Starlette re-raises after sending this, so the server logs the traceback)."""
    if not _is_api(request):
        return PlainTextResponse("Internal Server Error", status_code=500)
    return error_response(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: server_error_handler,
}
