"""ASGI apps the browser tests serve with uvicorn while the full server is not needed.

``web_only``: the web app routes alone (what a browser sees before any API answers).
``api_and_web``: the real JSON API (kitch.api.app) with the web app mounted last, as the full
server mounts them, on the data dir and settings from KITCH_* variables (no RTMP, no HLS).
``hls_player``: the web app plus a live HLS stream written by ffmpeg's own HLS muxer (a
third-party source, so the player is checked in a real browser independently of Kitch's muxer)
and a minimal channel document for it. Paths come from KITCH_TEST_HLS_DIR / KITCH_TEST_CHANNEL.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kitch.api.app import create_app
from kitch.api.web import web_routes
from kitch.config import load_settings


async def _api_404(_request: Request) -> Response:
    return JSONResponse({"error": {"code": "not_found", "message": "Not found"}}, status_code=404)


def web_only() -> Starlette:
    return Starlette(routes=[Route("/api/{rest:path}", _api_404), *web_routes(None)])


def hls_player() -> Starlette:
    hls_dir = Path(os.environ["KITCH_TEST_HLS_DIR"])
    channel = os.environ["KITCH_TEST_CHANNEL"]

    async def channel_doc(request: Request) -> Response:
        if request.path_params["name"] != channel:
            return await _api_404(request)
        return JSONResponse(
            {"name": channel, "display_name": channel, "title": "ffmpeg HLS", "live": True}
        )

    return Starlette(
        routes=[
            Route("/api/v1/channels/{name}", channel_doc),
            Route("/api/{rest:path}", _api_404),
            Mount(f"/hls/{channel}", StaticFiles(directory=hls_dir)),
            *web_routes(None),
        ]
    )


def api_and_web() -> Starlette:
    settings = load_settings(env=os.environ, dotenv=None)
    return create_app(settings, fallback_routes=web_routes(settings))
