"""Account security against a real ``kitch serve`` over real HTTP: the refresh cookie and its
CSRF header, sign-out, the API's cache and sniffing headers, and the bcrypt pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import PASSWORD, assert_error
from tests.api.test_avatar import picture
from tests.support.server import KitchServer, serving

pytestmark = pytest.mark.slow
AUTH = "/api/v1/auth"
CSRF = {"X-Kitch-CSRF": "1"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KitchServer]:
    with serving(tmp_path) as srv:
        yield srv


def set_cookie(response: httpx.Response) -> str:
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1, cookies
    return cookies[0]


def bearer(response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_the_refresh_token_lives_in_an_http_only_cookie(server: KitchServer) -> None:
    with httpx.Client(base_url=server.base) as client:
        registered = client.post(
            f"{AUTH}/register",
            json={"username": "cookie", "email": "c@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201
        assert set(registered.json()) == {"access_token", "token_type", "expires_in", "user"}
        cookie = set_cookie(registered)
        assert cookie.startswith("kitch_refresh=rt_")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/api/v1/auth", "Max-Age=2592000"):
            assert attribute.lower() in cookie.lower(), (attribute, cookie)
        assert "secure" not in cookie.lower()  # plain HTTP without an https public URL

        # The cookie alone is not enough: a cross-site form cannot add the CSRF header.
        assert_error(client.post(f"{AUTH}/refresh"), 403, "csrf_check_failed")
        refreshed = client.post(f"{AUTH}/refresh", headers=CSRF)
        assert refreshed.status_code == 200, refreshed.text
        assert set(refreshed.json()) == {"access_token", "token_type", "expires_in", "user"}
        assert refreshed.json()["user"]["username"] == "cookie"
        assert set_cookie(refreshed) != cookie  # rotated
        assert client.get("/api/v1/me", headers=bearer(refreshed)).status_code == 200

        # Signing out revokes the session's access token at once and clears the cookie.
        assert_error(client.post(f"{AUTH}/logout"), 403, "csrf_check_failed")
        out = client.post(f"{AUTH}/logout", headers=CSRF)
        assert out.status_code == 204
        assert "max-age=0" in set_cookie(out).lower()
        assert_error(client.get("/api/v1/me", headers=bearer(refreshed)), 401, "invalid_token")
        assert_error(client.get("/api/v1/me", headers=bearer(registered)), 401, "invalid_token")
        assert_error(client.post(f"{AUTH}/refresh", headers=CSRF), 401)


def test_clients_without_cookies_get_the_token_in_the_body(server: KitchServer) -> None:
    account = server.create_account("bodyclient")
    assert account.refresh_token.startswith("rt_")
    status, body, headers = server.exchange(
        "POST",
        f"{AUTH}/login",
        {"username": "bodyclient", "password": account.password, "token_delivery": "body"},
    )
    assert status == 200 and headers.get_all("set-cookie") is None
    status, rotated = server.refresh(body["refresh_token"])
    assert status == 200 and rotated["user"]["username"] == "bodyclient"
    assert rotated["refresh_token"] not in (body["refresh_token"], account.refresh_token)
    # Replayed at once (a second tab): the same successor, not a second live token.
    assert server.refresh(body["refresh_token"])[1]["refresh_token"] == rotated["refresh_token"]


def test_secure_cookie_behind_an_https_public_url(tmp_path: Path) -> None:
    with serving(tmp_path, "--public-url", "https://tv.example.com") as srv:
        status, _, headers = srv.exchange(
            "POST",
            f"{AUTH}/register",
            {"username": "secure", "email": "s@example.com", "password": PASSWORD},
        )
        assert status == 201
        assert "; secure" in headers["set-cookie"].lower()


def test_api_answers_are_not_cached_or_sniffed(server: KitchServer) -> None:
    account = server.create_account("headers")
    avatar = picture("png")
    checks = [
        ("POST", f"{AUTH}/login", {"username": "headers", "password": account.password}, None),
        ("GET", "/api/v1/me", None, account.access_token),
        ("GET", "/api/v1/me/stream-key", None, account.access_token),
        ("GET", "/api/v1/channels", None, None),
        ("GET", "/api/v1/me", None, "not-a-token"),  # 401
        ("GET", "/api/v1/no-such-thing", None, None),  # 404
        ("DELETE", "/api/v1/channels", None, None),  # 405
    ]
    for method, path, body, token in checks:
        status, _, headers = server.exchange(method, path, body, token)
        assert headers["cache-control"] == "no-store", (path, status)
        assert headers["x-content-type-options"] == "nosniff", (path, status)
    put = httpx.put(
        f"{server.base}/api/v1/me/avatar",
        content=avatar,
        headers={"Authorization": f"Bearer {account.access_token}", "Content-Type": "image/png"},
    )
    assert put.status_code == 200
    public = httpx.get(server.base + put.json()["avatar_url"])
    assert public.headers["cache-control"] == "public, max-age=300"  # its own, kept
    assert public.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/<script>alert(1)</script>", "/api/zzz-reflected-zzz", "/api/v1/me/zzz-reflected-zzz"],
)
def test_json_404s_do_not_echo_the_path(server: KitchServer, path: str) -> None:
    status, body, _ = server.exchange("GET", path)
    assert status == 404 and body["error"]["code"] == "not_found"
    text = str(body)
    assert "script" not in text and "reflected" not in text


async def test_a_burst_of_logins_does_not_starve_other_requests(tmp_path: Path) -> None:
    """bcrypt has its own pool of one thread here: twelve logins queue there, while an avatar
    upload, decoded in the default executor, answers at once.
    """
    with serving(tmp_path, KITCH_BCRYPT_COST="12", KITCH_BCRYPT_THREADS="1") as srv:
        async with httpx.AsyncClient(base_url=srv.base, timeout=120) as client:
            registered = await client.post(
                f"{AUTH}/register",
                json={"username": "patient", "email": "p@example.com", "password": PASSWORD},
            )
            auth = bearer(registered)
            one = time.monotonic()
            await client.post(f"{AUTH}/login", json={"username": "x1", "password": "wrong-wrong"})
            one_hash = time.monotonic() - one
            done: list[float] = []

            async def guess(i: int) -> None:
                await client.post(
                    f"{AUTH}/login", json={"username": f"nobody{i}", "password": "wrong-wrong"}
                )
                done.append(time.monotonic())

            burst = [asyncio.create_task(guess(i)) for i in range(12)]
            await asyncio.sleep(0.2)  # the logins are queued in the bcrypt pool
            started = time.monotonic()
            put = await client.put(
                "/api/v1/me/avatar",
                content=picture("png", 640, 480),
                headers={**auth, "Content-Type": "image/png"},
            )
            took = time.monotonic() - started
            finished_before = len(done)
            await asyncio.gather(*burst)
    assert put.status_code == 200, put.text
    # The upload did not wait for the queue (about twelve hashes long) ...
    assert finished_before <= 6, (finished_before, took, one_hash)
    assert took < max(1.0, 2 * one_hash), (took, one_hash)
    # ... which was really there: the hashes ran one after another.
    assert done[-1] - started > 6 * one_hash * 0.5, (done[-1] - started, one_hash)
