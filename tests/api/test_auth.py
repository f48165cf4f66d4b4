"""Registration, login, refresh rotation and reuse, logout, tokens: the happy paths and abuse."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from kitch.auth.tokens import issue_access_token
from kitch.db import Database
from tests.api.helpers import PASSWORD, TEST_SECRET, Register, assert_error

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


async def test_register_then_me(client: httpx.AsyncClient, register: Register) -> None:
    data = await register("Alice_1")
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == 900
    assert data["user"]["username"] == "alice_1"
    me = await client.get("/api/v1/me", headers=data["auth"])
    assert me.status_code == 200
    assert me.json()["email"] == "Alice_1@example.com"
    assert "password_hash" not in me.text


async def test_login_by_username_or_email(client: httpx.AsyncClient, register: Register) -> None:
    await register("bob")
    for login in ("bob", "BOB", "bob@example.com", "Bob@Example.com"):
        response = await client.post(LOGIN, json={"username": login, "password": PASSWORD})
        assert response.status_code == 200, (login, response.text)
        assert set(response.json()) == {"access_token", "token_type", "expires_in", "user"}
        assert response.json()["user"]["email"] == "bob@example.com"
        assert response.cookies.get("kitch_refresh", "").startswith("rt_")


async def test_wrong_password_and_unknown_user_are_401(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("carol")
    wrong = await client.post(LOGIN, json={"username": "carol", "password": "nope-nope"})
    assert_error(wrong, 401, "invalid_credentials")
    unknown = await client.post(LOGIN, json={"username": "nobody", "password": "nope-nope"})
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()


async def test_long_passwords_are_not_truncated(
    client: httpx.AsyncClient, register: Register
) -> None:
    long_password = "x" * 100
    await register("dave", password=long_password)
    ok = await client.post(LOGIN, json={"username": "dave", "password": long_password})
    assert ok.status_code == 200
    # Same first 72 bytes, different tail: bcrypt alone would accept it.
    almost = await client.post(LOGIN, json={"username": "dave", "password": "x" * 72 + "y" * 28})
    assert_error(almost, 401)
    huge = await client.post(LOGIN, json={"username": "dave", "password": "z" * 5000})
    assert_error(huge, 401)


@pytest.mark.parametrize(
    ("username", "why"),
    [
        ("ab", "too short"),
        ("a" * 26, "too long"),
        ("al ice", "space"),
        ("alice'; DROP TABLE users;--", "sql"),
        ("admin", "reserved"),
        ("API", "reserved, case-folded"),
        ("dashboard", "reserved route"),
        ("\u0430lice", "cyrillic a"),
        ("\u212aelvin", "kelvin sign lower-cases to k"),
        ("\uff41\uff4c\uff49\uff43\uff45", "fullwidth"),
        ("alice\u200b", "zero width space"),
    ],
)
async def test_bad_usernames_are_refused(
    client: httpx.AsyncClient, username: str, why: str
) -> None:
    response = await client.post(
        REGISTER, json={"username": username, "email": "x@example.com", "password": PASSWORD}
    )
    assert_error(response, 422, "validation_error")


async def test_usernames_are_unique_case_insensitively(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("erin")
    response = await client.post(
        REGISTER, json={"username": "ERIN", "email": "other@example.com", "password": PASSWORD}
    )
    assert_error(response, 409, "username_taken")


async def test_a_taken_email_is_not_told_apart_by_its_code(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    """Email addresses are private: no "email_taken"; the answer is a plain validation error."""
    await register("erin")
    response = await client.post(
        REGISTER, json={"username": "erin2", "email": "ERIN@example.com", "password": PASSWORD}
    )
    assert_error(response, 422, "validation_error")
    assert "taken" not in response.text
    assert await db.fetchone("SELECT 1 FROM users WHERE username = 'erin2'") is None


async def test_concurrent_registrations_of_one_name(
    client: httpx.AsyncClient, db: Database
) -> None:
    async def attempt(i: int) -> httpx.Response:
        return await client.post(
            REGISTER,
            json={"username": "frank", "email": f"f{i}@example.com", "password": PASSWORD},
        )

    responses = await asyncio.gather(*(attempt(i) for i in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7
    rows = await db.fetchall("SELECT id FROM users WHERE username = 'frank'")
    assert len(rows) == 1
    # Nothing half-written: exactly one channel and one key exist for the one user.
    for table in ("channels", "stream_keys"):
        count = await db.fetchone(f"SELECT count(*) FROM {table}")
        assert count is not None and count[0] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"username": "gina", "email": "gina@example.com"},
        {"username": "gina", "email": "gina@example.com", "password": 12345678},
        {"username": ["gina"], "email": "gina@example.com", "password": PASSWORD},
        {"username": "gina", "email": "not-an-email", "password": PASSWORD},
        {"username": "gina", "email": "gina@example.com", "password": "short"},
        {"username": "gina", "email": "gina@example.com", "password": PASSWORD, "admin": True},
        {"username": None, "email": "gina@example.com", "password": PASSWORD},
    ],
)
async def test_register_validation(client: httpx.AsyncClient, db: Database, body: object) -> None:
    response = await client.post(REGISTER, json=body)
    assert_error(response, 422, "validation_error")
    row = await db.fetchone("SELECT count(*) FROM users")
    assert row is not None and row[0] == 0


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"username": NaN}', 400, "invalid_json"),
        (b"[1, 2, 3]", 422, "validation_error"),
        (b'"just a string"', 422, "validation_error"),
        (b"[" * 100_00 + b"]" * 100_00, 400, "invalid_json"),
        (b"\xff\xfe garbage", 400, "invalid_json"),
        # Lone surrogates cannot be stored or answered as UTF-8 (each was a 500).
        (b'{"username": "ab\\ud800c", "email": "a@b.co", "password": "password1"}', 400, None),
        (b'{"username": "abc", "email": "a\\udfff@b.co", "password": "password1"}', 400, None),
        (b'{"username": "abc", "email": "a\xed\xa0\x80@b.co", "password": "password1"}', 400, None),
        (b'{"\\ud800": 1}', 400, "invalid_json"),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, content: bytes, status: int, code: str | None
) -> None:
    response = await client.post(
        REGISTER, content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(response, status, code)


async def test_lone_surrogates_in_login_and_profile_are_400(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("ulla")
    json_type = {"Content-Type": "application/json"}
    login = await client.post(
        LOGIN, content=b'{"username": "x\\ud800", "password": "p"}', headers=json_type
    )
    assert_error(login, 400, "invalid_json")
    for path, body in (
        ("/api/v1/me", b'{"bio": "\\udc00"}'),
        ("/api/v1/channels/ulla", b'{"title": "\\ud83d"}'),
    ):
        response = await client.patch(path, content=body, headers={**json_type, **data["auth"]})
        assert_error(response, 400, "invalid_json")


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        LOGIN, content=b"username=a&password=b", headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415, "unsupported_media_type")


async def test_huge_body_is_413(client: httpx.AsyncClient, db: Database) -> None:
    big = json.dumps({"username": "h" * 200_000, "email": "h@example.com", "password": PASSWORD})
    response = await client.post(
        REGISTER, content=big, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")

    async def chunks() -> object:
        for _ in range(100):
            yield b" " * 10_000

    streamed = await client.post(
        REGISTER, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(streamed, 413, "payload_too_large")


async def test_refresh_rotates_and_old_token_replay_revokes_the_session(
    client: httpx.AsyncClient, register: Register, app: Starlette
) -> None:
    data = await register("henry")
    other = await client.post(
        LOGIN, json={"username": "henry", "password": PASSWORD, "token_delivery": "body"}
    )
    first = data["refresh_token"]
    rotated = await client.post(REFRESH, json={"refresh_token": first})
    assert rotated.status_code == 200
    assert set(rotated.json()) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "user",
    }
    assert "set-cookie" not in rotated.headers  # body in, body out
    second = rotated.json()["refresh_token"]
    assert second != first
    fresh_auth = {"Authorization": f"Bearer {rotated.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=fresh_auth)).status_code == 200
    # Past the grace period, presenting the used token again is theft: the session dies, its
    # refresh tokens and its access tokens (old and new) at once.
    app.state.settings = dataclasses.replace(app.state.settings, refresh_reuse_grace=0.0)
    await asyncio.sleep(0.01)
    replay = await client.post(REFRESH, json={"refresh_token": first})
    assert_error(replay, 401, "token_reused")
    after = await client.post(REFRESH, json={"refresh_token": second})
    assert_error(after, 401, "invalid_token")
    for auth in (data["auth"], fresh_auth):
        assert_error(await client.get("/api/v1/me", headers=auth), 401, "invalid_token")
    # Another sign-in of the same user is another session: untouched.
    other_auth = {"Authorization": f"Bearer {other.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=other_auth)).status_code == 200


async def test_two_tabs_refreshing_together_stay_signed_in(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("iris")
    token = data["refresh_token"]
    a, b = await asyncio.gather(
        client.post(REFRESH, json={"refresh_token": token}),
        client.post(REFRESH, json={"refresh_token": token}),
    )
    assert a.status_code == b.status_code == 200
    # A replay within the grace mints no second refresh token: both tabs hold the same one.
    assert a.json()["refresh_token"] == b.json()["refresh_token"]
    for response in (a, b):
        auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
        assert (await client.get("/api/v1/me", headers=auth)).status_code == 200
    again = await client.post(REFRESH, json={"refresh_token": a.json()["refresh_token"]})
    assert again.status_code == 200


async def test_unknown_refresh_token(client: httpx.AsyncClient) -> None:
    assert_error(await client.post(REFRESH, json={"refresh_token": "rt_nope"}), 401)


async def test_logout_revokes_the_session(client: httpx.AsyncClient, register: Register) -> None:
    data = await register("jack")
    other = await client.post(
        LOGIN, json={"username": "jack", "password": PASSWORD, "token_delivery": "body"}
    )
    out = await client.post(LOGOUT, json={"refresh_token": data["refresh_token"]})
    assert out.status_code == 204
    assert_error(await client.post(REFRESH, json={"refresh_token": data["refresh_token"]}), 401)
    # The session's access token is dead at once, not at its expiry; other sessions live on.
    assert_error(await client.get("/api/v1/me", headers=data["auth"]), 401, "invalid_token")
    other_auth = {"Authorization": f"Bearer {other.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=other_auth)).status_code == 200
    assert_error(await client.post(LOGOUT), 401)


async def test_logout_with_an_expired_access_token_still_ends_the_session(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("joan")
    user_id = data["user"]["id"]
    session = jwt.decode(data["access_token"], TEST_SECRET, algorithms=["HS256"])["sid"]
    expired = issue_access_token(TEST_SECRET.encode(), user_id, 0, session, ttl=-10, now=0)
    out = await client.post(
        LOGOUT,
        json={"refresh_token": data["refresh_token"]},
        headers={"Authorization": f"Bearer {expired}"},
    )
    assert out.status_code == 204
    assert_error(await client.post(REFRESH, json={"refresh_token": data["refresh_token"]}), 401)


async def test_logout_with_only_the_access_token_ends_its_session(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("jill")
    out = await client.post(LOGOUT, headers=data["auth"])
    assert out.status_code == 204
    assert_error(await client.get("/api/v1/me", headers=data["auth"]), 401, "invalid_token")
    assert_error(await client.post(REFRESH, json={"refresh_token": data["refresh_token"]}), 401)


async def test_logout_everywhere_kills_access_tokens(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("kate")
    other = (
        await client.post(
            LOGIN, json={"username": "kate", "password": PASSWORD, "token_delivery": "body"}
        )
    ).json()
    out = await client.post(LOGOUT, json={"everywhere": True}, headers=data["auth"])
    assert out.status_code == 204
    assert_error(await client.get("/api/v1/me", headers=data["auth"]), 401, "invalid_token")
    assert_error(await client.post(REFRESH, json={"refresh_token": other["refresh_token"]}), 401)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_and_expired_access_tokens(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("liam")
    user_id = data["user"]["id"]
    now = int(time.time())
    session = jwt.decode(data["access_token"], TEST_SECRET, algorithms=["HS256"])["sid"]
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + 60,
        "jti": "x",
        "ver": 0,
        "sid": session,
    }
    alg_none = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    header, payload, signature = data["access_token"].split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_claims["sub"] = str(user_id + 1)
    tampered = f"{header}.{_b64(tampered_claims)}.{signature}"
    expired = issue_access_token(TEST_SECRET.encode(), user_id, 0, session, ttl=-10, now=now)
    no_sid = jwt.encode({k: v for k, v in claims.items() if k != "sid"}, TEST_SECRET, "HS256")
    other_session = jwt.encode({**claims, "sid": "f" * 32}, TEST_SECRET, "HS256")
    valid = jwt.encode(claims, TEST_SECRET, "HS256")
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {valid}"})).is_success
    other_key = jwt.encode(claims, "another-secret-that-is-32-bytes-long!!", algorithm="HS256")
    no_jti = jwt.encode({k: v for k, v in claims.items() if k != "jti"}, TEST_SECRET, "HS256")
    hs512 = jwt.encode(claims, TEST_SECRET + "x" * 40, algorithm="HS512")
    for token in (
        alg_none,
        tampered,
        expired,
        other_key,
        no_jti,
        no_sid,
        other_session,
        hs512,
        "garbage",
        "a.b.c",
    ):
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == "Bearer"
    assert_error(await client.get("/api/v1/me"), 401)
    assert_error(await client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401)


async def test_failed_logins_slow_the_account_down_but_never_lock_the_owner_out(
    client: httpx.AsyncClient, register: Register, app: Starlette
) -> None:
    await register("mia")
    limit = app.state.settings.login_attempts_per_account
    for _ in range(limit):
        response = await client.post(LOGIN, json={"username": "MIA", "password": "wrong-wrong"})
        assert_error(response, 401, "invalid_credentials")
    blocked = await client.post(LOGIN, json={"username": "mia", "password": PASSWORD})
    assert_error(blocked, 429, "rate_limited")
    assert blocked.headers["retry-after"] == "1"  # the first delay: 1 s
    await asyncio.sleep(1.05)
    # After the wait the right password works (a lock would have held it out for the window).
    ok = await client.post(LOGIN, json={"username": "mia", "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    # ... and it cleared the failures: a wrong one now costs no wait.
    wrong = await client.post(LOGIN, json={"username": "mia", "password": "wrong-wrong"})
    assert_error(wrong, 401, "invalid_credentials")


async def test_the_login_limit_does_not_tell_known_names_from_unknown(
    client: httpx.AsyncClient, register: Register, app: Starlette
) -> None:
    """Known and unknown names count alike, so the limit cannot say which email is whose."""
    await register("maya")
    limit = app.state.settings.login_attempts_per_account
    for name in ("maya@example.com", "nobody@example.com"):
        for _ in range(limit):
            wrong = await client.post(LOGIN, json={"username": name, "password": "wrong-wrong"})
            assert_error(wrong, 401, "invalid_credentials")
        assert_error(
            await client.post(LOGIN, json={"username": name, "password": "x-wrong-x"}), 429
        )
    # The username spelling is not throttled by failures under the email spelling, for the
    # known account as for an unknown one.
    for name in ("maya", "nobody"):
        response = await client.post(LOGIN, json={"username": name, "password": "wrong-wrong"})
        assert_error(response, 401, "invalid_credentials")


async def test_concurrent_wrong_logins_cannot_outrun_the_limit(
    client: httpx.AsyncClient, register: Register, app: Starlette
) -> None:
    """Each guess waits for bcrypt; a burst must not pass the check before any failure counts."""
    await register("nick")
    limit = app.state.settings.login_attempts_per_account
    burst = await asyncio.gather(
        *(
            client.post(LOGIN, json={"username": "nick", "password": f"guess-{i:04d}"})
            for i in range(limit * 4)
        )
    )
    statuses = [r.status_code for r in burst]
    assert statuses.count(401) == limit, statuses
    assert statuses.count(429) == limit * 3, statuses


async def test_failed_logins_are_rate_limited_per_address(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    limit = app.state.settings.login_attempts_per_address
    for i in range(limit):
        response = await client.post(LOGIN, json={"username": f"user{i}", "password": "wrong1234"})
        assert response.status_code == 401
    blocked = await client.post(LOGIN, json={"username": "fresh_name", "password": "wrong1234"})
    assert_error(blocked, 429, "rate_limited")
    assert "retry-after" in blocked.headers
