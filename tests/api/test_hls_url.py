"""``hls_url`` in the channel JSON: this origin's /hls without HLS workers; with them, the
workers' port on the request's host, or ``hls_public_url``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from kitch.api.app import create_app
from kitch.api.web import web_routes
from kitch.config import ConfigError, Settings
from kitch.db import Database
from tests.api.helpers import FakeHub, Register


async def _client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db, health=FakeHub().health)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
        yield c


@pytest.mark.parametrize(
    ("changes", "want"),
    [
        ({}, "/hls/vera/master.m3u8"),
        ({"hls_port": 9100}, "/hls/vera/master.m3u8"),  # workers off: the port is unused
        ({"hls_workers": 2, "hls_port": 9100}, "http://localhost:9100/hls/vera/master.m3u8"),
        (
            {"hls_workers": 1, "hls_public_url": "https://tv.example.com/"},
            "https://tv.example.com/hls/vera/master.m3u8",
        ),
    ],
)
async def test_hls_url(
    settings: Settings, db: Database, register: Register, changes: dict[str, object], want: str
) -> None:
    await register("vera")
    async for client in _client(replace(settings, **changes), db):  # type: ignore[arg-type]
        one = (await client.get("/api/v1/channels/vera")).json()
        listed = (await client.get("/api/v1/channels")).json()["channels"]
    assert one["hls_url"] == want
    assert [c["hls_url"] for c in listed if c["name"] == "vera"] == [want]


@pytest.mark.parametrize(
    "changes",
    [
        {"hls_public_url": "tv.example.com"},
        {"hls_port": 0},
        {"hls_port": 70000},
        {"hls_workers": 2, "hls_port": 8000},  # the HTTP port
        {"hls_workers": -1},
        {"hls_workers": 65},
    ],
)
def test_bad_hls_worker_settings(settings: Settings, changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        replace(settings, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "connect"),
    [
        ({}, "connect-src 'self';"),
        ({"hls_workers": 2, "hls_port": 9100}, "connect-src 'self' http://localhost:9100;"),
        (
            {"hls_workers": 1, "hls_public_url": "https://tv.example.com/x"},
            "connect-src 'self' https://tv.example.com;",
        ),
    ],
)
async def test_the_page_lets_the_player_connect_to_the_hls_workers(
    settings: Settings, db: Database, changes: dict[str, object], connect: str
) -> None:
    changed = replace(settings, **changes)  # type: ignore[arg-type]
    app = create_app(changed, db=db, fallback_routes=web_routes(changed))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
        page = await c.get("/vera")
    assert page.status_code == 200
    assert connect in page.headers["content-security-policy"] + ";"
