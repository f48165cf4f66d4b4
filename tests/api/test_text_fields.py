"""One rule for every free-text field; emails and passwords that only look valid are refused."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from kitch.api.app import create_app
from kitch.config import Settings
from kitch.db import Database
from kitch.db.users import create_user
from tests.api.helpers import PASSWORD, Register, assert_error

REGISTER = "/api/v1/auth/register"

BAD_TEXT = {
    "bell": "ring\x07",
    "escape": "\x1b[31mred",
    "right-to-left override": "gnp.\u202eexe",
    "left-to-right isolate": "a\u2066b",
    "right-to-left mark": "a\u200fb",
    "zero width space": "zero\u200bwidth",
    "byte order mark": "\ufeffhello",
    "word joiner": "a\u2060b",
    "lone zero width joiner": "\u200dalone",
    "line separator": "one\u2028two",
    "delete": "x\x7fy",
}
GOOD_TEXT = {
    "emoji family (joiners inside a sequence)": "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "persian with a zero width non-joiner": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    "accents and CJK": "Caf\u00e9 \u65e5\u672c",
    "markup is just text": "<b>bold</b>",
}


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT.keys())
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/me", "display_name"),
        ("/api/v1/me", "bio"),
        ("/api/v1/channels/texty", "title"),
        ("/api/v1/channels/texty", "description"),
        ("/api/v1/channels/texty", "category"),
        ("/api/v1/channels/texty", "tags"),
    ],
)
async def test_every_free_text_field_refuses_the_same_characters(
    client: httpx.AsyncClient, register: Register, path: str, field: str, text: str
) -> None:
    data = await register("texty")
    value: object = [text] if field == "tags" else text
    response = await client.patch(path, json={field: value}, headers=data["auth"])
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("text", GOOD_TEXT.values(), ids=GOOD_TEXT.keys())
async def test_real_text_is_accepted(
    client: httpx.AsyncClient, register: Register, text: str
) -> None:
    data = await register("texty")
    me = await client.patch("/api/v1/me", json={"bio": text}, headers=data["auth"])
    assert me.status_code == 200 and me.json()["bio"] == text
    channel = await client.patch(
        "/api/v1/channels/texty", json={"title": text}, headers=data["auth"]
    )
    assert channel.status_code == 200, channel.text
    assert channel.json()["title"] == text
    # tags hold letters, numbers, marks, spaces and a little punctuation (no emoji, no markup)
    tags = await client.patch("/api/v1/channels/texty", json={"tags": [text]}, headers=data["auth"])
    if any(ch in text for ch in "<>\U0001f468"):
        assert_error(tags, 422, "validation_error")
    else:
        assert tags.status_code == 200, tags.text
        assert tags.json()["tags"] == [text]


async def test_newlines_belong_in_long_text_only(
    client: httpx.AsyncClient, register: Register
) -> None:
    data = await register("texty")
    bio = await client.patch("/api/v1/me", json={"bio": "line 1\nline 2\tx"}, headers=data["auth"])
    assert bio.status_code == 200
    for field in ("display_name",):
        response = await client.patch("/api/v1/me", json={field: "a\nb"}, headers=data["auth"])
        assert_error(response, 422)
    for field, status in (("description", 200), ("title", 422), ("category", 422)):
        response = await client.patch(
            "/api/v1/channels/texty", json={field: "a\nb"}, headers=data["auth"]
        )
        assert response.status_code == status, (field, response.text)


@pytest.mark.parametrize(
    "email",
    [
        "zero\u200bwidth@example.com",
        "bom\ufeff@example.com",
        "joiner\u200d@example.com",
        "rtl\u202e@example.com",
        "tab\t@example.com",
        "bell\x07@example.com",
        "nbsp\u00a0@example.com",
    ],
)
async def test_emails_with_invisible_or_control_characters_are_refused(
    client: httpx.AsyncClient, email: str
) -> None:
    body = {"username": "mailer", "email": email, "password": PASSWORD}
    assert_error(await client.post(REGISTER, json=body), 422, "validation_error")


@pytest.mark.parametrize("password", [" " * 8, "\t" * 10, " \n " * 5, "\u3000" * 9])
async def test_whitespace_only_passwords_are_refused(
    client: httpx.AsyncClient, register: Register, password: str
) -> None:
    body = {"username": "spaces", "email": "s@example.com", "password": password}
    assert_error(await client.post(REGISTER, json=body), 422, "validation_error")
    data = await register("changer")
    change = await client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": password},
        headers=data["auth"],
    )
    assert_error(change, 422, "validation_error")


async def test_a_taken_username_is_refused_before_any_hashing(
    settings: Settings, db: Database
) -> None:
    """At cost 16 one bcrypt hash takes seconds; a taken name must answer long before that."""
    await create_user(db, "taken", "t@example.com", "x")
    app = create_app(dataclasses.replace(settings, bcrypt_cost=16), db=db)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 1000))
    async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as client:
        started = time.monotonic()
        response = await client.post(
            REGISTER, json={"username": "TAKEN", "email": "new@example.com", "password": PASSWORD}
        )
        took = time.monotonic() - started
    assert_error(response, 409, "username_taken")
    assert took < 0.5, took


async def test_registrations_are_limited_per_address(settings: Settings, db: Database) -> None:
    app = create_app(dataclasses.replace(settings, register_attempts_per_address=3), db=db)

    async def attempt(host: str, name: str, email: str | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(host, 1000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as client:
            body = {"username": name, "email": email or f"{name}@example.com", "password": PASSWORD}
            return await client.post(REGISTER, json=body)

    # Failed attempts count too (each may cost a hash): the first one has a taken email.
    await create_user(db, "first", "first@example.com", "x")
    assert_error(await attempt("198.51.100.7", "first2", "first@example.com"), 422)
    for name in ("reg_a", "reg_b"):
        assert (await attempt("198.51.100.7", name)).status_code == 201
    blocked = await attempt("198.51.100.7", "reg_c")
    assert_error(blocked, 429, "rate_limited")
    assert 3500 < int(blocked.headers["retry-after"]) <= 3600
    assert (await attempt("198.51.100.8", "reg_d")).status_code == 201  # another address
    # IPv6: one /64 is one subscriber.
    for i in range(3):
        assert (await attempt(f"2001:db8:aa:bb::{i + 1}", f"six_{i}")).status_code == 201
    assert_error(await attempt("2001:db8:aa:bb:1:2:3:4", "six_x"), 429, "rate_limited")
    assert (await attempt("2001:db8:aa:bc::1", "six_y")).status_code == 201
