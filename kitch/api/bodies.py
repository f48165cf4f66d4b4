"""Reading request bodies with a size cap, and checking JSON fields by hand (no schema library).

Each failure raises :class:`~kitch.api.errors.ApiError`: 413 when the body is larger than the
cap, 415 for a wrong Content-Type, 400 for malformed JSON, 422 for wrong shapes or types.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from kitch.api.errors import ApiError, invalid
from kitch.auth.names import text_problem


def settings_limit(request: Request) -> int:
    limit: int = request.app.state.settings.max_body_bytes
    return limit


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` bytes before and while reading."""
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > limit)
    ):
        raise ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object. With ``optional``, an empty body means ``{}``."""
    body = await read_body(request, settings_limit(request))
    if optional and not body.strip():
        return {}
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
        # "\ud800" escapes (and raw surrogate bytes, which json.loads lets through) give strings
        # that cannot be stored or answered as UTF-8: refuse them here, once, not with a 500 later.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise invalid("the request body must be a JSON object")
    return data


def only_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """Refuse unknown fields, so a typo is an error rather than silently ignored."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(unknown)[:200]}")


def get_str(
    body: dict[str, Any],
    name: str,
    *,
    max_len: int,
    required: bool = True,
    strip: bool = False,
) -> str | None:
    """``body[name]`` as a string of at most ``max_len`` chars; None if absent and optional."""
    if name not in body or body[name] is None:
        if required:
            raise invalid(f"{name} is required")
        return None
    value = body[name]
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    if strip:
        value = value.strip()
    if len(value) > max_len:
        raise invalid(f"{name} must be at most {max_len} characters")
    if "\x00" in value:
        raise invalid(f"{name} must not contain NUL characters")
    return value


def get_text(
    body: dict[str, Any], name: str, *, max_len: int, multiline: bool = False
) -> str | None:
    """An optional free-text field (a title, bio, category...), trimmed, checked by the one rule
    for free text (:func:`kitch.auth.names.text_problem`); None if absent.
    """
    value = get_str(body, name, max_len=max_len, required=False, strip=True)
    if value is not None:
        problem = text_problem(value, multiline=multiline)
        if problem is not None:
            raise invalid(f"{name} {problem}")
    return value


def require_str(body: dict[str, Any], name: str, *, max_len: int, strip: bool = False) -> str:
    value = get_str(body, name, max_len=max_len, strip=strip)
    assert value is not None
    return value


def get_bool(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false")
    return value
