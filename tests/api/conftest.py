from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from kitch.api.app import create_app
from kitch.config import Settings
from kitch.db import Database, open_database
from tests.api.helpers import PASSWORD, TEST_SECRET, FakeHub


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Every API test runs twice: on an SQLite file and on a PostgreSQL database."""
    return Settings(
        data_dir=tmp_path / "data", bcrypt_cost=4, secret=TEST_SECRET, database=database_url
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await open_database(settings.database_url)
    yield database
    await database.close()


@pytest.fixture
def hub() -> FakeHub:
    """The live-health provider the app is given; add a channel to ``hub.live`` to make it live."""
    return FakeHub()


@pytest.fixture
def app(settings: Settings, db: Database, hub: FakeHub) -> Starlette:
    return create_app(settings, db=db, health=hub.health)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as c:
        yield c


RegisterFn = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def register(client: httpx.AsyncClient) -> RegisterFn:
    """Register a user and return the JSON (tokens + user) with an ``auth`` header dict added;
    the refresh token comes in the body (``"token_delivery": "body"``), as a client without
    cookies asks for it.
    """

    async def _register(name: str = "alice", password: str = PASSWORD) -> dict[str, Any]:
        response = await client.post(
            "/api/v1/auth/register",
            json={
                "username": name,
                "email": f"{name}@example.com",
                "password": password,
                "token_delivery": "body",
            },
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        data["auth"] = {"Authorization": f"Bearer {data['access_token']}"}
        return data

    return _register
