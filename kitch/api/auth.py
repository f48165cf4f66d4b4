"""``/api/v1/auth/*``: register, login, refresh, logout; and the ``current_user`` helper."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.bodies import get_bool, get_str, only_fields, read_json, require_str
from kitch.api.errors import ApiError, invalid, unauthorized
from kitch.api.routing import api_route
from kitch.api.views import user_json
from kitch.auth.names import normalise_email, normalise_username
from kitch.auth.passwords import (
    MAX_LENGTH,
    hash_password,
    hash_password_sync,
    password_problem,
    verify_password,
)
from kitch.auth.ratelimit import LoginLimiter
from kitch.auth.tokens import InvalidToken, decode_access_token, issue_access_token
from kitch.config import Settings
from kitch.db import Database
from kitch.db.tokens import (
    RefreshOutcome,
    create_refresh_token,
    revoke_family_of,
    rotate_refresh_token,
)
from kitch.db.users import Conflict, User, create_user, get_user, get_user_by_login
from kitch.db.users import sign_out_everywhere as db_sign_out_everywhere
from kitch.logs import fingerprint

log = logging.getLogger("kitch.auth")


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("use an Authorization: Bearer <access token> header", "invalid_token")
    return token.strip()


async def optional_user(request: Request) -> User | None:
    """The signed-in user, None without an Authorization header; 401 for a bad token."""
    token = _bearer(request)
    if token is None:
        return None
    try:
        claims = decode_access_token(request.app.state.secret, token)
    except InvalidToken:
        raise unauthorized("the access token is invalid or expired", "invalid_token") from None
    user = await get_user(_db(request), claims.user_id)
    if user is None or user.token_version != claims.version:
        raise unauthorized("the access token has been revoked", "invalid_token")
    return user


async def current_user(request: Request) -> User:
    """The signed-in user; 401 when there is no valid access token."""
    user = await optional_user(request)
    if user is None:
        raise unauthorized()
    return user


async def token_pair(request: Request, user: User) -> dict[str, Any]:
    """A fresh access token plus a new refresh-token family for ``user``."""
    settings = _settings(request)
    refresh = await create_refresh_token(_db(request), user.id, settings.refresh_token_ttl)
    return _pair(request, user.id, user.token_version, refresh)


def _pair(request: Request, user_id: int, version: int, refresh: str) -> dict[str, Any]:
    settings = _settings(request)
    access = issue_access_token(
        request.app.state.secret, user_id, version, settings.access_token_ttl, int(time.time())
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": settings.access_token_ttl,
    }


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def register(request: Request) -> Response:
    """Create an account (and its channel and stream key); answers tokens and the user."""
    body = await read_json(request)
    only_fields(body, {"username", "email", "password"})
    username, problem = normalise_username(require_str(body, "username", max_len=64))
    if username is None:
        raise invalid(problem or "invalid username")
    email, problem = normalise_email(require_str(body, "email", max_len=320))
    if email is None:
        raise invalid(problem or "invalid email")
    password = require_str(body, "password", max_len=MAX_LENGTH)
    problem = password_problem(password)
    if problem is not None:
        raise invalid(problem)
    password_hash = await hash_password(password, _settings(request).bcrypt_cost)
    try:
        user, _key = await create_user(_db(request), username, email, password_hash)
    except Conflict as exc:
        raise ApiError(409, f"{exc.field}_taken", f"that {exc.field} is already taken") from None
    log.info("registered user %s (id %d)", user.username, user.id)
    payload = await token_pair(request, user)
    payload["user"] = user_json(user, private=True)
    return JSONResponse(payload, status_code=201)


_dummy_hashes: dict[int, str] = {}


async def _dummy_hash(cost: int) -> str:
    """A hash to verify against when the account does not exist (same timing as a miss)."""
    if cost not in _dummy_hashes:
        _dummy_hashes[cost] = await asyncio.to_thread(hash_password_sync, "kitch-dummy", cost)
    return _dummy_hashes[cost]


async def password_matches(
    request: Request, user: User | None, account: str, password: str
) -> bool:
    """Check ``password`` against ``user`` (a dummy hash when None), rate limited per account
    and client address: 429 with Retry-After once too many attempts failed. Used by login and by
    the routes that ask for the current password again.
    """
    limiter: LoginLimiter = request.app.state.login_limiter
    address = client_address(request)
    wait = limiter.attempt(account, address)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"too many failed password attempts; try again in {wait} s",
            {"Retry-After": str(wait)},
        )
    stored = user.password_hash if user else await _dummy_hash(_settings(request).bcrypt_cost)
    matches = await verify_password(password, stored)  # also for no user: same timing
    if user is None or not matches:
        log.info("wrong password for %s from %s", fingerprint(account), address)
        return False
    limiter.succeeded(account, address)
    return True


async def login(request: Request) -> Response:
    """Exchange username-or-email + password for tokens; failures are rate limited."""
    body = await read_json(request)
    only_fields(body, {"username", "password"})
    login_name = require_str(body, "username", max_len=320, strip=True)
    password = require_str(body, "password", max_len=64 * 1024)
    user = await get_user_by_login(_db(request), login_name)
    # Count per account (username and email alike), or per typed name when there is none.
    account = f"id:{user.id}" if user else f"name:{login_name.lower()}"
    if not await password_matches(request, user, account, password) or user is None:
        raise unauthorized("wrong username or password", "invalid_credentials")
    return JSONResponse(await token_pair(request, user))


async def refresh(request: Request) -> Response:
    """Rotate a refresh token: answers a new access and refresh token."""
    body = await read_json(request)
    only_fields(body, {"refresh_token"})
    token = require_str(body, "refresh_token", max_len=256)
    settings = _settings(request)
    result = await rotate_refresh_token(
        _db(request),
        token,
        ttl=settings.refresh_token_ttl,
        grace=settings.refresh_reuse_grace,
    )
    if result.outcome is RefreshOutcome.REUSED:
        log.warning("refresh token reuse for user %s: family revoked", result.user_id)
        raise unauthorized("refresh token reused; signed out for safety", "token_reused")
    if result.outcome is not RefreshOutcome.ROTATED or result.user_id is None or not result.token:
        raise unauthorized("the refresh token is invalid or expired", "invalid_token")
    user = await get_user(_db(request), result.user_id)
    if user is None:
        raise unauthorized("the refresh token is invalid or expired", "invalid_token")
    return JSONResponse(_pair(request, user.id, user.token_version, result.token))


async def logout(request: Request) -> Response:
    """Revoke a refresh token's session; ``everywhere: true`` signs out every session."""
    body = await read_json(request, optional=True)
    only_fields(body, {"refresh_token", "everywhere"})
    token = get_str(body, "refresh_token", max_len=256, required=False)
    everywhere = get_bool(body, "everywhere")
    user = await optional_user(request)
    if everywhere:
        if user is None:
            raise unauthorized("signing out everywhere needs an access token")
        await db_sign_out_everywhere(_db(request), user.id)
        return Response(status_code=204)
    if token is not None:
        owner = await revoke_family_of(_db(request), token)
        if owner is not None and (user is None or owner == user.id):
            return Response(status_code=204)
    if user is None:
        raise unauthorized("send the refresh token to sign out", "invalid_token")
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    return [
        api_route("/auth/register", POST=register),
        api_route("/auth/login", POST=login),
        api_route("/auth/refresh", POST=refresh),
        api_route("/auth/logout", POST=logout),
    ]
