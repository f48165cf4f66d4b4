"""HTTP side of the in-memory HLS output: playlists, init/segments/parts, blocking reloads.

Mounted under ``/hls`` by the app:

* ``/{channel}/master.m3u8``
* ``/{channel}/{rendition}/index.m3u8`` with ``_HLS_msn`` / ``_HLS_part`` (blocking reload,
  400 when too far ahead, 503 when the wait times out) and ``_HLS_skip=YES`` (delta update)
* ``/{channel}/{rendition}/{bid}-i{n}.mp4``, ``{bid}-s{msn}.m4s``, ``{bid}-p{n}.m4s``; a request
  for the preload-hinted part waits for it. MPEG-TS output: ``{bid}-s{msn}.ts``, no parts.

Everything is served from memory; the only waiting is on an :class:`asyncio.Event` per channel
set by the registry's change listener (thread-safe, so the media may be fed from any thread).

It is a raw ASGI app (no Starlette request/response objects on the way): a rendered playlist
is cached per (channel, rendition, delta) until the stream's next change, with its encoded
header lists beside it. :class:`HlsApp` answers the whole ``/hls`` tree; the application
(:func:`kitch.api.app.create_app`) hands it every ``/hls`` request ahead of its router, inside
the metrics middleware.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import re
import threading
from collections.abc import Callable
from typing import Protocol
from urllib.parse import parse_qsl, quote

from starlette.types import Receive, Scope, Send

from kitch.api.viewers import ViewerCounter
from kitch.hls import HlsRegistry, LiveStream
from kitch.hls.store import RenditionStore

PLAYLIST_TYPE = b"application/vnd.apple.mpegurl"
INIT_TYPE = b"video/mp4"
SEGMENT_TYPE = b"video/iso.segment"
TS_TYPE = b"video/mp2t"
IMMUTABLE = b"public, max-age=31536000, immutable"
_FILE = re.compile(r"^(?P<bid>[0-9a-f]+)-(?P<kind>[isp])(?P<n>\d{1,12})\.(?P<ext>mp4|m4s|ts)$")
_GZIP_MIN = 512
_METHODS = ("GET", "HEAD", "OPTIONS")
#: The mount point HlsApp answers below.
PREFIX = "/hls"

Headers = list[tuple[bytes, bytes]]
_CORS = (b"access-control-allow-origin", b"*")
_NO_CACHE = (b"cache-control", b"no-cache")
_OPTIONS: Headers = [
    _CORS,
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
    (b"access-control-max-age", b"86400"),
]


class Sightings(Protocol):
    """Where media-playlist readers are counted (:class:`~kitch.api.viewers.ViewerCounter`,
    or an HLS worker process's batch sent to the main process)."""

    def seen(self, channel: str, scope: Scope) -> None: ...


class HlsRouter(Protocol):
    """Where a channel this node does not serve lives (several nodes sharing one database:
    :class:`~kitch.cluster.nodes.ClusterNode`)."""

    async def locate(self, channel: str) -> str | None:
        """The base URL of the node holding ``channel`` when that is another node, else None."""
        ...


def redirect_answer(base: str, scope: Scope) -> Answer:
    """307 to the same path and query on the node at ``base`` (an absolute URL, so an edge
    that follows redirects itself, and hls.js, resolve it alike). Never cached: the channel
    may move to another node."""
    raw = scope.get("raw_path") or quote(scope["path"]).encode()  # never a raw CR/LF
    location = base.encode() + raw
    query = scope.get("query_string", b"")
    if query:
        location += b"?" + query
    return Answer(
        307,
        [
            (b"location", location),
            (b"content-length", b"0"),
            _CORS,
            (b"cache-control", b"no-store"),
        ],
    )


class ChangeWaiter:
    """Turns registry change callbacks into asyncio wake-ups: the futures of the requests
    waiting on a channel are resolved together on its next change.

    A bare future and one timer per wait (not a task running ``Event.wait`` under
    ``wait_for``): a thousand viewers' blocking reloads are woken by every part."""

    def __init__(self, registry: HlsRegistry) -> None:
        #: per channel, its waiting futures (a dict: removal in O(1), woken in arrival order)
        self._waiting: dict[str, dict[asyncio.Future[None], None]] = {}
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
        for fut in self._waiting.pop(channel, ()):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, channel: str, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` holds (re-checked on every change of ``channel``) or the
        timeout passes; returns the last ``ready()``."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._thread = loop, threading.get_ident()
            self._waiting.clear()
        deadline = loop.time() + timeout
        while not ready():
            if loop.time() >= deadline:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            waiting = self._waiting.get(channel)
            if waiting is None:
                waiting = self._waiting[channel] = {}
            waiting[fut] = None
            timer = loop.call_at(deadline, _expire, fut)
            try:
                await fut
            finally:
                timer.cancel()
                fut.cancel()  # no-op once done; a client that went away: forget it
                waiting.pop(fut, None)  # timed out or cancelled (a wake took the whole dict)
        return True


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Answer:
    """One response: status, encoded headers (Content-Length included), body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Headers, body: bytes | memoryview = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def send(self, send: Send, head: bool) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


def _answer(
    status: int, content_type: bytes, body: bytes | memoryview, *extra: tuple[bytes, bytes]
) -> Answer:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *extra]
    return Answer(status, headers, body)


def error_answer(status: int, code: str, message: str, *extra: tuple[bytes, bytes]) -> Answer:
    """The API's JSON error shape, with CORS and no caching."""
    body = json.dumps(
        {"error": {"code": code, "message": message}}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    return _answer(status, b"application/json", body, _CORS, _NO_CACHE, *extra)


_OPTIONS_ANSWER = Answer(204, _OPTIONS)
_NOT_FOUND = error_answer(404, "not_found", "no such HLS resource")
_NO_MEDIA = error_answer(404, "not_found", "no such media")
_NO_RENDITION = error_answer(404, "not_found", "no such rendition")
_NOT_READY = error_answer(404, "not_ready", "the stream has no playable media yet")
_TOO_FAR = error_answer(400, "too_far_ahead", "_HLS_msn/_HLS_part is too far ahead")
_PART_WITHOUT_MSN = error_answer(400, "bad_request", "_HLS_part needs _HLS_msn")
_TIMED_OUT = _answer(
    503,
    b"text/plain; charset=utf-8",
    b"blocking reload timed out\n",
    _CORS,
    _NO_CACHE,
    (b"retry-after", b"1"),
)
_NOT_ALLOWED = error_answer(
    405, "method_not_allowed", "only GET, HEAD and OPTIONS", (b"allow", b"GET, HEAD, OPTIONS")
)


class _Rendered:
    """A playlist rendered for one stream version, plain and (lazily) gzipped, with the
    encoded answers built once per Cache-Control value."""

    __slots__ = ("_answers", "gz", "plain", "stream", "version")

    def __init__(self, stream: LiveStream, text: str) -> None:
        self.stream = stream
        self.version = stream.version
        self.plain = text.encode()
        self.gz: bytes | None = None
        self._answers: dict[tuple[bytes, bool], Answer] = {}

    def answer(self, gzip_ok: bool, cache: bytes) -> Answer:
        zipped = gzip_ok and len(self.plain) >= _GZIP_MIN
        found = self._answers.get((cache, zipped))
        if found is not None:
            return found
        extra = [_CORS, (b"cache-control", cache), (b"vary", b"Accept-Encoding")]
        if zipped:
            if self.gz is None:
                self.gz = gzip.compress(self.plain, compresslevel=5, mtime=0)
            extra.append((b"content-encoding", b"gzip"))
        made = _answer(200, PLAYLIST_TYPE, self.gz if zipped and self.gz else self.plain, *extra)
        self._answers[cache, zipped] = made
        return made


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


def _query_int(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise ValueError(name)
    return int(raw)


class HlsEndpoints:
    """The handlers, sharing one registry, one waiter and one playlist cache. They read only
    ``method``, ``query_string``, ``headers`` and ``client`` of the ``scope`` they are given,
    and ``path`` (``raw_path`` if there) for a redirect to another node (an HLS worker process
    passes a dict of just those)."""

    def __init__(
        self,
        registry: HlsRegistry,
        viewers: Sightings | None = None,
        router: HlsRouter | None = None,
    ) -> None:
        self.registry = registry
        self.viewers = viewers
        #: with several nodes: a channel not live here (or ended here) may be live elsewhere
        self.router = router
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

    async def _ready(self, channel: str, stream: LiveStream, rendition: str) -> None:
        """Wait (bounded) for a just-started stream to have a playable playlist."""

        def ready() -> bool:
            r = stream.renditions.get(rendition)
            return stream.ended or (r is not None and r.store.ready)

        if not ready():
            await self.waiter.wait(channel, ready, self.timeout(None))

    async def master(self, scope: Scope, channel: str) -> Answer:
        stream = self.registry.get(channel)
        if stream is None:
            return error_answer(404, "not_live", f"{channel} is not live")
        await self._ready(channel, stream, "source")
        rendered = self._render(stream, (channel, "", False), stream.master_playlist)
        if rendered is None:
            return _NOT_READY
        return rendered.answer(_accepts_gzip(scope), b"public, max-age=2")

    async def media(self, scope: Scope, channel: str, name: str) -> Answer:
        query = scope.get("query_string", b"")
        params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}
        try:
            msn = _query_int(params, "_HLS_msn")
            part = _query_int(params, "_HLS_part")
        except ValueError as exc:
            return error_answer(400, "bad_request", f"{exc} must be a non-negative integer")
        if part is not None and msn is None:
            return _PART_WITHOUT_MSN
        skip = params.get("_HLS_skip", "").upper() in ("YES", "V2")
        stream = self.registry.get(channel)
        if stream is None or name not in stream.renditions:
            return error_answer(404, "not_live", f"{channel}/{name} is not live")
        if self.viewers is not None:
            self.viewers.seen(channel, scope)
        await self._ready(channel, stream, name)
        store = stream.renditions[name].store
        if not store.ready:
            return _NOT_READY
        cache = b"public, max-age=1"
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
                return _TOO_FAR

            def ready() -> bool:
                return (
                    store.ended or store.has(msn, part) or self.registry.get(channel) is not stream
                )

            if not await self.waiter.wait(channel, ready, self.timeout(store)):
                return _TIMED_OUT
            cache = b"public, max-age=%d" % max(1, 2 * (store.target_duration or 1))
        rendered = self._render(
            stream, (channel, name, skip), lambda: stream.media_playlist(name, skip=skip)
        )
        if rendered is None:
            return error_answer(404, "not_live", f"{channel}/{name} is gone")
        return rendered.answer(_accepts_gzip(scope), cache)

    async def file(self, channel: str, rendition: str, name: str) -> Answer:
        m = _FILE.match(name)
        stream = self.registry.get(channel)
        if m is None or stream is None or m["bid"] != stream.broadcast_id:
            return _NO_MEDIA
        r = stream.renditions.get(rendition)
        if r is None:
            return _NO_RENDITION
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
                data = seg.body()
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
            return _NO_MEDIA
        return _answer(200, media_type, data, _CORS, (b"cache-control", IMMUTABLE))

    async def answer(self, scope: Scope, path: str) -> Answer:
        """The answer to an HTTP request for ``path`` (relative to the mount point)."""
        method = scope["method"]
        if method not in _METHODS:
            return _NOT_ALLOWED
        if method == "OPTIONS":
            return _OPTIONS_ANSWER
        segs = path.split("/")
        if self.router is not None and len(segs) in (3, 4) and segs[1]:
            stream = self.registry.get(segs[1])
            if stream is None or stream.ended:
                base = await self.router.locate(segs[1])
                if base is not None:
                    return redirect_answer(base, scope)
        if len(segs) == 4 and segs[1] and segs[2] and segs[3]:
            if segs[3] == "index.m3u8":
                return await self.media(scope, segs[1], segs[2])
            return await self.file(segs[1], segs[2], segs[3])
        if len(segs) == 3 and segs[1] and segs[2] == "master.m3u8":
            return await self.master(scope, segs[1])
        return _NOT_FOUND


class HlsApp:
    """The ``/hls`` tree as a raw ASGI app: it answers ``scope["path"]`` (``/hls/...``)."""

    def __init__(
        self,
        registry: HlsRegistry,
        viewers: ViewerCounter | None = None,
        router: HlsRouter | None = None,
    ) -> None:
        self.endpoints = HlsEndpoints(registry, viewers, router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        path: str = scope["path"]
        answer = await self.endpoints.answer(scope, path[len(PREFIX) :])
        await answer.send(send, scope["method"] == "HEAD")
