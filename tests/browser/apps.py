"""ASGI apps the browser tests serve with uvicorn while the full server is not needed.

``web_only``: the web app routes alone (what a browser sees before any API answers).
``api_and_web``: the real JSON API (kitch.api.app) with the web app mounted last, as the full
server mounts them, on the data dir and settings from KITCH_* variables (no RTMP, no HLS).
The player itself is tested against the real server in test_live_e2e.py.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kitch.api.app import create_app
from kitch.api.web import web_routes
from kitch.config import load_settings


async def _api_404(_request: Request) -> Response:
    return JSONResponse({"error": {"code": "not_found", "message": "Not found"}}, status_code=404)


def web_only() -> Starlette:
    return Starlette(routes=[Route("/api/{rest:path}", _api_404), *web_routes(None)])


def api_and_web() -> Starlette:
    settings = load_settings(env=os.environ, dotenv=None)
    return create_app(settings, fallback_routes=web_routes(settings))
