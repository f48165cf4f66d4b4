"""App wiring: route order, JSON errors under /api, OpenAPI coverage, metrics, lifespan."""

from __future__ import annotations

import dataclasses
import inspect
import os
import stat
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kitch.api.app import create_app
from kitch.api.openapi import (
    QUERY_PARAMETERS,
    RAW_BODIES,
    REQUEST_BODIES,
    SUCCESS_STATUS,
    iter_api_routes,
)
from kitch.api.routing import api_route
from kitch.auth.tokens import load_or_create_secret
from kitch.config import Settings
from kitch.db import Database, open_database
from kitch.db.queries import start_broadcast
from kitch.db.users import create_user
from tests.api.helpers import assert_error


async def spa(request: Request) -> Response:
    return PlainTextResponse("spa")


async def hls(request: Request) -> Response:
    return PlainTextResponse("hls")


def wired_client(settings: Settings, db: Database) -> httpx.AsyncClient:
    app = create_app(
        settings,
        db=db,
        extra_routes=[Route("/hls/{path:path}", hls)],
        fallback_routes=[Route("/{path:path}", spa)],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://kitch.test")


@pytest.mark.parametrize(
    "path", ["/api", "/api/", "/api/nope", "/api/v1", "/api/v1/", "/api/v1/nope", "/api/v2/me"]
)
async def test_api_misses_are_json_404_even_with_spa_fallback(
    settings: Settings, db: Database, path: str
) -> None:
    async with wired_client(settings, db) as client:
        response = await client.get(path, follow_redirects=True)
        assert_error(response, 404, "not_found")


async def test_route_order(settings: Settings, db: Database) -> None:
    async with wired_client(settings, db) as client:
        assert (await client.get("/hls/alice/master.m3u8")).text == "hls"
        assert (await client.get("/alice")).text == "spa"
        assert (await client.get("/")).text == "spa"
        assert (await client.get("/metrics")).headers["content-type"].startswith("text/plain")
        assert (await client.get("/api/v1/channels")).json() == {"channels": []}


async def test_wrong_method_is_json_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/channels")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]
    response = await client.get("/api/v1/auth/login")
    assert_error(response, 405)
    assert response.headers["allow"] == "POST"


async def test_unexpected_exception_is_json_500(settings: Settings, db: Database) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    app = create_app(settings, db=db)
    v1 = next(r for r in app.routes if getattr(r, "path", "") == "/api")
    inner = next(r for r in v1.routes if getattr(r, "path", "") == "/v1")  # type: ignore[attr-defined]
    inner.routes.append(api_route("/boom", GET=boom))  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/api/v1/boom")
    assert_error(response, 500, "internal_error")
    assert "boom" not in response.text


async def test_openapi_lists_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    app = client._transport.app  # type: ignore[attr-defined]
    routes = list(iter_api_routes(app.routes))
    assert len(routes) >= 12
    for path, route in routes:
        assert path.startswith("/api/v1/")
        for method in route.methods or ():
            if method != "HEAD":
                operation = spec["paths"][path][method.lower()]
                assert operation["summary"]
    # Every handler that reads a JSON body documents it.
    documented = {
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "requestBody" in op
    }
    assert set(REQUEST_BODIES) <= documented


async def test_openapi_lists_what_each_handler_does(client: httpx.AsyncClient) -> None:
    """The per-handler lists in kitch.api.openapi against the handlers' own source."""
    app = client._transport.app  # type: ignore[attr-defined]
    checked = 0
    for _path, route in iter_api_routes(app.routes):
        for handler in route.handlers.values():
            name, source = handler.__name__, inspect.getsource(handler)
            reads_body = any(
                f"{call}(" in source for call in ("read_json", "read_body", "_avatar_bytes")
            )
            assert reads_body == (name in REQUEST_BODIES or name in RAW_BODIES), name
            # the query is read in the handler, or by the discovery pages' shared helper
            reads_query = any(word in source for word in ("query_params", "_channel_page("))
            assert reads_query == (name in QUERY_PARAMETERS), name
            for status in (201, 204):
                says = f"status_code={status}" in source
                assert says == (SUCCESS_STATUS.get(name) == status), (name, status)
            checked += 1
    assert checked >= 15


async def test_openapi_security_matches_behaviour(client: httpx.AsyncClient) -> None:
    """Every operation marked as needing a token answers 401 without one; no other does."""
    spec = (await client.get("/api/v1/openapi.json")).json()
    for path, item in spec["paths"].items():
        url = path.replace("{name}", "nobody")
        for method, op in item.items():
            if method == "parameters":
                continue
            response = await client.request(method.upper(), url, json={})
            if op["operationId"] in ("logout", "refresh"):
                continue  # public, but answer 401 when given no token at all
            needs_token = "security" in op
            assert (response.status_code == 401) == needs_token, (method, path, response.text)


async def test_metrics_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/channels")
    text = (await client.get("/metrics")).text
    assert 'kitch_http_requests_total{area="api",method="GET",status="200"}' in text
    assert "kitch_http_request_duration_seconds_bucket" in text


async def test_lifespan_opens_db_and_closes_stale_broadcasts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", bcrypt_cost=4)
    db = await open_database(settings.database_url)
    user, _ = await create_user(db, "yuri", "y@example.com", "x")
    channel = await db.fetchone("SELECT id FROM channels WHERE user_id = ?", (user.id,))
    assert channel is not None
    await start_broadcast(db, channel[0], {})
    await db.close()

    app = create_app(settings)
    secret_file = settings.data_dir / "secret"
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    assert create_app(settings).state.secret == app.state.secret  # generated once
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            channel = (await client.get("/api/v1/channels/yuri")).json()
    assert channel["live"] is False
    db = await open_database(settings.database_url)
    row = await db.fetchone("SELECT end_reason FROM broadcast_sessions")
    await db.close()
    assert row is not None and row[0] == "server_restart"


async def test_configured_secret_is_used(settings: Settings, db: Database) -> None:
    app = create_app(dataclasses.replace(settings, secret="s" * 40), db=db)
    assert app.state.secret == b"s" * 40
    assert not (settings.data_dir / "secret").exists()


def test_generated_secret_and_data_dir_are_owner_only(tmp_path: Path) -> None:
    """create_app runs before the database opens, so it may be what creates the data dir."""
    data_dir = tmp_path / "fresh" / "data"
    secret = load_or_create_secret(data_dir, None)
    assert len(secret) >= 32
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data_dir / "secret").st_mode) == 0o600
    assert load_or_create_secret(data_dir, None) == secret
    assert sorted(p.name for p in data_dir.iterdir()) == ["secret"]  # no partial files left


def test_secret_is_never_left_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(fd: int, *args: object, **kwargs: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(os, "write", crash)  # the write fails, however the file is written
    monkeypatch.setattr(os, "fdopen", crash)
    with pytest.raises(OSError, match="disk full"):
        load_or_create_secret(tmp_path, None)
    monkeypatch.undo()
    assert len(load_or_create_secret(tmp_path, None)) >= 32  # starts; no empty secret file
