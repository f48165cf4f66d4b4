"""The web app's Starlette routes: cache headers, SPA fallback, reserved prefixes, 503 unbuilt."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from kitch.api.web import ASSET_CACHE_CONTROL, WEBAPP_DIR, web_routes


async def _api_ping(_request: object) -> JSONResponse:
    return JSONResponse({"ok": True})


def _app(webapp_dir: Path | None = None) -> Starlette:
    # Another route first, the web app last: the order the real app mounts them in.
    routes = [Route("/api/v1/ping", _api_ping), *web_routes(None, webapp_dir=webapp_dir)]
    return Starlette(routes=routes)


def _client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _asset_names() -> list[str]:
    return sorted(p.name for p in (WEBAPP_DIR / "assets").iterdir())


def test_bundle_is_shipped() -> None:
    index = (WEBAPP_DIR / "index.html").read_text()
    referenced = re.findall(r'/assets/([^"]+)"', index)
    assert referenced, "index.html references no assets"
    for name in referenced:
        assert (WEBAPP_DIR / "assets" / name).is_file(), name
    # every asset name carries a content hash
    for name in _asset_names():
        assert re.fullmatch(r"[A-Za-z]+-[A-Za-z0-9_-]{8}\.(js|css)", name), name


@pytest.mark.parametrize(
    "path", ["/", "/login", "/register", "/dashboard", "/settings", "/alice", "/Some_User_42"]
)
async def test_spa_pages_serve_index(path: str) -> None:
    async with _client(_app()) as client:
        r = await client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.text == (WEBAPP_DIR / "index.html").read_text()
    assert '<div id="root"></div>' in r.text


async def test_index_revalidates_with_etag() -> None:
    async with _client(_app()) as client:
        first = await client.get("/")
        again = await client.get("/", headers={"If-None-Match": first.headers["etag"]})
        other = await client.get("/", headers={"If-None-Match": '"nope"'})
    assert again.status_code == 304
    assert again.content == b""
    assert other.status_code == 200


async def test_assets_are_immutable() -> None:
    names = _asset_names()
    async with _client(_app()) as client:
        for name in names:
            r = await client.get(f"/assets/{name}")
            assert r.status_code == 200, name
            assert r.headers["cache-control"] == ASSET_CACHE_CONTROL
            assert r.content == (WEBAPP_DIR / "assets" / name).read_bytes()
            kind = "javascript" if name.endswith(".js") else "css"
            assert kind in r.headers["content-type"]
        head = await client.head(f"/assets/{names[0]}")
        assert head.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/assets/missing-00000000.js",
        "/assets/..%2Findex.html",
        "/assets/.hidden",
        "/assets/sub/dir.js",
        "/api",
        "/api/",
        "/api/v1/nope",
        "/API",
        "/hls",
        "/hls/alice/master.m3u8",
        "/ws",
        "/ws/chat/alice",
        "/metrics",
        "/assets",
        "/favicon.ico",
        "/alice/extra",
        "/dashboard/x",
        "/a-b",
    ],
)
async def test_odd_assets_and_reserved_paths_are_404_never_index(path: str) -> None:
    async with _client(_app()) as client:
        r = await client.get(path)
    assert r.status_code == 404, path
    assert '<div id="root">' not in r.text


async def test_other_routes_still_answer() -> None:
    async with _client(_app()) as client:
        r = await client.get("/api/v1/ping")
    assert r.json() == {"ok": True}


async def test_missing_bundle_is_a_clear_503(tmp_path: Path) -> None:
    async with _client(_app(tmp_path / "nothing")) as client:
        r = await client.get("/dashboard")
        asset = await client.get(f"/assets/{_asset_names()[0]}")
    assert r.status_code == 503
    assert "not built" in r.text
    assert "scripts/build-web" in r.text
    assert asset.status_code == 404


async def test_rebuilt_index_is_picked_up(tmp_path: Path) -> None:
    shutil.copytree(WEBAPP_DIR, tmp_path / "webapp")
    index = tmp_path / "webapp" / "index.html"
    async with _client(_app(tmp_path / "webapp")) as client:
        before = await client.get("/")
        index.write_text("<!doctype html><title>v2</title><div id=root></div>")
        st = index.stat()
        os.utime(index, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        after = await client.get("/")
    assert before.text != after.text
    assert "v2" in after.text
    assert before.headers["etag"] != after.headers["etag"]


def test_index_holds_no_secret_or_config() -> None:
    index = (WEBAPP_DIR / "index.html").read_text().lower()
    for word in ("secret", "token", "password", "key="):
        assert word not in index
