"""The web app: the built React bundle in ``kitch/webapp`` served with a single-page-app fallback.

``web_routes(settings)`` answers:

- ``/assets/<file>``: hashed bundle files, ``Cache-Control: public, max-age=31536000, immutable``;
  a missing asset is a 404, never index.html.
- ``/``, ``/login``, ``/register``, ``/dashboard``, ``/settings``, ``/directory/<slug>`` (a
  category), ``/videos/<id>`` (a recording) and ``/<channel>`` (one path segment that looks
  like a username, ``/directory`` and ``/search`` among them): ``index.html`` with
  ``Cache-Control: no-cache``, an ETag and a Content-Security-Policy.

It never answers under ``/api``, ``/hls``, ``/vod``, ``/ws`` or ``/metrics``: those paths raise a
404 ``HTTPException`` so the application's own error handler formats it. The app mounts these
routes LAST. When the bundle is missing (a source checkout that was never built) every page is a
503 saying how to build it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from kitch.api.views import hls_base

WEBAPP_DIR = Path(__file__).resolve().parent.parent / "webapp"
"""Where the built bundle ships inside the package (``scripts/build-web`` writes it)."""

ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"

RESERVED_PREFIXES = ("api", "hls", "vod", "ws", "metrics", "assets")
"""First path segments that belong to other routes: the SPA fallback never answers them."""

SPA_PAGES = ("/", "/login", "/register", "/dashboard", "/settings")

_ASSET_RE = re.compile(r"[A-Za-z0-9._-]{1,200}")


class ChannelConvertor(Convertor[str]):
    """One path segment that looks like a username and is not a reserved prefix.

    Excluding the reserved names in the route pattern itself (not in the endpoint) keeps
    Starlette's trailing-slash redirect from turning ``/api/`` into a redirect to ``/api``.
    """

    regex = r"(?!(?i:" + "|".join(RESERVED_PREFIXES) + r")(?:/|$))[A-Za-z0-9_]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("kitch_channel", ChannelConvertor())


class SlugConvertor(Convertor[str]):
    """A category slug: a-z, 0-9 and dashes (the web app's ``/directory/<slug>`` pages)."""

    regex = r"[a-z0-9-]{1,50}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("kitch_slug", SlugConvertor())
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    )
)

PAGE_HEADERS = {
    "Cache-Control": PAGE_CACHE_CONTROL,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

NOT_BUILT_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kitch: web app not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>The Kitch web app is not built</h1>
<p>This server has no web app bundle (<code>kitch/webapp/index.html</code> is missing).
The API, HLS and RTMP ingest still work.</p>
<p>To build it from a source checkout, install Node 20 and run <code>scripts/build-web</code>,
then restart the server. Installed packages of Kitch ship the bundle already.</p>
</body></html>
"""


@dataclass
class _Index:
    """index.html read from disk, re-read when its modification time changes."""

    path: Path
    mtime_ns: int = -1
    body: bytes = b""
    etag: str = ""

    def load(self) -> bool:
        """Refresh from disk; False when the file is missing."""
        try:
            stat = self.path.stat()
        except OSError:
            return False
        if stat.st_mtime_ns != self.mtime_ns:
            body = self.path.read_bytes()
            self.body = body
            self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            self.mtime_ns = stat.st_mtime_ns
        return True


def page_headers(request: Request) -> dict[str, str]:
    """The page's headers: with HLS worker processes, the player also connects to their
    origin (:func:`kitch.api.views.hls_base`), which the Content-Security-Policy must allow."""
    base = hls_base(request)
    origins: list[str] = []
    if base:
        parts = urlsplit(base)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    # several nodes: /hls answers may redirect the player to the node holding the channel
    router = getattr(request.app.state, "hls_router", None)
    origins += [o for o in getattr(router, "peer_origins", ()) if o not in origins]
    if not origins:
        return PAGE_HEADERS
    policy = CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'", "connect-src 'self' " + " ".join(origins)
    )
    return {**PAGE_HEADERS, "Content-Security-Policy": policy}


def _etag_matches(header: str, etag: str) -> bool:
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return etag in candidates or "*" in candidates


def web_routes(settings: object = None, *, webapp_dir: Path | None = None) -> list[BaseRoute]:
    """Routes serving the web app; mount them after every other route.

    ``settings`` is the server's Settings (unused for now: nothing from it reaches the page, so
    no secret can leak into index.html). ``webapp_dir`` defaults to ``WEBAPP_DIR``, the bundle
    shipped in the package.
    """
    del settings
    root = (webapp_dir or WEBAPP_DIR).resolve()
    assets = root / "assets"
    index = _Index(root / "index.html")

    def page(headers: dict[str, str]) -> Response:
        if not index.load():
            return HTMLResponse(
                NOT_BUILT_HTML, status_code=503, headers={"Cache-Control": "no-store"}
            )
        return Response(
            index.body,
            media_type="text/html; charset=utf-8",
            headers={**headers, "ETag": index.etag},
        )

    async def spa_page(request: Request) -> Response:
        headers = page_headers(request)
        response = page(headers)
        inm = request.headers.get("if-none-match")
        if response.status_code == 200 and inm and _etag_matches(inm, index.etag):
            return Response(status_code=304, headers={**headers, "ETag": index.etag})
        return response

    async def asset(request: Request) -> Response:
        name = str(request.path_params["name"])
        if not _ASSET_RE.fullmatch(name) or name.startswith("."):
            raise HTTPException(status_code=404)
        path = assets / name
        if not path.is_file():
            raise HTTPException(status_code=404)
        return FileResponse(
            path,
            headers={"Cache-Control": ASSET_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
        )

    methods = ["GET", "HEAD"]
    routes: list[BaseRoute] = [Route("/assets/{name}", asset, methods=methods)]
    routes += [Route(path, spa_page, methods=methods) for path in SPA_PAGES]
    routes.append(Route("/videos/{id:int}", spa_page, methods=methods))
    routes.append(Route("/directory/{slug:kitch_slug}", spa_page, methods=methods))
    routes.append(Route("/{channel:kitch_channel}", spa_page, methods=methods))
    return routes
