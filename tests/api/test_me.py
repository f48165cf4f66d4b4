"""Profile, password change, account deletion, stream key, broadcast switch."""

from __future__ import annotations

import dataclasses

import httpx

from kitch.api.app import create_app
from kitch.config import Settings
from kitch.db import Database
from kitch.db.queries import channel_for_stream_key
from tests.api.helpers import PASSWORD, Register, assert_error

ME = "/api/v1/me"
KEY = "/api/v1/me/stream-key"


async def test_patch_profile(client: httpx.AsyncClient, register: Register) -> None:
    data = await register("nora")
    response = await client.patch(
        ME, json={"display_name": "  Nora N. ", "bio": "hi <b>there</b>"}, headers=data["auth"]
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Nora N."
    assert response.json()["bio"] == "hi <b>there</b>"
    bad = await client.patch(ME, json={"display_name": 5}, headers=data["auth"])
    assert_error(bad, 422)
    bad = await client.patch(ME, json={"username": "other"}, headers=data["auth"])
    assert_error(bad, 422)
    bad = await client.patch(ME, json={"display_name": "x" * 51}, headers=data["auth"])
    assert_error(bad, 422)


async def test_email_change_needs_the_current_password(
    client: httpx.AsyncClient, register: Register
) -> None:
    """A stolen access token alone cannot move the account to the thief's email address."""
    data = await register("olga")
    missing = await client.patch(ME, json={"email": "new@example.com"}, headers=data["auth"])
    assert_error(missing, 400, "password_required")
    wrong = await client.patch(
        ME,
        json={"email": "new@example.com", "current_password": "not-it-at-all"},
        headers=data["auth"],
    )
    assert_error(wrong, 403, "wrong_password")
    assert (await client.get(ME, headers=data["auth"])).json()["email"] == "olga@example.com"
    changed = await client.patch(
        ME, json={"email": "new@example.com", "current_password": PASSWORD}, headers=data["auth"]
    )
    assert changed.status_code == 200 and changed.json()["email"] == "new@example.com"
    # Other fields and an unchanged email need no password.
    same = await client.patch(
        ME, json={"email": "new@example.com", "bio": "hello"}, headers=data["auth"]
    )
    assert same.status_code == 200 and same.json()["bio"] == "hello"


async def test_email_change_conflict_does_not_say_taken(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("olivia")
    await register("oscar")
    response = await client.patch(
        ME, json={"email": "OSCAR@example.com", "current_password": PASSWORD}, headers=data["auth"]
    )
    assert_error(response, 422, "validation_error")
    assert "taken" not in response.text


async def test_password_change_signs_out_everywhere(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("paul")
    other = (
        await client.post(
            "/api/v1/auth/login",
            json={"username": "paul", "password": PASSWORD, "token_delivery": "body"},
        )
    ).json()
    wrong = await client.post(
        f"{ME}/password",
        json={"current_password": "not-it-at-all", "new_password": "new password 1"},
        headers=data["auth"],
    )
    assert_error(wrong, 403, "wrong_password")
    short = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=data["auth"],
    )
    assert_error(short, 422)
    changed = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "new password 1"},
        headers=data["auth"],
    )
    assert changed.status_code == 200
    # A new session: its refresh token as the cookie (no token_delivery asked for the body).
    assert "refresh_token" not in changed.json()
    assert changed.cookies.get("kitch_refresh", "").startswith("rt_")
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await client.get(ME, headers=fresh)).status_code == 200
    # The old access tokens and refresh tokens of both sessions are dead.
    assert_error(await client.get(ME, headers=data["auth"]), 401)
    other_auth = {"Authorization": f"Bearer {other['access_token']}"}
    assert_error(await client.get(ME, headers=other_auth), 401)
    for token in (data["refresh_token"], other["refresh_token"]):
        assert_error(await client.post("/api/v1/auth/refresh", json={"refresh_token": token}), 401)
    old = await client.post("/api/v1/auth/login", json={"username": "paul", "password": PASSWORD})
    assert_error(old, 401)
    new = await client.post(
        "/api/v1/auth/login", json={"username": "paul", "password": "new password 1"}
    )
    assert new.status_code == 200


async def test_delete_account_removes_everything(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    data = await register("sam")
    key = (await client.get(KEY, headers=data["auth"])).json()["stream_key"]
    wrong = await client.request(
        "DELETE", ME, json={"password": "not the one"}, headers=data["auth"]
    )
    assert_error(wrong, 403)
    gone = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=data["auth"])
    assert gone.status_code == 204
    assert_error(await client.get(ME, headers=data["auth"]), 401)
    assert await channel_for_stream_key(db, key) is None
    assert_error(await client.get("/api/v1/channels/sam"), 404)
    for table in ("users", "channels", "stream_keys", "refresh_tokens"):
        row = await db.fetchone(f"SELECT count(*) FROM {table}")
        assert row is not None and row[0] == 0, table
    # The name can be registered again.
    await register("sam")


async def test_stream_key_show_and_rotate(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    data = await register("tina")
    shown = await client.get(KEY, headers=data["auth"])
    assert shown.status_code == 200
    body = shown.json()
    key = body["stream_key"]
    assert key.startswith("live_") and len(key) >= 5 + 32
    assert body["rtmp_url"] == "rtmp://kitch.test:1935/live"
    assert body["rtmps_url"] is None
    assert shown.headers["cache-control"] == "no-store"
    ref = await channel_for_stream_key(db, key)
    assert ref is not None and ref.username == "tina"

    rotated = await client.post(KEY, headers=data["auth"])
    new_key = rotated.json()["stream_key"]
    assert new_key != key
    assert await channel_for_stream_key(db, key) is None
    assert await channel_for_stream_key(db, new_key) is not None
    assert (await client.get(KEY, headers=data["auth"])).json()["stream_key"] == new_key
    # Never in public responses.
    for path in ("/api/v1/channels", "/api/v1/channels/tina"):
        assert new_key not in (await client.get(path)).text
    assert_error(await client.get(KEY), 401)


async def test_end_broadcast_disables_the_key(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    data = await register("uma")
    key = (await client.get(KEY, headers=data["auth"])).json()["stream_key"]
    ended = await client.post(f"{ME}/broadcast/end", headers=data["auth"])
    assert ended.status_code == 200 and ended.json()["ingest_enabled"] is False
    assert await channel_for_stream_key(db, key) is None
    assert (await client.get(KEY, headers=data["auth"])).json()["ingest_enabled"] is False
    enabled = await client.post(f"{ME}/broadcast/enable", headers=data["auth"])
    assert enabled.json()["ingest_enabled"] is True
    assert await channel_for_stream_key(db, key) is not None


async def test_server_info_uses_public_url(settings: Settings, db: Database) -> None:
    app = create_app(
        dataclasses.replace(settings, public_url="https://tv.example.com", rtmp="0.0.0.0:1940"),
        db=db,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.1:8000") as client:
        info = (await client.get("/api/v1/server-info")).json()
    assert info["rtmp_url"] == "rtmp://tv.example.com:1940/live"
    assert info["rtmp_port"] == 1940


async def test_deleted_users_token_never_signs_in_as_the_next_account(
    client: httpx.AsyncClient, register: Register
) -> None:
    """SQLite reuses the highest rowid after a delete; access tokens name the user by id."""
    await register("vic")
    gone = await register("walt")  # the highest id
    deleted = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=gone["auth"])
    assert deleted.status_code == 204
    newcomer = await register("xena")
    assert newcomer["user"]["id"] > gone["user"]["id"], (newcomer["user"], gone["user"])
    response = await client.get(ME, headers=gone["auth"])
    assert_error(response, 401, "invalid_token")


async def test_current_password_guesses_are_rate_limited(
    client: httpx.AsyncClient, register: Register, settings: Settings
) -> None:
    """A stolen access token must not turn /me/password into an unlimited password oracle."""
    data = await register("yves")
    limit = settings.login_attempts_per_account
    for i in range(limit):
        guess = {"current_password": f"guess-{i:04d}", "new_password": "new password 1"}
        response = await client.post(f"{ME}/password", json=guess, headers=data["auth"])
        assert_error(response, 403, "wrong_password")
    for method, path, body in (
        ("DELETE", ME, {"password": PASSWORD}),
        ("PATCH", ME, {"email": "y2@example.com", "current_password": PASSWORD}),
    ):
        blocked = await client.request(method, path, json=body, headers=data["auth"])
        assert_error(blocked, 429, "rate_limited")
        assert 0 < int(blocked.headers["retry-after"]) <= settings.login_max_delay
    # One budget per account: its username and its email address are both slowed down.
    for name in ("yves", "YVES@example.com"):
        login = await client.post(
            "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert_error(login, 429, "rate_limited")


async def test_password_changes_are_limited_per_address(settings: Settings, db: Database) -> None:
    """Each change costs two bcrypt runs; an address gets a few per hour, right or wrong."""
    app = create_app(dataclasses.replace(settings, password_change_attempts_per_address=3), db=db)
    transport = httpx.ASGITransport(app=app, client=("2001:db8:1:2::5", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as client:
        registered = await client.post(
            "/api/v1/auth/register",
            json={"username": "zed", "email": "z@example.com", "password": PASSWORD},
        )
        auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        password = PASSWORD
        for i in range(3):
            new = f"new password {i}"
            body = {"current_password": password, "new_password": new}
            changed = await client.post(f"{ME}/password", json=body, headers=auth)
            assert changed.status_code == 200, changed.text
            auth = {"Authorization": f"Bearer {changed.json()['access_token']}"}
            password = new
        body = {"current_password": password, "new_password": "one more time"}
        blocked = await client.post(f"{ME}/password", json=body, headers=auth)
        assert_error(blocked, 429, "rate_limited")
        assert 3000 < int(blocked.headers["retry-after"]) <= 3600
    # Another address of the same IPv6 /64 shares the allowance; another /64 does not.
    for host, status in (("2001:db8:1:2:ffff::9", 429), ("2001:db8:1:3::5", 200)):
        transport = httpx.ASGITransport(app=app, client=(host, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as client:
            response = await client.post(f"{ME}/password", json=body, headers=auth)
            assert response.status_code == status, (host, response.text)
