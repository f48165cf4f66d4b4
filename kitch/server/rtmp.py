"""Asyncio RTMP listener: shuttles bytes between sockets and the sans-IO session.

Each connection is an :class:`asyncio.Protocol` whose ``data_received`` feeds the session
directly (a task runs only while a publish or unpublish awaits the hub). Everything a peer
sends that is wrong closes only that connection, logged with the peer address (and the channel
once known); limits come from `Settings` (handshake and idle timeouts, connection caps, parser
limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, cast

from kitch.auth.ratelimit import address_key
from kitch.config import Settings
from kitch.ingest.hub import Broadcast, Refusal
from kitch.logs import fingerprint
from kitch.media import MediaPacket
from kitch.rtmp import RtmpLimits, RtmpProtocolError, RtmpServerSession
from kitch.rtmp.events import (
    Event,
    MediaReceived,
    MetadataReceived,
    PublishRequested,
    Refused,
    Unpublished,
)
from kitch.server import metrics
from kitch.server.ingest import IngestHub
from kitch.server.tls import TlsLayer
from kitch.twins import ingest as _ingest

log = logging.getLogger("kitch.rtmp")

#: ``kitch_rtmp_connections_closed_total`` reason of a connection refused by a connection cap;
#: the others are peer, refused, protocol_error, handshake_timeout, idle_timeout, kicked
#: (takeover, revoked key, shutdown), tls (a TLS error), connection_error and cancelled.
CLOSE_LIMIT = "limit"
#: Seconds a refused peer is given to read its onStatus before the socket closes.
REFUSAL_LINGER = 0.2
#: Received bytes are added to ``kitch_rtmp_received_bytes_total`` once a connection has this
#: many unreported (and when it closes): one locked counter update per ~64 KiB instead of one
#: per read.
BYTES_REPORT = 64 * 1024


def limits_from(settings: Settings) -> RtmpLimits:
    return RtmpLimits(
        max_message_size=settings.rtmp_max_message_size,
        max_chunk_streams=settings.rtmp_max_chunk_streams,
        max_amf_depth=settings.rtmp_max_amf_depth,
        max_buffered_bytes=settings.rtmp_max_buffered_bytes,
        max_stream_key_length=settings.rtmp_max_stream_key_length,
    )


class RtmpServer:
    """Accepts RTMP (and, with a TLS context, RTMPS) connections and runs one session each."""

    def __init__(self, settings: Settings, hub: IngestHub) -> None:
        self.settings = settings
        self.hub = hub
        self.limits = limits_from(settings)
        self.per_address: Counter[str] = Counter()
        self.connections: set[RtmpConnection] = set()
        self.servers: list[asyncio.Server] = []
        #: Hub calls still running for connections (publish lookups, publisher_gone).
        self.tasks: set[asyncio.Task[None]] = set()

    async def listen(
        self, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> asyncio.Server:
        """Listen on ``host:port``; with ``tls``, connections are accepted as plain TCP and
        the listener runs TLS itself (:class:`~kitch.server.tls.TlsLayer`), so a peer counts
        against the connection caps, and its handshake timeout runs, from accept."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: RtmpConnection(self, tls), host, port)
        log.info("rtmp%s listening on %s:%d", "s" if tls else "", host, port)
        self.servers.append(server)
        return server

    async def close(self) -> None:
        """Stop accepting, then drop every open connection (waiting up to 2 s for their hub
        calls to finish)."""
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.kick("server shutting down")
        deadline = time.monotonic() + 2
        while (self.connections or self.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), max(0.1, deadline - time.monotonic()))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a connection's hub call as a task the server keeps until it is done."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def admit(self, conn: RtmpConnection, address: str) -> str:
        """Count ``conn`` in, or say why a connection cap refuses it ("" when admitted)."""
        s = self.settings
        if len(self.connections) >= s.rtmp_max_connections:
            return "too many connections"
        if self.per_address[address] >= s.rtmp_max_connections_per_ip:
            return "too many connections from this address"
        self.connections.add(conn)
        self.per_address[address] += 1
        metrics.RTMP_CONNECTIONS.inc()
        metrics.RTMP_OPEN.inc()
        return ""

    def forget(self, conn: RtmpConnection, address: str) -> None:
        self.connections.discard(conn)
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]
        metrics.RTMP_OPEN.dec()


class RtmpConnection(asyncio.Protocol):
    """One RTMP connection: ``data_received`` feeds the sans-IO session directly.

    No task and no timeout object per read: one timer per connection enforces the handshake
    timeout (until a publish is accepted, and again after an unpublish) and the idle timeout
    (no media while publishing); it is re-armed only when it fires early or the state changes.
    The events that must wait for the hub (a publish's key lookup, an unpublish) hand the rest
    of the work to a task, and reading pauses until it is done.
    """

    def __init__(self, server: RtmpServer, tls: ssl.SSLContext | None = None) -> None:
        self.server = server
        #: RTMPS: the TLS layer between the socket and the session.
        self.tls = TlsLayer(tls) if tls is not None else None
        self.hub = server.hub
        self.settings = server.settings
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.address = "?"
        self.limit_key = "?"
        # Which codecs a publish may carry is the outputs' call (the hub asks each sink).
        self.session = RtmpServerSession(server.limits, time.monotonic())
        self.broadcast: Broadcast | None = None
        self.kicked: str | None = None
        self.channel: str | None = None
        #: When the connection last started waiting for a publish: at accept, and again after
        #: an unpublish (the encoder may publish again, or close, within the handshake timeout).
        self.waiting_since = time.monotonic()
        #: Why the connection is closing and the metrics kind of it; the first reason wins.
        self.reason: str | None = None
        self.kind = "peer"
        self.admitted = False
        self.lost = False
        self._timer: asyncio.TimerHandle | None = None
        self._busy: asyncio.Task[None] | None = None
        self._held = bytearray()  # input that arrived while a hub call was under way
        self._paused: set[str] = set()
        self._unreported = 0  # bytes received, not yet added to the metric (BYTES_REPORT)
        self._native = 0  # media packets earlier lanes took (a connection may publish again)

    def __repr__(self) -> str:
        return f"<RtmpConnection {self.peer} {self.channel or '-'}>"

    def _who(self) -> str:
        return f"{self.peer} channel={self.channel}" if self.channel else self.peer

    # -- transport callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peername = transport.get_extra_info("peername")
        self.address = str(peername[0]) if peername else "?"
        self.peer = f"{self.address}:{peername[1]}" if peername else "?"
        # IPv6 peers count per /64 (one subscriber's prefix), as in the HTTP API's limits
        self.limit_key = address_key(self.address)
        refusal = self.server.admit(self, self.limit_key)
        if refusal:
            log.warning("rtmp %s: refused: %s", self.peer, refusal)
            metrics.RTMP_CLOSED.labels(CLOSE_LIMIT).inc()
            self.reason = refusal
            transport.abort()
            return
        self.admitted = True
        self.waiting_since = time.monotonic()
        self._rearm()

    def data_received(self, data: bytes) -> None:
        if self.tls is not None:
            data = self._decrypt(data)
            if not data:
                return
        if self._busy is not None:  # a read may still arrive after a pause
            self._held += data
            return
        self._feed(data)

    def _decrypt(self, data: bytes) -> bytes:
        assert self.tls is not None
        if self.reason is not None:
            return b""
        try:
            plain = self.tls.receive(data)
        except ssl.SSLError as exc:
            reason = f"TLS error: {exc.reason or exc.__class__.__name__}"
            log.warning("rtmp %s: %s", self._who(), reason)
            self._close(reason, "tls")
            return b""
        self._send_tls()
        if self.tls.closed:
            self._close("closed by peer", "peer")
        return plain

    def _send_tls(self) -> None:
        assert self.tls is not None
        out = self.tls.outgoing()
        if out and self.transport is not None:
            self.transport.write(out)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        # The peer does not read what we answer: stop reading it too (the timeouts still run).
        self._pause("writing")

    def resume_writing(self) -> None:
        self._resume("writing")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted or self.lost:
            return
        self.lost = True
        if self._timer is not None:
            self._timer.cancel()
        if self.reason is None:
            if exc is None:
                self.reason, self.kind = "closed by peer", "peer"
            else:
                self.reason = f"connection error: {exc.__class__.__name__}"
                self.kind = "connection_error"
        if self.kicked is not None:
            self.reason, self.kind = self.kicked, "kicked"
        self._set_lane(None)  # adds what the lane took to _native
        log.info(
            "rtmp %s: closed (%s); %d of %d media packets took the native path",
            self._who(),
            self.reason,
            self._native,
            self.session.media_packets,
        )
        metrics.RTMP_CLOSED.labels(self.kind).inc()
        if self._unreported:
            metrics.RTMP_BYTES.inc(self._unreported)
            self._unreported = 0
        self.server.forget(self, self.limit_key)
        if self._busy is None and self.broadcast is not None:
            self.server.spawn(self.hub.publisher_gone(self.broadcast, self, self.reason))
        # else the hub call under way ends with publisher_gone (see _events_async)

    # -- closing ---------------------------------------------------------------------------

    def kick(self, reason: str) -> None:
        """Drop this connection (called by the hub: takeover, revoked key, shutdown)."""
        if self.kicked is None:
            self.kicked = reason
            self._close(reason, "kicked")

    def _close(self, reason: str, kind: str) -> None:
        if self.reason is None:
            self.reason, self.kind = reason, kind
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            if self.kicked is not None:
                self.transport.abort()
            else:
                if self.tls is not None and self.tls.close_notify():
                    self._send_tls()
                self.transport.close()

    def _protocol_error(self, exc: RtmpProtocolError) -> None:
        reason = f"protocol error: {exc}"
        log.warning("rtmp %s: %s", self._who(), reason)
        self._close(reason, "protocol_error")

    def _pause(self, why: str) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused.add(why)

    def _resume(self, why: str) -> None:
        self._paused.discard(why)
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- timeouts --------------------------------------------------------------------------

    def _deadline(self) -> tuple[float, str, str]:
        """When the connection times out, with the reason and metrics kind it would close with."""
        s = self.settings
        if self.broadcast is None:
            return (
                self.waiting_since + s.rtmp_handshake_timeout,
                "no publish within the handshake timeout",
                "handshake_timeout",
            )
        last = max(self.broadcast.last_media, self.waiting_since)
        return last + s.rtmp_idle_timeout, f"no media for {s.rtmp_idle_timeout:g} s", "idle_timeout"

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        deadline = self._deadline()[0]
        self._timer = loop.call_later(max(0.0, deadline - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.reason is not None or self.lost:
            return
        if self._busy is not None:  # a hub call is under way: look again a little later
            self._timer = asyncio.get_running_loop().call_later(0.5, self._on_timer)
            return
        deadline, reason, kind = self._deadline()
        if time.monotonic() >= deadline:
            self._close(reason, kind)
        else:
            self._rearm()

    # -- input -----------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self.reason is not None:
            return
        self._unreported += len(data)
        if self._unreported >= BYTES_REPORT:
            metrics.RTMP_BYTES.inc(self._unreported)
            self._unreported = 0
        try:
            work = self.session.receive_data(data, time.monotonic())
        except RtmpProtocolError as exc:
            self._protocol_error(exc)
            return
        if work:  # most reads while media flows leave nothing: the lane took the frames
            self._events()

    def _events(self) -> None:
        """Hand the session's events to the hub; at the first one that must await the hub, the
        rest goes to a task and reading pauses until it is done."""
        next_event, feed = self.session.next_event, self.hub.feed
        while (event := next_event()) is not None:
            if type(event) is MediaReceived:
                if self.broadcast is not None:
                    refusal = feed(self.broadcast, self, event.packet)
                    if refusal is not None:
                        self._refused(refusal)
                        break  # the session is closed: what it still holds is dropped
            elif isinstance(event, PublishRequested | Unpublished):
                self._pause("hub")
                self._busy = self.server.spawn(self._events_async(event))
                return
            else:
                self._other_event(event)
        self._flush()

    def _set_lane(self, lane: Callable[[MediaPacket], bool] | None) -> None:
        old = self.session.lane
        if isinstance(old, _ingest.FrameLane):
            self._native += old.taken
        self.session.lane = lane

    def _other_event(self, event: Event) -> None:
        if isinstance(event, MetadataReceived):
            if self.broadcast is not None:
                self.hub.metadata(self.broadcast, self, event.values)
        elif isinstance(event, Refused):
            log.warning("rtmp %s: refused: %s %s", self._who(), event.code, event.description)
            metrics.PUBLISH_REFUSED.labels("session").inc()

    def _flush(self) -> None:
        session = self.session
        out = session.data_to_send()
        if out and self.transport is not None:
            if self.tls is not None:
                self.tls.encrypt(out)
                self._send_tls()
            else:
                self.transport.write(out)
        if session.wants_close and self.reason is None:
            # Refused: the peer gets REFUSAL_LINGER seconds to read its onStatus, then we close.
            self.reason, self.kind = session.close_reason or "session closed", "refused"
            self._pause("refused")
            loop = asyncio.get_running_loop()
            loop.call_later(REFUSAL_LINGER, self._close, self.reason, self.kind)

    async def _events_async(self, event: Event | None) -> None:
        try:
            while event is not None and not self.lost and self.reason is None:
                if isinstance(event, PublishRequested):
                    await self._publish(event.stream_key)
                elif isinstance(event, Unpublished):
                    if self.broadcast is not None:
                        b, self.broadcast = self.broadcast, None
                        self._set_lane(None)
                        self.waiting_since = time.monotonic()
                        self._rearm()
                        await self.hub.unpublished(b, self)
                elif type(event) is MediaReceived:
                    if self.broadcast is not None:
                        refusal = self.hub.feed(self.broadcast, self, event.packet)
                        if refusal is not None:
                            self._refused(refusal)
                            break
                else:
                    self._other_event(event)
                event = self.session.next_event()
        except RtmpProtocolError as exc:
            self._protocol_error(exc)
        except asyncio.CancelledError:
            self._close("cancelled", "cancelled")
            raise
        finally:
            self._busy = None
            if self.lost and self.broadcast is not None and self.reason is not None:
                await self.hub.publisher_gone(self.broadcast, self, self.reason)
        if self.lost or self.reason is not None:
            return
        self._flush()
        if self._held:
            held = bytes(self._held)
            self._held.clear()
            self._feed(held)
        if self._busy is None:
            self._resume("hub")

    def _refused(self, refusal: Refusal) -> None:
        """An output refused the media (its codec): the encoder gets the refusal, the rest of
        the input is ignored, the socket closes (see ``_flush``); the hub ended the broadcast."""
        log.warning("rtmp %s: refused: %s %s", self._who(), refusal.code, refusal.description)
        self.broadcast = None
        self._set_lane(None)
        self.session.reject_publish(refusal.code, refusal.description)

    async def _publish(self, key: str) -> None:
        if self.broadcast is not None:
            raise RtmpProtocolError("publish while already publishing")
        result = await self.hub.begin(key, self)
        if isinstance(result, Refusal):
            log.warning(
                "rtmp %s: publish refused (%s) for key %s",
                self.peer,
                result.description,
                fingerprint(key),
            )
            self.session.reject_publish(result.code, result.description)
            return
        self.broadcast = result
        self.channel = result.channel
        if not self.lost and self.reason is None:
            # the common frames go to the passthrough muxer natively, not through _events
            self._set_lane(self.hub.lane(result, self))
        self._rearm()
        self.session.accept_publish()
        log.info("rtmp %s: publishing", self._who())
        # Input that arrived while the key was looked up was held; parse it now.
        self.session.receive_data(b"", time.monotonic())
