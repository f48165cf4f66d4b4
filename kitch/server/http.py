"""The HTTP listener's connection limits, around uvicorn's own HTTP protocol.

HTTP and RTMP share one process, so a client that holds HTTP connections open must not be
able to exhaust the process's file descriptors (that would stop ingest too). Three bounds, each
a setting:

* ``http_max_connections``: connections past it are answered ``503`` and closed at accept.
  (uvicorn's ``limit_concurrency`` does not bound connections: it accepts them all and answers
  every request on every connection with 503 while the count is over the limit, and never
  closes a connection that sends nothing.)
* ``http_header_timeout``: a connection has this long to complete a request's headers, from
  accept and again from the end of each response (keep-alive); one that sends nothing or
  trickles its headers is closed. uvicorn has no such timeout (its ``timeout_keep_alive`` is
  only armed after a response and is disarmed by the first byte of the next request).
* ``http_max_header_bytes``: a request line and headers larger than this get ``431`` and the
  connection closes. uvicorn's httptools implementation (the fast one) has no header size
  limit, and its h11 one (which has: ``h11_max_incomplete_event_size``) serves small
  responses at well under half the rate (benchmarks/README.md), so the guard counts the bytes
  of each request head itself: from the end of a response (or accept) to the blank line that
  ends the headers. While a request is being answered, bytes that arrive beyond the body the
  app has read (a pipelined request's head) are bounded too.

:class:`ConnectionGuard` holds the count; :meth:`ConnectionGuard.protocol` is the protocol class
given to uvicorn (``Config(http=...)``): it delegates every :class:`asyncio.Protocol` call to
uvicorn's httptools protocol and adds the caps and the timer;
:meth:`ConnectionGuard.middleware` is the outermost ASGI layer, which tells the connection when
a request starts, how much body its app read and when its response ends (a connection is found
by its peer address, as uvicorn reports it in ``scope["client"]``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kitch.config import Settings, split_list
from kitch.server.answers import REFUSAL, TOO_LARGE

log = logging.getLogger("kitch.http")

HTTP_OPEN = Gauge("kitch_http_open_connections", "HTTP connections currently open")
HTTP_CLOSED = Counter(
    "kitch_http_connections_closed_total",
    "HTTP connections closed by a limit, by reason (limit, header_timeout, header_size)",
    ["reason"],
)

#: Bytes a connection may have in flight beyond its request head and the body its app has read:
#: uvicorn stops reading at 64 KiB of unread body, and one read may bring up to 256 KiB more.
IN_FLIGHT_SLACK = 64 * 1024 + 256 * 1024

Peer = tuple[str, int]


#: Seconds uvicorn waits for open HTTP requests (e.g. blocking playlist reloads) at shutdown.
HTTP_SHUTDOWN_GRACE = 3


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int
    header_timeout: float
    max_header_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            settings.http_max_connections,
            settings.http_header_timeout,
            settings.http_max_header_bytes,
        )


def listener_config(
    app: ASGIApp, address: tuple[str, int], guard: ConnectionGuard, settings: Settings, **extra: Any
) -> uvicorn.Config:
    """uvicorn's configuration of one Kitch HTTP listener: the guard's protocol and ASGI layer,
    and forwarded headers believed only from ``trusted_proxies`` (uvicorn's own
    ``ProxyHeadersMiddleware``, inside the guard, which needs the socket's peer address)."""
    trusted = split_list(settings.trusted_proxies)
    inner = app
    if trusted:
        proxied = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
        inner = cast(ASGIApp, proxied)
    return uvicorn.Config(
        guard.middleware(inner),
        host=address[0],
        port=address[1],
        http=guard.protocol(),
        proxy_headers=False,  # done above, and only when proxies are configured
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=HTTP_SHUTDOWN_GRACE,
        server_header=False,
        ws_max_size=WS_MAX_SIZE,
        ws=WS_PROTOCOL,
        **extra,
    )


def listen_sockets(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """``count`` listening sockets per address of ``host`` on one ``port`` (SO_REUSEPORT), for
    ``uvicorn.Server.serve(sockets=...)``.

    Why several: libuv (under uvloop) accepts one connection per listening socket per turn of
    the event loop. When the loop is busy (a turn of 200 ms with a thousand viewers' requests)
    that is five new connections a second, and a crowd joining at once waits in the kernel's
    queue until its clients give up (benchmarks/README.md). The kernel spreads new connections
    over the sockets of the port, so ``count`` of them let that many in per turn. ``port`` 0
    picks a free port for the first and binds the others to it. Where the platform has no
    SO_REUSEPORT, one socket.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        count = 1
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    made: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):  # each address once
            if port == 0 and made:  # every address on the port the first socket got
                address = (address[0], made[0].getsockname()[1], *address[2:])
            for _ in range(max(1, count)):
                sock = socket.socket(family, kind, proto)
                made.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if count > 1:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                if address[1] == 0:  # the others join the port the first one got
                    address = (address[0], sock.getsockname()[1], *address[2:])
                sock.listen(backlog)
                sock.setblocking(False)
    except OSError as exc:
        for sock in made:
            sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return made


#: uvicorn's WebSocket implementation: the sans-I/O one on the ``websockets`` library (what
#: uvicorn 0.54 picks by default, named here so an upgrade cannot change it unseen). Measured
#: with 1,000 idle chat sockets (benchmarks/bench_chat.py): 29.5 KiB per connection; the legacy
#: ``websockets`` one (tasks and a queue per connection) 36.8 KiB; ``wsproto`` (not installed by
#: default) 27.3 KiB, with no less CPU per message sent.
WS_PROTOCOL = "websockets-sansio"

#: Largest WebSocket message uvicorn reads (the chat and events sockets cap their frames at 4 KiB
#: themselves; this stops a bigger one before it is buffered).
WS_MAX_SIZE = 64 * 1024


class ConnectionGuard:
    """Open HTTP connections of every listener that uses :meth:`protocol`, by peer address."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.open: dict[Peer, GuardedConnection] = {}
        self._sweeping: asyncio.TimerHandle | None = None

    def watch(self) -> None:
        """Make sure the header-timeout sweep runs (it stops when no connection is open)."""
        if self._sweeping is None:
            loop = asyncio.get_running_loop()
            self._sweeping = loop.call_later(self._sweep_every(), self._sweep)

    def _sweep_every(self) -> float:
        return min(1.0, self.limits.header_timeout / 4)

    def _sweep(self) -> None:
        """Close the connections whose request head is late. One timer for all of them, a
        few times per timeout, instead of a timer per connection re-armed on every response
        (that was ~3 % of the CPU of a small answer)."""
        self._sweeping = None
        now = time.monotonic()
        for conn in [c for c in self.open.values() if c.deadline is not None and c.deadline <= now]:
            conn.timed_out()
        if self.open:
            self.watch()

    def protocol(self) -> type[asyncio.Protocol]:
        """The protocol class to give uvicorn as ``Config(http=...)``."""
        guard = self

        class Guarded(GuardedConnection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(guard, HttpToolsProtocol(*args, **kwargs))

        return Guarded

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wrap ``app`` (outermost, before anything rewrites ``scope["client"]``)."""
        guard = self

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            client = scope.get("client")
            conn = guard.open.get((client[0], client[1])) if client else None
            if conn is None or scope["type"] not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            conn.request_started()
            if scope["type"] == "websocket":
                try:  # the connection now belongs to uvicorn's WebSocket protocol
                    await app(scope, receive, send)
                finally:
                    conn.forget()
                return

            done = False
            wire = conn.wire

            async def send_watched(message: Message) -> None:
                nonlocal done
                kind = message["type"]
                if kind == "http.response.start":
                    wire.hold = True  # the head waits for the first piece of body
                await send(message)
                if kind == "http.response.body" and not message.get("more_body"):
                    wire.flush()  # a HEAD answer has no body to go with
                    done = True
                    conn.response_done()

            async def receive_counted() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    conn.body_read(len(message.get("body", b"")))
                return message

            # GET/HEAD bodies are not read by anything: their bytes count as in flight
            counted = receive if scope["method"] in ("GET", "HEAD") else receive_counted
            try:
                await app(scope, counted, send_watched)
            finally:
                wire.flush()
                if not done:  # the server answered for the app (an error): wait for the next
                    conn.response_done()

        return guarded


class OneWrite(asyncio.Transport):
    """The transport uvicorn's protocol is given: the connection's own, except that a
    response's head (uvicorn writes it apart from the body) is held until the body's first
    write, and the two go out together through ``writelines`` (one ``writev``, one packet for
    a small answer) instead of two sends. Measured on playlists: the head's own send was a
    quarter of the server's CPU per request. Everything else is passed through."""

    __slots__ = ("held", "hold", "real")

    def __init__(self, real: asyncio.Transport) -> None:
        super().__init__()
        self.real = real
        self.hold = False  # hold the next write (set when a response starts)
        self.held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.real.writelines((held, data))
        elif self.hold:
            self.hold = False
            self.held = bytes(data)
        else:
            self.real.write(data)

    def flush(self) -> None:
        """Send a held head now (a response with no body, or an error)."""
        self.hold = False
        held = self.held
        if held is not None:
            self.held = None
            self.real.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.flush()
        self.real.writelines(list_of_data)

    def close(self) -> None:
        self.flush()
        self.real.close()

    def abort(self) -> None:
        self.held = None
        self.real.abort()

    def is_closing(self) -> bool:
        return self.real.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.real.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.real.pause_reading()

    def resume_reading(self) -> None:
        self.real.resume_reading()

    def is_reading(self) -> bool:
        return self.real.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self.real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.real.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self.real.get_write_buffer_size() + len(self.held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.real.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self.real.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self.real.write_eof()


#: What an upgraded connection's :attr:`GuardedConnection.inner` becomes (nothing calls it).
_UPGRADED = asyncio.Protocol()


class _Unconnected(asyncio.Transport):
    """A transport with nowhere to write: :attr:`GuardedConnection.wire` until connected."""


_NO_WIRE = OneWrite(_Unconnected())


class GuardedConnection(asyncio.Protocol):
    """One HTTP connection: refused past the cap, closed when its headers take too long;
    everything else is ``inner``'s (uvicorn's protocol)."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.wire: OneWrite = _NO_WIRE
        self.peer: Peer | None = None
        self.refused = False
        self.counted = False
        #: When the request head being read must be complete (monotonic), None while a
        #: request is being answered.
        self.deadline: float | None = None
        #: Between requests: reading a request head, ``_head`` bytes of it so far (``_tail``:
        #: its last 3 bytes, for a blank line split across reads).
        self._in_head = True
        self._head = 0
        self._tail = b""
        #: Bytes received after the current request's head, less the body the app has read.
        self._extra = 0

    # -- asyncio.Protocol, delegated --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        guard = self.guard
        if len(guard.open) >= guard.limits.max_connections:
            self.refused = True
            HTTP_CLOSED.labels("limit").inc()
            log.warning("http: refused a connection: %d open", len(guard.open))
            transport.write(REFUSAL)
            transport.close()
            return
        peername = transport.get_extra_info("peername")
        if peername:
            self.peer = (str(peername[0]), int(peername[1]))
            guard.open[self.peer] = self
        self.counted = True
        HTTP_OPEN.inc()
        self._arm()
        self.wire = OneWrite(transport)
        self.inner.connection_made(self.wire)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        limit = self.guard.limits.max_header_bytes
        if self._in_head:
            end = -1
            if self._tail:  # a blank line that started in the previous read
                joined = (self._tail + data[:3]).find(b"\r\n\r\n")
                if joined >= 0:
                    end = joined - len(self._tail)
            if end < 0:
                end = data.find(b"\r\n\r\n")
            if end < 0:
                self._head += len(data)
                self._tail = (self._tail + data)[-3:] if len(data) < 3 else data[-3:]
            else:
                self._head += end + 4
                self._in_head = False
                self._extra = len(data) - (end + 4)
            if self._head > limit:
                self._too_large(TOO_LARGE)
                return
        else:
            self._extra += len(data)
            if self._extra > limit + IN_FLIGHT_SLACK:
                self._too_large(b"")
                return
        self.inner.data_received(data)
        if self.transport is not None and self.transport.get_protocol() is not self:
            # Upgraded: uvicorn's WebSocket protocol owns the transport now, and uvicorn's HTTP
            # protocol (its parser, buffers and the request's headers) is not needed any more.
            self.inner = _UPGRADED

    def _too_large(self, answer: bytes) -> None:
        assert self.transport is not None
        HTTP_CLOSED.labels("header_size").inc()
        log.info("http %s:%s: closed (request headers too large)", *(self.peer or ("?", 0)))
        self.refused = True  # nothing more reaches uvicorn's protocol but the close
        if answer:
            self.transport.write(answer)
        self.transport.close()
        self.forget()
        self.inner.connection_lost(None)

    def eof_received(self) -> bool | None:
        return None if self.refused else self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        self.forget()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self.refused:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self.refused:
            self.inner.resume_writing()

    # -- limits ----------------------------------------------------------------------------

    def forget(self) -> None:
        self._disarm()
        if self.counted:
            self.counted = False
            HTTP_OPEN.dec()
            if self.peer is not None and self.guard.open.get(self.peer) is self:
                del self.guard.open[self.peer]

    def request_started(self) -> None:
        self._disarm()
        if self._in_head:  # its head arrived while the previous request was answered
            self._in_head = False
            self._extra = 0

    def body_read(self, size: int) -> None:
        self._extra -= size

    def response_done(self) -> None:
        self._in_head, self._head, self._tail, self._extra = True, 0, b"", 0
        if self.counted:
            self._arm()

    def _arm(self) -> None:
        self.deadline = time.monotonic() + self.guard.limits.header_timeout
        self.guard.watch()

    def _disarm(self) -> None:
        self.deadline = None

    def timed_out(self) -> None:
        self.deadline = None
        if self.transport is not None and not self.transport.is_closing():
            HTTP_CLOSED.labels("header_timeout").inc()
            log.info(
                "http %s:%s: closed (no complete request headers within %g s)",
                *(self.peer or ("?", 0)),
                self.guard.limits.header_timeout,
            )
            self.transport.close()
