"""HTTP side of the in-memory HLS output: playlists, init/segments/parts, blocking reloads.

Mounted under ``/hls`` by the app:

* ``/{channel}/master.m3u8``
* ``/{channel}/{rendition}/index.m3u8`` with ``_HLS_msn`` / ``_HLS_part`` (blocking reload,
  400 when too far ahead, 503 when the wait times out) and ``_HLS_skip=YES`` (delta update)
* ``/{channel}/{rendition}/{bid}-i{n}.mp4``, ``{bid}-s{msn}.m4s``, ``{bid}-p{n}.m4s``; a request
  for the preload-hinted part waits for it. MPEG-TS output: ``{bid}-s{msn}.ts``, no parts.

Everything is served from memory; the only waiting is on an :class:`asyncio.Event` per channel
set by the registry's change listener (thread-safe, so the media may be fed from any thread).
"""

from __future__ import annotations

import asyncio
import gzip
import math
import re
import threading
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from kitch.hls import HlsRegistry, LiveStream
from kitch.hls.store import RenditionStore

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
INIT_TYPE = "video/mp4"
SEGMENT_TYPE = "video/iso.segment"
IMMUTABLE = "public, max-age=31536000, immutable"
CORS = {"Access-Control-Allow-Origin": "*"}
_FILE = re.compile(r"^(?P<bid>[0-9a-f]+)-(?P<kind>[isp])(?P<n>\d{1,12})\.(?P<ext>mp4|m4s|ts)$")
TS_TYPE = "video/mp2t"
_GZIP_MIN = 512


class ChangeWaiter:
    """Turns registry change callbacks into asyncio wake-ups, one event per channel."""

    def __init__(self, registry: HlsRegistry) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        registry.add_listener(self._changed)

    def _changed(self, channel: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            self._wake(channel)
        else:
            loop.call_soon_threadsafe(self._wake, channel)

    def _wake(self, channel: str) -> None:
        event = self._events.pop(channel, None)
        if event is not None:
            event.set()

    async def wait(self, channel: str, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` holds (re-checked on every change of ``channel``) or the
        timeout passes; returns the last ``ready()``."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._thread = loop, threading.get_ident()
            self._events.clear()
        deadline = loop.time() + timeout
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._events.get(channel)
            if event is None:
                event = self._events[channel] = asyncio.Event()
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return ready()
        return True


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={**CORS, "Cache-Control": "no-cache"},
    )


class _Rendered:
    """A playlist rendered for one stream version, plain and (lazily) gzipped."""

    __slots__ = ("gz", "plain", "stream", "version")

    def __init__(self, stream: LiveStream, text: str) -> None:
        self.stream = stream
        self.version = stream.version
        self.plain = text.encode()
        self.gz: bytes | None = None

    def response(self, request: Request, cache: str) -> Response:
        body = self.plain
        headers = {**CORS, "Cache-Control": cache, "Vary": "Accept-Encoding"}
        if len(body) >= _GZIP_MIN and "gzip" in request.headers.get("accept-encoding", ""):
            if self.gz is None:
                self.gz = gzip.compress(body, compresslevel=5, mtime=0)
            body = self.gz
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=PLAYLIST_TYPE, headers=headers)


def _options() -> Response:
    return Response(
        status_code=204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "*",
            "Access-Control-Max-Age": "86400",
        },
    )


def _query_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise ValueError(name)
    return int(raw)


class HlsEndpoints:
    """The route handlers, sharing one registry and one waiter."""

    def __init__(self, registry: HlsRegistry) -> None:
        self.registry = registry
        self.waiter = ChangeWaiter(registry)
        self._cache: dict[tuple[str, str, bool], _Rendered] = {}
        registry.add_listener(self._forget)

    def _forget(self, channel: str) -> None:
        if self.registry.get(channel) is None:
            for key in [k for k in self._cache if k[0] == channel]:
                del self._cache[key]

    def _render(
        self, stream: LiveStream, key: tuple[str, str, bool], make: Callable[[], str | None]
    ) -> _Rendered | None:
        """Render through a cache keyed by the stream version (many viewers, one render)."""
        hit = self._cache.get(key)
        if hit is not None and hit.stream is stream and hit.version == stream.version:
            return hit
        text = make()
        if text is None:
            return None
        rendered = self._cache[key] = _Rendered(stream, text)
        return rendered

    def timeout(self, store: RenditionStore | None) -> float:
        """``blocking_timeout``, by default 3 target durations."""
        configured = self.registry.settings.blocking_timeout
        if configured is not None:
            return configured
        td = store.target_duration if store is not None else None
        return 3.0 * (td if td is not None else math.ceil(self.registry.settings.segment_duration))

    async def _ready(self, channel: str, stream: LiveStream, rendition: str) -> bool:
        """Wait (bounded) for a just-started stream to have a playable playlist."""

        def ready() -> bool:
            r = stream.renditions.get(rendition)
            return stream.ended or (r is not None and r.store.ready)

        return await self.waiter.wait(channel, ready, self.timeout(None))

    async def master(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _options()
        channel = request.path_params["channel"]
        stream = self.registry.get(channel)
        if stream is None:
            return _error(404, "not_live", f"{channel} is not live")
        await self._ready(channel, stream, "source")
        rendered = self._render(stream, (channel, "", False), stream.master_playlist)
        if rendered is None:
            return _error(404, "not_ready", "the stream has no playable media yet")
        return rendered.response(request, "public, max-age=2")

    async def media(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _options()
        channel = request.path_params["channel"]
        name = request.path_params["rendition"]
        try:
            msn = _query_int(request, "_HLS_msn")
            part = _query_int(request, "_HLS_part")
        except ValueError as exc:
            return _error(400, "bad_request", f"{exc} must be a non-negative integer")
        if part is not None and msn is None:
            return _error(400, "bad_request", "_HLS_part needs _HLS_msn")
        skip = request.query_params.get("_HLS_skip", "").upper() in ("YES", "V2")
        stream = self.registry.get(channel)
        if stream is None or name not in stream.renditions:
            return _error(404, "not_live", f"{channel}/{name} is not live")
        await self._ready(channel, stream, name)
        store = stream.renditions[name].store
        if not store.ready:
            return _error(404, "not_ready", "the stream has no playable media yet")
        cache = "public, max-age=1"
        if msn is not None and not store.ended:
            last_msn, last_part = store.last_position()
            pt = store.part_target or 1.0
            limit = math.ceil(3 / pt) if pt < 1 else 3
            if msn > last_msn + 1 or (
                part is not None
                and (
                    (msn == last_msn and part > last_part + limit)
                    or (msn > last_msn and part >= limit)
                )
            ):
                return _error(400, "too_far_ahead", "_HLS_msn/_HLS_part is too far ahead")

            def ready() -> bool:
                return (
                    store.ended or store.has(msn, part) or self.registry.get(channel) is not stream
                )

            if not await self.waiter.wait(channel, ready, self.timeout(store)):
                return Response(
                    "blocking reload timed out\n",
                    status_code=503,
                    media_type="text/plain",
                    headers={**CORS, "Cache-Control": "no-cache", "Retry-After": "1"},
                )
            cache = f"public, max-age={max(1, 2 * (store.target_duration or 1))}"
        rendered = self._render(
            stream, (channel, name, skip), lambda: stream.media_playlist(name, skip=skip)
        )
        if rendered is None:
            return _error(404, "not_live", f"{channel}/{name} is gone")
        return rendered.response(request, cache)

    async def file(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _options()
        channel = request.path_params["channel"]
        m = _FILE.match(request.path_params["name"])
        stream = self.registry.get(channel)
        if m is None or stream is None or m["bid"] != stream.broadcast_id:
            return _error(404, "not_found", "no such media")
        r = stream.renditions.get(request.path_params["rendition"])
        if r is None:
            return _error(404, "not_found", "no such rendition")
        store = r.store
        kind, n, ext = m["kind"], int(m["n"]), m["ext"]
        data: bytes | memoryview | None = None
        media_type = SEGMENT_TYPE
        if kind == "i" and ext == "mp4":
            init = store.inits.get(n)
            data, media_type = (init.data if init else None), INIT_TYPE
        elif kind == "s" and ext in ("m4s", "ts"):
            seg = store.segment(n)
            if seg is not None and store.is_ts(seg.init) == (ext == "ts"):
                data = seg.data
                media_type = TS_TYPE if ext == "ts" else SEGMENT_TYPE
        elif kind == "p" and ext == "m4s":
            found = store.parts.get(n)
            if found is None and n == store.next_part_number and not store.ended:
                # the preload-hinted part: answer as soon as it exists
                await self.waiter.wait(
                    channel, lambda: n in store.parts or store.ended, self.timeout(store)
                )
                found = store.parts.get(n)
            data = found.data if found is not None else None
        if data is None:
            return _error(404, "not_found", "no such media")
        return Response(data, media_type=media_type, headers={**CORS, "Cache-Control": IMMUTABLE})


async def _missing(request: Request) -> Response:
    if request.method == "OPTIONS":
        return _options()
    return _error(404, "not_found", "no such HLS resource")


def hls_routes(registry: HlsRegistry) -> list[BaseRoute]:
    """Routes to mount under ``/hls``; they only read the registry (and wait on it)."""
    ep = HlsEndpoints(registry)
    methods = ["GET", "HEAD", "OPTIONS"]
    return [
        Route("/{channel}/master.m3u8", ep.master, methods=methods),
        Route("/{channel}/{rendition}/index.m3u8", ep.media, methods=methods),
        Route("/{channel}/{rendition}/{name}", ep.file, methods=methods),
        Route("/{rest:path}", _missing, methods=methods),
    ]
