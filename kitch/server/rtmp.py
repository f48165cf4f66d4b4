"""Asyncio RTMP listener: shuttles bytes between sockets and the sans-IO session.

Each connection is one task. Everything a peer sends that is wrong closes only that
connection, logged with the peer address (and the channel once known); limits come from
`Settings` (handshake and idle timeouts, connection caps, parser limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter

from kitch.config import Settings
from kitch.logs import fingerprint
from kitch.rtmp import RtmpLimits, RtmpProtocolError, RtmpServerSession
from kitch.rtmp.events import (
    MediaReceived,
    MetadataReceived,
    PublishRequested,
    Refused,
    Unpublished,
)
from kitch.rtmp.flv import INGEST_CODECS
from kitch.server import metrics
from kitch.server.ingest import Broadcast, IngestHub, Refusal

log = logging.getLogger("kitch.rtmp")

READ_SIZE = 64 * 1024
#: ``kitch_rtmp_connections_closed_total`` reason of a connection refused by a connection cap;
#: the others are peer, refused, protocol_error, handshake_timeout, idle_timeout, kicked
#: (takeover, revoked key, shutdown), connection_error and cancelled.
CLOSE_LIMIT = "limit"
#: Seconds a refused peer is given to read its onStatus before the socket closes.
REFUSAL_LINGER = 0.2


#: Codecs an MPEG-TS HLS output carries (``hls_format`` "ts"); fMP4 carries every ingest codec.
TS_CODECS = frozenset({"h264", "hevc", "aac", "opus"})


def limits_from(settings: Settings) -> RtmpLimits:
    return RtmpLimits(
        max_message_size=settings.rtmp_max_message_size,
        max_chunk_streams=settings.rtmp_max_chunk_streams,
        max_amf_depth=settings.rtmp_max_amf_depth,
        max_buffered_bytes=settings.rtmp_max_buffered_bytes,
        max_stream_key_length=settings.rtmp_max_stream_key_length,
    )


def accepted_codecs(settings: Settings) -> frozenset[str]:
    """Codecs a publish may use: what the configured HLS output can carry (every ingest codec
    for fMP4, the default; H.264, HEVC, AAC and Opus for ``hls_format`` "ts")."""
    if settings.hls_format == "ts":
        return TS_CODECS
    return INGEST_CODECS


class RtmpServer:
    """Accepts RTMP (and, with a TLS context, RTMPS) connections and runs one session each."""

    def __init__(self, settings: Settings, hub: IngestHub) -> None:
        self.settings = settings
        self.hub = hub
        self.limits = limits_from(settings)
        self.accepted_codecs = accepted_codecs(settings)
        self.per_address: Counter[str] = Counter()
        self.connections: set[RtmpConnection] = set()
        self.servers: list[asyncio.Server] = []

    async def listen(
        self, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> asyncio.Server:
        server = await asyncio.start_server(
            self._accept,
            host,
            port,
            ssl=tls,
            limit=READ_SIZE,
            # A TLS peer that never finishes its handshake is dropped like a silent RTMP one.
            ssl_handshake_timeout=self.settings.rtmp_handshake_timeout if tls else None,
        )
        log.info("rtmp%s listening on %s:%d", "s" if tls else "", host, port)
        self.servers.append(server)
        return server

    async def close(self) -> None:
        """Stop accepting, then drop every open connection."""
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.kick("server shutting down")
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if peername else "?"
        peer = f"{address}:{peername[1]}" if peername else "?"
        s = self.settings
        if len(self.connections) >= s.rtmp_max_connections:
            reason = "too many connections"
        elif self.per_address[address] >= s.rtmp_max_connections_per_ip:
            reason = "too many connections from this address"
        else:
            reason = ""
        if reason:
            log.warning("rtmp %s: refused: %s", peer, reason)
            metrics.RTMP_CLOSED.labels(CLOSE_LIMIT).inc()
            writer.transport.abort()
            return
        conn = RtmpConnection(self, reader, writer, peer)
        self.connections.add(conn)
        self.per_address[address] += 1
        metrics.RTMP_CONNECTIONS.inc()
        metrics.RTMP_OPEN.inc()
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self.per_address[address] -= 1
            if self.per_address[address] <= 0:
                del self.per_address[address]
            metrics.RTMP_OPEN.dec()


class RtmpConnection:
    def __init__(
        self,
        server: RtmpServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        self.server = server
        self.hub = server.hub
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.session = RtmpServerSession(
            server.limits, time.monotonic(), accepted_codecs=server.accepted_codecs
        )
        self.broadcast: Broadcast | None = None
        self.kicked: str | None = None
        self.channel: str | None = None
        #: When the connection last started waiting for a publish: at accept, and again after
        #: an unpublish (the encoder may publish again, or close, within the handshake timeout).
        self.waiting_since = time.monotonic()

    def __repr__(self) -> str:
        return f"<RtmpConnection {self.peer} {self.channel or '-'}>"

    def kick(self, reason: str) -> None:
        """Drop this connection (called by the hub: takeover, revoked key, shutdown)."""
        if self.kicked is None:
            self.kicked = reason
            self.writer.transport.close()

    def _who(self) -> str:
        return f"{self.peer} channel={self.channel}" if self.channel else self.peer

    async def run(self) -> None:
        settings = self.server.settings
        reason, kind = "closed by peer", "peer"
        try:
            while True:
                now = time.monotonic()
                if self.broadcast is None:
                    timeout = self.waiting_since + settings.rtmp_handshake_timeout - now
                    if timeout <= 0:
                        reason = "no publish within the handshake timeout"
                        kind = "handshake_timeout"
                        break
                else:
                    last = max(self.broadcast.last_media, self.waiting_since)
                    timeout = last + settings.rtmp_idle_timeout - now
                    if timeout <= 0:
                        reason = f"no media for {settings.rtmp_idle_timeout:g} s"
                        kind = "idle_timeout"
                        break
                try:
                    data = await asyncio.wait_for(self.reader.read(READ_SIZE), min(timeout, 1.0))
                except TimeoutError:
                    continue
                if not data:
                    break
                metrics.RTMP_BYTES.inc(len(data))
                self.session.receive_data(data, time.monotonic())
                await self._handle_events()
                await self._flush()
                if self.session.wants_close:
                    reason = self.session.close_reason or "session closed"
                    kind = "refused"
                    await asyncio.sleep(REFUSAL_LINGER)
                    break
        except RtmpProtocolError as exc:
            reason = f"protocol error: {exc}"
            log.warning("rtmp %s: %s", self._who(), reason)
            kind = "protocol_error"
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc.__class__.__name__}"
            kind = "connection_error"
        except asyncio.CancelledError:
            reason, kind = "cancelled", "cancelled"
            raise
        finally:
            if self.kicked is not None:
                reason, kind = self.kicked, "kicked"
            log.info("rtmp %s: closed (%s)", self._who(), reason)
            metrics.RTMP_CLOSED.labels(kind).inc()
            if self.broadcast is not None:
                await self.hub.publisher_gone(self.broadcast, self, reason)
            if self.kicked:
                self.writer.transport.abort()
            else:
                self.writer.close()

    async def _flush(self) -> None:
        out = self.session.data_to_send()
        if out:
            self.writer.write(out)
            await asyncio.wait_for(self.writer.drain(), self.server.settings.rtmp_idle_timeout)

    async def _handle_events(self) -> None:
        while (event := self.session.next_event()) is not None:
            if isinstance(event, MediaReceived):
                if self.broadcast is not None:
                    self.hub.feed(self.broadcast, self, event.packet)
            elif isinstance(event, PublishRequested):
                await self._publish(event.stream_key)
            elif isinstance(event, MetadataReceived):
                if self.broadcast is not None:
                    self.hub.metadata(self.broadcast, self, event.values)
            elif isinstance(event, Refused):
                log.warning("rtmp %s: refused: %s %s", self._who(), event.code, event.description)
                metrics.PUBLISH_REFUSED.labels("session").inc()
            elif isinstance(event, Unpublished) and self.broadcast is not None:
                b, self.broadcast = self.broadcast, None
                self.waiting_since = time.monotonic()
                await self.hub.publisher_gone(b, self, "unpublished")

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
        self.session.accept_publish()
        log.info("rtmp %s: publishing", self._who())
        # Input that arrived while the key was looked up was held; parse it now.
        self.session.receive_data(b"", time.monotonic())
