"""One HLS worker process: a mirror of the live streams and a small HTTP/1.1 server for ``/hls``.

Started by :class:`kitch.server.hls_workers.HlsWorkers` as
``python -m kitch.server.hls_worker CONTROL_FD LISTEN_FD[,FD...]``. ``CONTROL_FD`` is its end
of a Unix socketpair with the main process (framed msgpack, :mod:`kitch.hls.mirror`: first the
configuration, then a snapshot of every stream, then every change; back: the playlist readers
it saw, once a second); the ``LISTEN_FD`` list holds the listening sockets all workers share.
It exits when the main process goes (the control socket closes), on SIGTERM (after closing its
connections), or on a message it cannot apply (the main process starts another, which gets a
snapshot).

The HTTP side is an :class:`asyncio.Protocol` on ``httptools`` (GET, HEAD, OPTIONS; keep-alive
and pipelining, answered in order) that hands each request to the same
:class:`~kitch.api.hls.HlsEndpoints` the main process serves ``/hls`` with, so the answers
(status, JSON errors, CORS, gzip, blocking reloads, delta updates, preload-hinted parts) are
the same. The limits are the main listener's (``http_max_connections`` -> 503 and close,
``http_header_timeout``, ``http_max_header_bytes`` -> 431 and close); a request it cannot parse
gets 400 and a close, another method 405 and a close.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any, cast
from urllib.parse import unquote

import httptools

from kitch.api.hls import PREFIX, Answer, HlsEndpoints, error_answer
from kitch.api.viewers import client_of
from kitch.hls.mirror import FrameReader, MirrorError, MirrorRegistry, Op, encode
from kitch.hls.settings import HlsSettings
from kitch.logs import setup_logging
from kitch.server.answers import REFUSAL, TOO_LARGE

log = logging.getLogger("kitch.hls_worker")

#: Seconds between two batches of playlist readers sent to the main process.
SIGHTINGS_INTERVAL = 1.0
#: Most distinct (channel, client) pairs held for one batch.
MAX_SIGHTINGS = 100_000
#: Most requests a connection may have waiting (parsed, not answered): past it, 400 and a close.
MAX_QUEUED = 64
#: Methods and areas as the main process's metrics name them (others: "other", "web").
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_AREAS = ("api", "hls", "vod", "ws", "metrics")
#: Requests a connection may have parsed and waiting behind the one being answered before the
#: worker stops reading from it.
MAX_PIPELINED = 16

_REASONS = {
    200: b"OK", 204: b"No Content", 400: b"Bad Request", 404: b"Not Found",
    405: b"Method Not Allowed", 413: b"Content Too Large", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 503: b"Service Unavailable",
}  # fmt: skip


def _head(answer: Answer, close: bool) -> bytes:
    """The status line and headers of ``answer`` (``close``: with ``connection: close``)."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (answer.status, _REASONS.get(answer.status, b""))]
    parts += [b"%s: %s\r\n" % (name, value) for name, value in answer.headers]
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _json_error(status: int, code: str, message: str, close: bool = True) -> bytes:
    """A whole response with the API's JSON error body (as the main port answers it)."""
    answer = error_answer(status, code, message)
    return _head(answer, close) + bytes(answer.body)


BAD_REQUEST = _json_error(400, "bad_request", "malformed HTTP request")
BODY_TOO_LARGE = _json_error(413, "too_large", "request body too large")
TOO_MANY = _json_error(400, "bad_request", "too many pipelined requests")
NOT_FOUND = _json_error(404, "not_found", "this port serves /hls only", close=False)
SERVER_ERROR = _json_error(500, "internal_error", "internal error")


class Proxies:
    """``trusted_proxies``: the client behind a trusted proxy is the rightmost address of
    X-Forwarded-For that is not itself a trusted proxy (as the main listener reads it)."""

    def __init__(self, spec: list[str]) -> None:
        self.networks = [ipaddress.ip_network(item, strict=False) for item in spec]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client(self, peer: str, forwarded: bytes | None) -> str:
        if forwarded is None or not self.networks or not self.trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer


class Sightings:
    """Playlist readers seen since the last batch: (channel, address, User-Agent)."""

    def __init__(self) -> None:
        self.pending: set[tuple[str, str, bytes]] = set()

    def seen(self, channel: str, scope: Any) -> None:
        if len(self.pending) < MAX_SIGHTINGS:
            address, agent = client_of(scope)
            self.pending.add((channel, address, agent))

    def take(self) -> list[list[Any]]:
        batch = [[c, a, u] for c, a, u in self.pending]
        self.pending = set()
        return batch


class Routes:
    """Where the channels live on other nodes of a cluster are (the main process sends the
    whole table when it changes): the worker's :class:`~kitch.api.hls.HlsRouter`."""

    def __init__(self) -> None:
        self.table: dict[str, str] = {}

    def replace(self, table: object) -> None:
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table.items()
        ):
            raise MirrorError("routes must map channel names to URLs")
        self.table = table

    async def locate(self, channel: str) -> str | None:
        return self.table.get(channel)


class Limits:
    def __init__(self, config: dict[str, Any]) -> None:
        self.max_connections = int(config["http_max_connections"])
        self.header_timeout = float(config["http_header_timeout"])
        self.max_header_bytes = int(config["http_max_header_bytes"])


class Worker:
    """What every connection of this process shares."""

    def __init__(self, config: dict[str, Any]) -> None:
        hls = config["hls"]
        self.settings = HlsSettings(**hls)
        self.registry = MirrorRegistry(self.settings)
        self.sightings = Sightings()
        #: (method, area, status) -> requests answered, for the main process's /metrics
        self.answered: dict[tuple[str, str, int], int] = {}
        self.routes = Routes()
        self.endpoints = HlsEndpoints(self.registry, self.sightings, self.routes)
        self.limits = Limits(config)
        self.proxies = Proxies(list(config.get("trusted_proxies") or []))
        self.connections: set[HlsConnection] = set()
        self.closing = False


class _Request:
    __slots__ = ("headers", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.method = ""
        self.keep_alive = True


class HlsConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to the worker's ``/hls``."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: asyncio.Transport | None = None
        self.peer = ("", 0)
        self.parser = httptools.HttpRequestParser(self)
        self.requests: deque[_Request] = deque()
        self.current: _Request | None = None
        self.busy: asyncio.Task[bool] | None = None
        #: loop time by which a request head must be complete (None: none expected now)
        self.deadline: float | None = None
        self.loop = asyncio.get_running_loop()
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.paused = False
        self.closed = False
        self._head = 0  # bytes of the request head being parsed (URL and headers so far)
        self._raw = 0  # bytes received since the last request head ended
        self._body = 0  # bytes of the current request's body
        self._in_head = False

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        worker = self.worker
        if len(worker.connections) >= worker.limits.max_connections or worker.closing:
            self.closed = True
            self.transport.write(REFUSAL)
            self.transport.close()
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.peer = (str(peer[0]), int(peer[1]))
        worker.connections.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._raw += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BAD_REQUEST)
            return
        except (httptools.HttpParserError, _HeadTooLarge, _TooManyRequests):
            # (httptools wraps what a callback raises: a refusal comes as a parser error)
            limit = self.worker.limits.max_header_bytes
            if self._head > limit:
                self._fail(TOO_LARGE)
            elif self._body > limit:
                self._fail(BODY_TOO_LARGE)
            elif len(self.requests) >= MAX_QUEUED:
                self._fail(TOO_MANY)
            else:
                self._fail(BAD_REQUEST)
            return
        if self._in_head and max(self._raw, self._head) > self.worker.limits.max_header_bytes:
            self._fail(TOO_LARGE)
            return
        if len(self.requests) > MAX_PIPELINED and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        # answer what was asked, then close (a client may half-close after its requests)
        if self.busy is None and not self.requests:
            return None
        self.requests.append(_CLOSE)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.worker.connections.discard(self)
        self._disarm()
        self.can_write.set()
        if self.busy is not None:
            self.busy.cancel()
            self.busy = None
        self.requests.clear()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    # ---- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.current = _Request()
        self._in_head = True
        self._head = 0

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url += url
        self._head += len(url)
        if self._head > self.worker.limits.max_header_bytes:
            raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.lower(), value))  # type: ignore[union-attr]
        self._head += len(name) + len(value) + 4
        if self._head > self.worker.limits.max_header_bytes:
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self._in_head = False
        self._raw = 0
        self._body = 0
        if not any(
            name in (b"content-length", b"transfer-encoding") and value.strip() != b"0"
            for name, value in self.current.headers
        ):
            self._disarm()  # (a request with a body must arrive whole within the timeout)
        self.current.method = self.parser.get_method().decode("latin-1")
        self.current.keep_alive = bool(self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        """Nothing here reads a body: a small one is skipped, a large one refused."""
        self._body += len(body)
        if self._body > self.worker.limits.max_header_bytes:
            raise _HeadTooLarge

    def on_message_complete(self) -> None:
        self._disarm()
        request, self.current = self.current, None
        if request is None:
            return
        if len(self.requests) >= MAX_QUEUED:
            raise _TooManyRequests  # (one read can hold thousands of tiny requests)
        self.requests.append(request)
        if self.busy is None:
            self._next()

    # ---- answering --------------------------------------------------------------------------

    def _next(self) -> None:
        """Answer the queued requests in order. An answer that is ready at once (almost every
        one: a listed part, a playlist already there) is written without a task; one that
        must wait (a blocking reload, the preload-hinted part) goes on in a task, and the
        queue waits for it."""
        while not self.closed and self.busy is None:
            if not self.requests:
                if self.paused and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                self._arm()  # the next request's head has header_timeout from now
                return
            request = self.requests.popleft()
            if request is _CLOSE:
                self._close()
                return
            coro = self._answer(request)
            if _EAGER:  # Python >= 3.12: the task's first step runs now, inside the task
                task = asyncio.Task(coro, loop=self.loop, eager_start=True)  # type: ignore[call-arg]
                if task.done():
                    if task.cancelled() or task.exception() is not None or not task.result():
                        return
                    continue
            else:  # the first step by hand; a task only if it has to wait
                try:
                    awaited = coro.send(None)
                except StopIteration as done:
                    if not done.value:
                        return
                    continue
                task = self.loop.create_task(_finish(coro, awaited))
            self.busy = task
            task.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Task[bool]) -> None:
        if task.cancelled() or task is not self.busy:
            return
        self.busy = None
        if task.exception() is None and task.result():
            self._next()

    async def _answer(self, request: _Request) -> bool:
        """Answer one request; True when the connection goes on with the next."""
        try:
            close = not request.keep_alive
            try:
                url = httptools.parse_url(request.url)
            except httptools.HttpParserInvalidURLError:
                self._fail(BAD_REQUEST)
                return False
            path = unquote(url.path.decode("latin-1"))
            method = request.method if request.method in _METHODS else "other"
            if path != PREFIX and not path.startswith(PREFIX + "/"):
                self._write_raw(NOT_FOUND)
                first = path.split("/", 2)[1] if path.startswith("/") else ""
                self._count(method, first if first in _AREAS else "web", 404)
            else:
                peer = self.peer[0]
                if self.worker.proxies.networks:
                    forwarded = None
                    for name, value in request.headers:
                        if name == b"x-forwarded-for":
                            forwarded = value
                    peer = self.worker.proxies.client(peer, forwarded)
                scope = {
                    "type": "http",
                    "method": request.method,
                    "path": path,
                    "query_string": url.query or b"",
                    "headers": request.headers,
                    "client": (peer, self.peer[1]),
                }
                answer = await self.worker.endpoints.answer(scope, path[len(PREFIX) :])
                if request.method not in ("GET", "HEAD", "OPTIONS"):
                    close = True  # its body (if any) is not read
                self._write(answer, request.method == "HEAD", close)
                self._count(method, "hls", answer.status)
            if close:
                self._close()
                return False
            if not self.can_write.is_set():
                await self.can_write.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("hls worker: error answering %r", request.url[:200])
            self._fail(SERVER_ERROR)
            return False
        return not self.closed

    def _count(self, method: str, area: str, status: int) -> None:
        key = (method, area, status)
        answered = self.worker.answered
        answered[key] = answered.get(key, 0) + 1

    def _write(self, answer: Answer, head: bool, close: bool) -> None:
        if self.transport is None or self.closed:
            return
        if head or not answer.body:
            self.transport.write(_head(answer, close))
        else:
            self.transport.writelines([_head(answer, close), answer.body])

    def _write_raw(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _fail(self, answer: bytes) -> None:
        """Answer ``answer`` (a complete response with ``connection: close``) and close."""
        if self.closed or self.transport is None:
            return
        self.transport.write(answer)
        self._close()

    def _close(self) -> None:
        self.closed = True
        self.worker.connections.discard(self)
        self._disarm()
        if self.transport is not None:
            self.transport.close()

    # ---- header timeout -------------------------------------------------------------------

    # (one sweep of every connection a few times a second, not a timer per request)

    def _arm(self) -> None:
        if self.deadline is None and not self.closed:
            self.deadline = self.loop.time() + self.worker.limits.header_timeout

    def _disarm(self) -> None:
        self.deadline = None

    def timed_out(self, now: float) -> bool:
        """Close the connection if its head is late (called by the worker's sweep)."""
        if self.deadline is None or now < self.deadline:
            return False
        self.deadline = None
        if self._in_head or (self.busy is None and not self.requests):
            self._close()
            return True
        return False


class _HeadTooLarge(Exception):
    pass


class _TooManyRequests(Exception):
    pass


class _Resume:
    """Awaiting it goes on running ``coro`` (started by hand, now waiting on ``awaited``):
    what it awaits is handed to the task awaiting this, what the task sends or throws back
    goes to it."""

    def __init__(self, coro: Coroutine[Any, Any, bool], awaited: Any) -> None:
        self.coro = coro
        self.awaited = awaited

    def __await__(self) -> Generator[Any, Any, bool]:
        coro, awaited = self.coro, self.awaited
        while True:
            try:
                sent = yield awaited
            except BaseException as exc:
                try:
                    awaited = coro.throw(exc)
                except StopIteration as done:
                    return bool(done.value)
            else:
                try:
                    awaited = coro.send(sent)
                except StopIteration as done:
                    return bool(done.value)


async def _finish(coro: Coroutine[Any, Any, bool], awaited: Any) -> bool:
    return await _Resume(coro, awaited)


#: Whether tasks can run their first step at once (asyncio's eager start, Python 3.12+); before
#: that an answer's first step is run by hand (:class:`_Resume`), as it would be run by a task.
_EAGER = sys.version_info >= (3, 12)

#: Stands in the request queue for "the client closed its side: close after the answers".
_CLOSE = _Request()


class Control(asyncio.Protocol):
    """The main process's end: configuration, snapshot and changes in, playlist readers out."""

    def __init__(
        self,
        started: Callable[[dict[str, Any]], Worker],
        synced: Callable[[Worker], None],
        done: asyncio.Future[int],
    ) -> None:
        self.started = started
        self.synced = synced
        self.listening = False
        self.done = done
        self.reader = FrameReader()
        self.worker: Worker | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            for message in self.reader.feed(data):
                if self.worker is None:
                    if message[0] != Op.CONFIG or not isinstance(message[1], dict):
                        raise MirrorError("the first message must be the configuration")
                    self.worker = self.started(message[1])
                elif message[0] == Op.ROUTES and len(message) == 2:
                    self.worker.routes.replace(message[1])
                else:
                    self.worker.registry.apply(message)
            if not self.listening and self.worker is not None and self.worker.registry.synced:
                self.listening = True  # serve once the first snapshot is whole
                self.synced(self.worker)
        except MirrorError as exc:
            log.error("hls worker: %s; exiting (the main process starts another)", exc)
            self._finish(2)

    def send_sightings(self) -> None:
        if self.worker is None or self.transport is None or self.transport.is_closing():
            return
        batch = self.worker.sightings.take()
        if batch:
            self.transport.write(encode([Op.SIGHTINGS, batch]))
        answered, self.worker.answered = self.worker.answered, {}
        if answered:
            counts = [[m, a, s, n] for (m, a, s), n in answered.items()]
            self.transport.write(encode([Op.REQUESTS, counts]))

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(0)  # the main process is gone (or closed us): stop

    def _finish(self, code: int) -> None:
        if not self.done.done():
            self.done.set_result(code)
        if self.transport is not None:
            self.transport.close()


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies, even if the parent is SIGKILLed."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def run_worker(control_fd: int, listen_fds: list[int]) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    control_sock = socket.socket(fileno=control_fd)
    listen_socks = [socket.socket(fileno=fd) for fd in listen_fds]
    servers: list[asyncio.AbstractServer] = []
    workers: list[Worker] = []
    tasks: list[asyncio.Task[None]] = []

    def started(config: dict[str, Any]) -> Worker:
        setup_logging(str(config.get("log_format", "text")), str(config.get("log_level", "info")))
        worker = Worker(config)
        workers.append(worker)
        return worker

    def synced(worker: Worker) -> None:
        async def listen() -> None:
            for sock in listen_socks:
                server = await loop.create_server(
                    lambda: HlsConnection(worker), sock=sock, backlog=2048
                )
                servers.append(server)

        async def sweep() -> None:  # header timeouts, checked a few times a second
            every = min(0.5, worker.limits.header_timeout / 4)
            while True:
                await asyncio.sleep(every)
                now = loop.time()
                for conn in list(worker.connections):
                    conn.timed_out(now)

        tasks.append(loop.create_task(listen()))
        tasks.append(loop.create_task(sweep()))

    _, control = await loop.create_unix_connection(
        lambda: Control(started, synced, done), sock=control_sock
    )

    def stop(signum: int) -> None:
        if not done.done():
            done.set_result(0)

    loop.add_signal_handler(signal.SIGTERM, stop, signal.SIGTERM)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the main process decides

    async def tick() -> None:
        while True:
            await asyncio.sleep(SIGHTINGS_INTERVAL)
            control.send_sightings()

    ticker = loop.create_task(tick())
    code = await done
    ticker.cancel()
    for task in tasks:
        task.cancel()
    for server in servers:
        server.close()
    for worker in workers:
        worker.closing = True
        for conn in list(worker.connections):
            conn._close()
    control.send_sightings()
    if control.transport is not None:
        control.transport.close()
    await asyncio.sleep(0)
    return code


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m kitch.server.hls_worker CONTROL_FD LISTEN_FD[,FD...]\n")
        return 2
    _die_with_parent()
    if os.getppid() == 1:  # the parent is already gone
        return 0
    control_fd, listen_fds = int(argv[0]), [int(fd) for fd in argv[1].split(",")]
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_worker(control_fd, listen_fds))
    return uvloop.run(run_worker(control_fd, listen_fds))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
