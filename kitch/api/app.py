"""The Starlette application: ``/api/v1/*``, ``/metrics``, ``/hls``, then the routes passed in.

Route order: the API (a miss anywhere under ``/api`` is a JSON 404), ``/metrics``,
``extra_routes`` (WebSocket chat), and ``fallback_routes`` (the web app's SPA fallback) last.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kitch.api import (
    analytics,
    auth,
    channels,
    chat,
    discovery,
    follows,
    me,
    moderation,
    recordings,
    schedule,
)
from kitch.api.auth import on_sign_out
from kitch.api.channels import HealthProvider
from kitch.api.errors import EXCEPTION_HANDLERS, not_found
from kitch.api.events import Events
from kitch.api.events import routes as events_routes
from kitch.api.hls import HlsApp, HlsRouter
from kitch.api.hosts import HostCheck, HostPolicy
from kitch.api.openapi import openapi_json
from kitch.api.reminders import Reminders
from kitch.api.routing import api_route
from kitch.api.thumbnails import routes as thumbnail_routes
from kitch.auth.tokens import load_or_create_secret
from kitch.config import Settings
from kitch.db import Database, open_database
from kitch.db.queries import close_stale_broadcasts
from kitch.hls import HlsRegistry
from kitch.ingest.thumbnails import ThumbnailStore

log = logging.getLogger("kitch.api")
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]

HTTP_REQUESTS = Counter(
    "kitch_http_requests_total", "HTTP requests answered", ["method", "area", "status"]
)
HTTP_DURATION = Histogram(
    "kitch_http_request_duration_seconds", "Time to the response headers", ["area"]
)
AREAS = ("api", "hls", "vod", "ws", "metrics")


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class MetricsMiddleware:
    """Counts every HTTP request (``/hls`` included) by method, top-level area
    (api/hls/ws/metrics/web) and status: the one place ``kitch_http_*`` are counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._observe = {area: HTTP_DURATION.labels(area).observe for area in (*AREAS, "web")}
        self._count: dict[tuple[str, str, int], Callable[[], None]] = {}

    def _counted(self, method: str, area: str, status: int) -> None:
        key = (method, area, status)
        count = self._count.get(key)
        if count is None:
            count = self._count[key] = HTTP_REQUESTS.labels(method, area, str(status)).inc
        count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        first = path.split("/", 2)[1] if path.startswith("/") else ""
        area = first if first in AREAS else "web"
        method = scope["method"] if scope["method"] in _METHODS else "other"
        started = time.perf_counter()
        status = 500
        observe = self._observe[area]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._counted(method, area, status)


SERVER_TIME_HEADER = b"kitch-time"


class ServerTime:
    """Puts the server's clock, epoch milliseconds read as the response starts, on every ``/api``
    response (``Kitch-Time``). The web app sets its clock by it (behind-live, chat times): the
    ``Date`` header cannot serve, as uvicorn refreshes it once a second, so it lags by up to a
    second plus the event loop's delay on top of its one-second resolution."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_with_time(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.append((SERVER_TIME_HEADER, b"%d" % round(time.time() * 1000)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_time)


class HlsAhead:
    """Hands every ``/hls`` request to :class:`~kitch.api.hls.HlsApp` ahead of the router."""

    def __init__(
        self, app: ASGIApp, registry: HlsRegistry, events: Events, router: HlsRouter | None = None
    ) -> None:
        self.app = app
        self.hls = HlsApp(registry, events.viewers, router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path.startswith("/hls/") or path == "/hls"):
            await self.hls(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of every metric in the default registry; with the
    ``metrics_token`` setting, only for ``Authorization: Bearer <token>``."""
    token: str | None = request.app.state.settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return JSONResponse(
                {"error": {"code": "unauthorized", "message": "/metrics needs its bearer token"}},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
            )
    return Response(
        generate_latest(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
    )


def metrics_app(settings: Settings) -> Starlette:
    """The app of the separate ``metrics_listen`` listener: ``/metrics`` alone."""
    app = Starlette(
        routes=[Route("/metrics", metrics, methods=["GET"])],
        middleware=[Middleware(MetricsMiddleware)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    app.state.settings = settings
    return app


async def api_root_not_found(request: Request) -> Response:
    raise not_found("no such API route; the API lives under /api/v1")


def api_routes() -> list[BaseRoute]:
    """Every ``/api/v1`` route (paths relative to ``/api/v1``)."""
    return [
        *auth.routes(),
        *me.routes(),
        *channels.routes(),
        *discovery.routes(),
        *follows.routes(),
        *chat.routes(),
        *moderation.routes(),
        *recordings.routes(),
        *schedule.routes(),
        *analytics.routes(),
        api_route("/openapi.json", GET=openapi_json),
    ]


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    hls: HlsRegistry | None = None,
    hosts: HostPolicy | None = None,
    serve_metrics: bool = True,
    extra_routes: Sequence[BaseRoute] = (),
    fallback_routes: Sequence[BaseRoute] = (),
    lifespan: Lifespan | None = None,
    health: HealthProvider | None = None,
    events: Events | None = None,
    thumbnails: ThumbnailStore | None = None,
    hls_router: HlsRouter | None = None,
) -> Starlette:
    """Build the app. Without ``db`` it opens ``settings.database_url`` at start-up
    (and closes broadcasts a crash left open) and closes it at shutdown; with ``db`` the caller
    owns it. With ``hls``, ``/hls`` is served from that registry (ahead of the router). With
    ``hosts``, requests whose Host the policy refuses get a 400 before any handler.
    ``serve_metrics=False`` leaves ``/metrics`` out (it has its own listener).
    ``lifespan`` (optional) runs inside, after the database is available on
    ``app.state.db``. ``app.state.settings`` holds the settings. ``health`` answers a live
    channel's health document by channel name (None: not live) for ``channels/{name}/health``;
    without it every channel answers ``{"live": false}``. ``events`` (made here when not
    given) pushes go-lives, notifications and viewer counts on ``/ws/events``; the ingest hub
    shares it. ``thumbnails`` holds the channels' pictures served under ``/thumbnails`` (without
    it every channel has none). The scheduled streams' notifications run as a task of the
    lifespan (:class:`~kitch.api.reminders.Reminders`). ``hls_router`` (several nodes
    sharing the database) redirects ``/hls`` requests for a channel live on another node
    there; the page's Content-Security-Policy lets the player follow (its ``peer_origins``).
    """
    events = events if events is not None else Events(settings.viewer_window, settings.viewer_tick)
    reminders = Reminders(events, settings.schedule_reminder)

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
        own = db is None
        if own:
            app.state.db = await open_database(settings.database_url)
            closed = await close_stale_broadcasts(app.state.db)
            if closed:
                log.warning("closed %d broadcast session(s) left open by a crash", closed)
        events.start(app.state.db)
        reminders.start(app.state.db)
        try:
            if lifespan is not None:
                async with lifespan(app):
                    yield
            else:
                yield
        finally:
            await reminders.stop()
            await events.stop()
            await chat.close(app)  # the chat's last storage batch, while the database is open
            if own:
                await app.state.db.close()

    routes: list[BaseRoute] = [
        Mount("/api", routes=[Mount("/v1", routes=api_routes())]),
        Route("/api", api_root_not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        *([Route("/metrics", metrics, methods=["GET"])] if serve_metrics else []),
        *events_routes(),
        *chat.ws_routes(),
        *thumbnail_routes(),
        *recordings.vod_routes(),
        *schedule.feed_routes(),
        *extra_routes,
        *fallback_routes,
    ]
    middleware = [Middleware(MetricsMiddleware)]
    if hosts is not None:
        middleware.append(Middleware(HostCheck, policy=hosts))
    if hls is not None:
        middleware.append(Middleware(HlsAhead, registry=hls, events=events, router=hls_router))
    middleware.append(Middleware(chat.ChatAhead))
    middleware.append(Middleware(ServerTime))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=app_lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.health = health
    app.state.events = events
    app.state.thumbnails = thumbnails
    app.state.hls_router = hls_router
    app.state.reminders = reminders
    on_sign_out(app, events.revoke_user)
    app.state.hosts = hosts
    app.state.secret = load_or_create_secret(settings.data_dir, settings.secret)
    return app
