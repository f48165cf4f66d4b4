"""``/api/v1/auth/*``: register, login, refresh, logout; and the ``current_user`` helper.

The refresh token travels as the HttpOnly cookie ``kitch_refresh`` (SameSite=Strict, scoped to
``/api/v1/auth``, Secure over HTTPS); a client without cookies asks for it in the body with
``"token_delivery": "body"`` and sends it back in the body. A request that authenticates with
the cookie must carry ``X-Kitch-CSRF: 1`` (a header a cross-site form cannot send).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kitch.api.bodies import get_bool, get_str, only_fields, read_json, require_str
from kitch.api.errors import ApiError, invalid, unauthorized
from kitch.api.routing import api_route
from kitch.api.views import user_json
from kitch.auth.names import normalise_email, normalise_username
from kitch.auth.passwords import MAX_LENGTH, Hasher, password_problem
from kitch.auth.ratelimit import FailureLimiter, LoginLimiter, address_key
from kitch.auth.tokens import (
    InvalidToken,
    decode_access_token,
    issue_access_token,
    successor_refresh_token,
)
from kitch.config import Settings
from kitch.db import Database
from kitch.db.tokens import (
    RefreshOutcome,
    create_session,
    revoke_session,
    revoke_session_of,
    rotate_refresh_token,
    session_active,
)
from kitch.db.users import (
    Conflict,
    User,
    create_user,
    get_user,
    get_user_by_login,
    get_user_by_name,
)
from kitch.db.users import sign_out_everywhere as db_sign_out_everywhere
from kitch.logs import fingerprint

log = logging.getLogger("kitch.auth")

COOKIE = "kitch_refresh"
COOKIE_PATH = "/api/v1/auth"
CSRF_HEADER = "x-kitch-csrf"
HOUR = 3600.0
#: What a registration answers when the email already has an account: the same as for an
#: address that cannot be used at all, so the answer does not tell that the account exists.
EMAIL_UNUSABLE = "that email address cannot be used for a new account"


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@dataclass
class Guards:
    """Per-app password hashing pool and rate limits (made on first use from the settings)."""

    hasher: Hasher
    logins: LoginLimiter
    registrations: FailureLimiter
    password_changes: FailureLimiter


def guards(request: Request) -> Guards:
    state = request.app.state
    found: Guards | None = getattr(state, "auth_guards", None)
    if found is None:
        settings = _settings(request)
        found = Guards(
            hasher=Hasher(settings.bcrypt_cost, settings.bcrypt_threads),
            logins=LoginLimiter(
                settings.login_attempts_per_account,
                settings.login_attempts_per_address,
                settings.login_window,
                time.monotonic,
                max_delay=settings.login_max_delay,
            ),
            registrations=FailureLimiter(settings.register_attempts_per_address, HOUR),
            password_changes=FailureLimiter(settings.password_change_attempts_per_address, HOUR),
        )
        state.auth_guards = found
    return found


def client_address(request: Request) -> str:
    """The key the client's address is rate limited under (IPv6: its /64)."""
    return address_key(request.client.host) if request.client is not None else "unknown"


def rate_limited(wait: int, what: str) -> ApiError:
    return ApiError(
        429, "rate_limited", f"too many {what}; try again in {wait} s", {"Retry-After": str(wait)}
    )


def count_attempt(request: Request, limiter: FailureLimiter, what: str) -> None:
    """Count one attempt of the client's address; 429 once the hourly allowance is spent."""
    wait = limiter.hit(client_address(request), time.monotonic())
    if wait:
        raise rate_limited(wait, what)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("use an Authorization: Bearer <access token> header", "invalid_token")
    return token.strip()


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who an access token signs in: the user, its token version and session, its expiry."""

    user: User
    version: int
    session: str
    expires_at: int


async def session_valid(db: Database, user_id: int, version: int, session: str) -> bool:
    """Whether a token's user, token version and session still stand (not signed out, no
    password change since)."""
    user = await get_user(db, user_id)
    return (
        user is not None
        and user.token_version == version
        and await session_active(db, session, user_id)
    )


async def verify_access_token(db: Database, secret: bytes, token: str) -> SignedIn | str:
    """The sign-in an access token stands for, or why not: ``"invalid_token"`` (bad or
    expired) or ``"token_revoked"``. The HTTP API and the WebSockets all check tokens here."""
    try:
        claims = decode_access_token(secret, token)
    except InvalidToken:
        return "invalid_token"
    user = await get_user(db, claims.user_id)
    if user is None or not await session_valid(db, user.id, claims.version, claims.session):
        return "token_revoked"
    return SignedIn(user, claims.version, claims.session, claims.expires_at)


async def _signed_in(request: Request) -> tuple[User, str] | None:
    """``(user, session id)`` from the access token; None without one; 401 for a bad one."""
    token = _bearer(request)
    if token is None:
        return None
    found = await verify_access_token(_db(request), request.app.state.secret, token)
    if found == "invalid_token":
        raise unauthorized("the access token is invalid or expired", "invalid_token")
    if isinstance(found, str):
        raise unauthorized("the access token has been revoked", "invalid_token")
    return found.user, found.session


async def optional_user(request: Request) -> User | None:
    """The signed-in user, None without an Authorization header; 401 for a bad token."""
    found = await _signed_in(request)
    return None if found is None else found[0]


async def current_user(request: Request) -> User:
    """The signed-in user; 401 when there is no valid access token."""
    user = await optional_user(request)
    if user is None:
        raise unauthorized()
    return user


def body_delivery(body: dict[str, Any]) -> bool:
    """True when the client asked for the refresh token in the body (``token_delivery``)."""
    value = body.get("token_delivery", "cookie")
    if value not in ("cookie", "body"):
        raise invalid('token_delivery must be "cookie" or "body"')
    return bool(value == "body")


def _set_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    public_url = _settings(request).public_url or ""
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https" or public_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(request: Request, response: Response) -> Response:
    _set_cookie(request, response, "", 0)
    return response


def tokens_response(
    request: Request,
    user: User,
    session: str,
    refresh: str,
    *,
    in_body: bool,
    status_code: int = 200,
) -> Response:
    """``{access_token, token_type, expires_in, user}`` with the refresh token as the cookie,
    or (``in_body``) as ``refresh_token`` in the answer and no cookie.
    """
    settings = _settings(request)
    access = issue_access_token(
        request.app.state.secret,
        user.id,
        user.token_version,
        session,
        settings.access_token_ttl,
        int(time.time()),
    )
    payload: dict[str, Any] = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": settings.access_token_ttl,
        "user": user_json(user, private=True),
    }
    if in_body:
        payload["refresh_token"] = refresh
    response = JSONResponse(payload, status_code=status_code)
    if not in_body:
        _set_cookie(request, response, refresh, settings.refresh_token_ttl)
    return response


async def sign_in(
    request: Request, user: User, *, in_body: bool, status_code: int = 200
) -> Response:
    """Start a new session for ``user`` and answer its tokens."""
    session = await create_session(_db(request), user.id, _settings(request).refresh_token_ttl)
    return tokens_response(
        request, user, session.id, session.refresh_token, in_body=in_body, status_code=status_code
    )


#: ``hook(user_id, session)``: that session of the user ended (None: every session of the user).
SignOutHook = Callable[[int, str | None], None]


def on_sign_out(app: Starlette, hook: SignOutHook) -> None:
    """Have ``hook(user_id, session)`` called when a session ends (a sign-out, a reused refresh
    token), with ``session`` None when all of the user's sessions end at once (password change,
    sign-out everywhere, account deleted): the sockets signed in with it close then, not at
    their next periodic check."""
    hooks: list[SignOutHook] = getattr(app.state, "sign_out_hooks", [])
    app.state.sign_out_hooks = [*hooks, hook]


def signed_out(app: Starlette, user_id: int, session: str | None = None) -> None:
    """Tell the :func:`on_sign_out` hooks that ``session`` (None: every session) of ``user_id``
    ended."""
    for hook in getattr(app.state, "sign_out_hooks", []):
        hook(user_id, session)


async def register(request: Request) -> Response:
    """Create an account (and its channel and stream key); answers tokens and the user."""
    body = await read_json(request)
    only_fields(body, {"username", "email", "password", "token_delivery"})
    in_body = body_delivery(body)
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
    count_attempt(request, guards(request).registrations, "registrations from your address")
    db = _db(request)
    # Usernames are public: a taken one is said before any password hashing is paid for.
    if await get_user_by_name(db, username) is not None:
        raise ApiError(409, "username_taken", "that username is already taken")
    password_hash = await guards(request).hasher.hash(password)
    try:
        user, _key = await create_user(db, username, email, password_hash)
    except Conflict as exc:
        raise conflict_error(exc) from None
    log.info("registered user %s (id %d)", user.username, user.id)
    return await sign_in(request, user, in_body=in_body, status_code=201)


def conflict_error(exc: Conflict) -> ApiError:
    """A taken username is said; a taken email answers like an unusable one (it is private)."""
    if exc.field == "email":
        return invalid(EMAIL_UNUSABLE)
    return ApiError(409, "username_taken", "that username is already taken")


_dummy_hashes: dict[int, str] = {}


async def _dummy_hash(hasher: Hasher) -> str:
    """A hash to verify against when the account does not exist (same timing as a miss)."""
    if hasher.cost not in _dummy_hashes:
        _dummy_hashes[hasher.cost] = await hasher.hash("kitch-dummy")
    return _dummy_hashes[hasher.cost]


def account_keys(user: User) -> list[str]:
    """The login limiter's keys of a known account: each name it can be signed in with."""
    return [user.username, user.email.lower()]


async def password_matches(
    request: Request, user: User | None, accounts: list[str], password: str
) -> bool:
    """Check ``password`` against ``user`` (a dummy hash when None), rate limited per account
    key and client address: 429 with Retry-After while an account waits after failures. Used by
    login and by the routes that ask for the current password again.
    """
    found = guards(request)
    address = client_address(request)
    wait = found.logins.attempt(accounts, address)
    if wait:
        raise rate_limited(wait, "failed password attempts")
    stored = user.password_hash if user else await _dummy_hash(found.hasher)
    matches = await found.hasher.verify(password, stored)  # also for no user: same timing
    if user is None or not matches:
        log.info("wrong password for %s from %s", fingerprint(accounts[0]), address)
        return False
    found.logins.succeeded(accounts, address)
    return True


async def login(request: Request) -> Response:
    """Exchange username-or-email + password for tokens; failures slow the account down."""
    body = await read_json(request)
    only_fields(body, {"username", "password", "token_delivery"})
    in_body = body_delivery(body)
    login_name = require_str(body, "username", max_len=320, strip=True)
    password = require_str(body, "password", max_len=64 * 1024)
    user = await get_user_by_login(_db(request), login_name)
    # Limited under the name as typed, whether or not it names an account: a bucket shared by
    # an account's username and email would tell which email belongs to which user.
    if not await password_matches(request, user, [login_name.lower()], password) or user is None:
        raise unauthorized("wrong username or password", "invalid_credentials")
    return await sign_in(request, user, in_body=in_body)


def cookie_token(request: Request) -> str | None:
    """The refresh token from the cookie (None without one); 403 without the CSRF header."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(
            403, "csrf_check_failed", "send the header X-Kitch-CSRF: 1 with the refresh cookie"
        )
    return token


async def refresh(request: Request) -> Response:
    """Exchange a refresh token (body or cookie) for a new access token and refresh token."""
    body = await read_json(request, optional=True)
    only_fields(body, {"refresh_token"})
    token = get_str(body, "refresh_token", max_len=256, required=False)
    in_body = token is not None
    if token is None:
        token = cookie_token(request)
    if token is None:
        raise unauthorized("no refresh token (cookie or body)", "invalid_token")
    settings = _settings(request)
    secret: bytes = request.app.state.secret
    result = await rotate_refresh_token(
        _db(request),
        token,
        successor=lambda old: successor_refresh_token(secret, old),
        ttl=settings.refresh_token_ttl,
        grace=settings.refresh_reuse_grace,
    )
    user = await get_user(_db(request), result.user_id) if result.user_id is not None else None
    if result.outcome is RefreshOutcome.REUSED:
        log.warning("refresh token reuse for user %s: session revoked", result.user_id)
        if result.user_id is not None and result.session is not None:
            signed_out(request.app, result.user_id, result.session)
        error = unauthorized("refresh token reused; signed out for safety", "token_reused")
    elif result.outcome is not RefreshOutcome.ROTATED or user is None:
        error = unauthorized("the refresh token is invalid or expired", "invalid_token")
    else:
        assert result.session is not None and result.token is not None
        return tokens_response(request, user, result.session, result.token, in_body=in_body)
    if not in_body:
        error.headers["Set-Cookie"] = _expired_cookie(request)
    raise error


def _expired_cookie(request: Request) -> str:
    response = clear_cookie(request, Response())
    return response.headers["set-cookie"]


async def logout(request: Request) -> Response:
    """Revoke this session (refresh token from the body or cookie, or the access token's
    session); ``everywhere: true`` with an access token signs out every session.
    """
    body = await read_json(request, optional=True)
    only_fields(body, {"refresh_token", "everywhere"})
    token = get_str(body, "refresh_token", max_len=256, required=False)
    everywhere = get_bool(body, "everywhere")
    if token is None:
        token = cookie_token(request)
    try:
        signed_in = await _signed_in(request)
    except ApiError:
        if everywhere or token is None:
            raise
        signed_in = None  # an expired access token does not keep the refresh token signed in
    db = _db(request)
    if everywhere:
        if signed_in is None:
            raise unauthorized("signing out everywhere needs an access token")
        await db_sign_out_everywhere(db, signed_in[0].id)
        signed_out(request.app, signed_in[0].id)
        return clear_cookie(request, Response(status_code=204))
    revoked = await revoke_session_of(db, token) if token is not None else None
    if revoked is not None:
        signed_out(request.app, *revoked)
    if signed_in is not None:
        await revoke_session(db, signed_in[1], signed_in[0].id)
        signed_out(request.app, signed_in[0].id, signed_in[1])
    elif revoked is None:
        raise unauthorized("send the refresh token to sign out", "invalid_token")
    return clear_cookie(request, Response(status_code=204))


def routes() -> list[BaseRoute]:
    return [
        api_route("/auth/register", POST=register),
        api_route("/auth/login", POST=login),
        api_route("/auth/refresh", POST=refresh),
        api_route("/auth/logout", POST=logout),
    ]
