"""``channels/{name}/health`` (owner or admin, from the live provider) and the per-channel
ladder settings (owner-only in ``GET channels/{name}``, validated in ``PATCH``)."""

from __future__ import annotations

import httpx

from kitch.api.app import create_app
from kitch.config import Settings
from kitch.db import Database
from kitch.db.queries import LADDER_RUNGS, ladder_settings
from tests.api.helpers import PASSWORD, FakeHub, Register, assert_error, health_document


async def test_health_for_owner_and_admin_only(
    client: httpx.AsyncClient, register: Register, db: Database, hub: FakeHub
) -> None:
    owner = (await register("vera"))["auth"]
    other = (await register("otto"))["auth"]
    url = "/api/v1/channels/vera/health"

    assert_error(await client.get(url), 401, "unauthorized")
    assert_error(await client.get(url, headers={"Authorization": "Bearer nope"}), 401)
    assert_error(await client.get(url, headers=other), 403, "forbidden")
    assert_error(await client.get("/api/v1/channels/nobody/health", headers=owner), 404)
    assert hub.asked == []  # nothing is asked of the hub before the checks pass

    offline = await client.get(url, headers=owner)
    assert offline.status_code == 200 and offline.json() == {"live": False}
    assert offline.headers["cache-control"] == "no-store"
    hub.live.add("vera")
    live = await client.get("/api/v1/channels/VERA/health", headers=owner)
    assert live.json() == health_document("vera")
    assert hub.asked == ["vera", "vera"]  # the canonical name, whatever the URL's case

    admin = (await register("ada"))["auth"]
    await db.execute("UPDATE users SET is_admin = 1 WHERE username = 'ada'")
    assert (await client.get(url, headers=admin)).json()["live"] is True


async def test_without_a_provider_every_channel_is_offline(
    settings: Settings, db: Database
) -> None:
    transport = httpx.ASGITransport(app=create_app(settings, db=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as plain:
        new = {"username": "ivy", "email": "ivy@example.com", "password": PASSWORD}
        session = await plain.post("/api/v1/auth/register", json=new)
        auth = {"Authorization": f"Bearer {session.json()['access_token']}"}
        answer = await plain.get("/api/v1/channels/ivy/health", headers=auth)
        assert answer.status_code == 200 and answer.json() == {"live": False}


async def test_ladder_settings_shown_to_the_owner_only(
    client: httpx.AsyncClient, register: Register
) -> None:
    owner = (await register("vera"))["auth"]
    other = (await register("otto"))["auth"]
    url = "/api/v1/channels/vera"
    mine = (await client.get(url, headers=owner)).json()
    assert mine["ladder"] == {"enabled": True, "rungs": list(LADDER_RUNGS)}
    assert "ladder" not in (await client.get(url)).json()
    assert "ladder" not in (await client.get(url, headers=other)).json()
    # a stale token on the public page answers what anyone sees, not a 401
    stale = await client.get(url, headers={"Authorization": "Bearer stale"})
    assert stale.status_code == 200 and "ladder" not in stale.json()
    listed = (await client.get("/api/v1/channels", headers=owner)).json()["channels"]
    assert all("ladder" not in c for c in listed)


async def test_patch_ladder_settings(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    owner = (await register("vera"))["auth"]
    other = (await register("otto"))["auth"]
    url = "/api/v1/channels/vera"
    channel_id = (await db.fetchone("SELECT id FROM channels"))[0]  # type: ignore[index]

    changed = await client.patch(url, json={"ladder": {"rungs": ["360p", "720p"]}}, headers=owner)
    assert changed.status_code == 200, changed.text
    assert changed.json()["ladder"] == {"enabled": True, "rungs": ["720p", "360p"]}
    assert await ladder_settings(db, channel_id) == (True, ["720p", "360p"])

    off = await client.patch(url, json={"ladder": {"enabled": False}}, headers=owner)
    assert off.json()["ladder"] == {"enabled": False, "rungs": ["720p", "360p"]}
    assert await ladder_settings(db, channel_id) == (False, ["720p", "360p"])
    both = {"ladder": {"enabled": True, "rungs": []}, "title": "t"}
    answer = (await client.patch(url, json=both, headers=owner)).json()
    assert answer["ladder"] == {"enabled": True, "rungs": []} and answer["title"] == "t"

    for bad in (
        {"ladder": True},
        {"ladder": ["720p"]},
        {"ladder": {"enabled": "yes"}},
        {"ladder": {"rungs": "720p"}},
        {"ladder": {"rungs": ["1080p"]}},
        {"ladder": {"rungs": ["720p", "720p"]}},
        {"ladder": {"rungs": [720]}},
        {"ladder": {"rungs": ["source"]}},
        {"ladder": {"on": True}},
    ):
        assert_error(await client.patch(url, json=bad, headers=owner), 422, "validation_error")
    assert await ladder_settings(db, channel_id) == (True, [])
    forbidden = await client.patch(url, json={"ladder": {"enabled": False}}, headers=other)
    assert_error(forbidden, 403, "forbidden")
    assert_error(await client.patch(url, json={"ladder": {"enabled": False}}), 401)
    assert await ladder_settings(db, channel_id) == (True, [])
