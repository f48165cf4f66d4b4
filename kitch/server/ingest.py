"""The per-channel hub: publish authorisation, live state, reconnect grace, takeover, HLS feed.

It enforces the live session rules of docs/ARCHITECTURE.md:

* a publisher that drops and comes back within ``reconnect_grace`` continues the same broadcast
  (same database session, no offline flip, HLS continues with a discontinuity);
* a second publisher on a live key is refused while the first one sends media; once the first
  has been silent for ``TAKEOVER_SILENCE`` seconds the newcomer takes over;
* a key that stops resolving (rotated, or ingest disabled by "end broadcast") disconnects its
  publisher within ``KEY_RECHECK_INTERVAL`` seconds and ends the broadcast.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kitch.config import Settings
from kitch.db import Database
from kitch.db.queries import (
    channel_for_stream_key,
    end_broadcast,
    start_broadcast,
    update_broadcast_stats,
)
from kitch.hls import HlsRegistry, LiveStream
from kitch.media import MediaPacket
from kitch.server import metrics
from kitch.server.stats import IngestStats

log = logging.getLogger("kitch.ingest")

#: Seconds of media silence after which a new publisher on the same key takes over.
TAKEOVER_SILENCE = 2.0
#: How often live keys are checked against the database, in seconds.
KEY_RECHECK_INTERVAL = 2.0
#: How often ingest statistics are written to the database, in seconds.
STATS_INTERVAL = 3.0

#: Muxer figures copied into the broadcast's stats (the dashboard shows them).
HLS_STATS = (
    "codecs",
    "gop_seconds",
    "gop_too_long",
    "target_duration",
    "part_target",
    "bytes_held",
    "repaired_dts",
    "dropped_packets",
)

BAD_NAME = "NetStream.Publish.BadName"
REJECTED = "NetStream.Publish.Rejected"


class Publisher(Protocol):
    """What the hub needs from a connection: a name for logs and a way to drop it."""

    peer: str

    def kick(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    description: str


@dataclass(eq=False)
class Broadcast:
    channel: str
    channel_id: int
    key: str
    broadcast_id: int
    stream: LiveStream
    publisher: Publisher | None
    last_media: float
    stats: IngestStats = field(default_factory=IngestStats)
    grace: asyncio.TimerHandle | None = None
    ended: bool = False


class IngestHub:
    def __init__(
        self,
        db: Database,
        registry: HlsRegistry,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.live: dict[str, Broadcast] = {}
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every(1.0, self._expire), name="hls-expire"),
            asyncio.create_task(self._every(KEY_RECHECK_INTERVAL, self._recheck_keys), name="keys"),
            asyncio.create_task(self._every(STATS_INTERVAL, self._write_stats), name="stats"),
        ]

    async def stop(self) -> None:
        """End every broadcast; publishes still being authorised are refused from now on."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        async with self._lock:
            for b in list(self.live.values()):
                if b.publisher is not None:
                    b.publisher.kick("server shutting down")
                await self._end(b, "server shutdown")

    async def _every(self, interval: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:  # a failing periodic job must not stop the others
                log.exception("periodic ingest job %s failed", getattr(job, "__name__", job))

    # -- publish lifecycle -----------------------------------------------------------------

    async def begin(self, key: str, conn: Publisher) -> Broadcast | Refusal:
        """Authorise ``key`` for ``conn``; start, resume or take over the channel's broadcast."""
        ref = await channel_for_stream_key(self.db, key)
        if ref is None:
            metrics.PUBLISH_REFUSED.labels("unknown_key").inc()
            return Refusal(BAD_NAME, "Unknown or disabled stream key")
        async with self._lock:
            if self._stopping:  # the lookup outlived stop(): nothing would end this broadcast
                metrics.PUBLISH_REFUSED.labels("shutting_down").inc()
                return Refusal(REJECTED, "The server is shutting down")
            now = self.clock()
            b = self.live.get(ref.username)
            if b is not None and b.publisher is not None:
                if now - b.last_media < TAKEOVER_SILENCE:
                    metrics.PUBLISH_REFUSED.labels("already_live").inc()
                    log.warning(
                        "refused second publisher %s on live channel %s", conn.peer, b.channel
                    )
                    return Refusal(REJECTED, "This stream key is already live")
                log.info(
                    "publisher %s takes over %s from silent %s",
                    conn.peer,
                    b.channel,
                    b.publisher.peer,
                )
                old, b.publisher = b.publisher, None
                old.kick("taken over by a new publisher")
            if b is not None:
                if b.grace is not None:
                    b.grace.cancel()
                    b.grace = None
                b.publisher, b.key, b.last_media = conn, key, now
                b.stats = IngestStats()
                b.stream.discontinuity(self.wall())
                log.info("publisher %s resumed broadcast on %s", conn.peer, b.channel)
                return b
            broadcast_id = await start_broadcast(self.db, ref.channel_id, {})
            stream = self.registry.open(ref.username, self.wall())
            b = Broadcast(
                channel=ref.username,
                channel_id=ref.channel_id,
                key=key,
                broadcast_id=broadcast_id,
                stream=stream,
                publisher=conn,
                last_media=now,
            )
            self.live[ref.username] = b
            metrics.LIVE_CHANNELS.set(len(self.live))
            log.info("channel %s is live (publisher %s)", ref.username, conn.peer)
            return b

    def feed(self, b: Broadcast, conn: Publisher, packet: MediaPacket) -> None:
        if b.publisher is not conn or b.ended:
            return
        b.last_media = self.clock()
        b.stats.on_packet(packet)
        b.stream.feed(packet, self.wall())

    def metadata(self, b: Broadcast, conn: Publisher, values: dict[str, Any]) -> None:
        if b.publisher is conn:
            b.stats.on_metadata(values)

    async def publisher_gone(self, b: Broadcast, conn: Publisher, reason: str) -> None:
        """The connection closed or stopped publishing: start the reconnect grace."""
        async with self._lock:
            if b.publisher is not conn or b.ended:
                return
            b.publisher = None
            grace = self.settings.reconnect_grace
            log.info("publisher %s left %s (%s); grace %.1f s", conn.peer, b.channel, reason, grace)
            if grace <= 0:
                await self._end(b, reason)
                return
            loop = asyncio.get_running_loop()
            b.grace = loop.call_later(grace, lambda: asyncio.ensure_future(self._grace_over(b)))

    async def _grace_over(self, b: Broadcast) -> None:
        async with self._lock:
            if b.publisher is None and not b.ended:
                await self._end(b, "publisher did not come back")

    async def _end(self, b: Broadcast, reason: str) -> None:
        if b.ended:
            return
        b.ended = True
        if b.grace is not None:
            b.grace.cancel()
        b.stream.end(self.wall())
        if self.live.get(b.channel) is b:
            del self.live[b.channel]
        metrics.LIVE_CHANNELS.set(len(self.live))
        try:
            await update_broadcast_stats(self.db, b.broadcast_id, self.stats_of(b))
            await end_broadcast(self.db, b.broadcast_id, reason)
        except Exception:
            log.exception("could not record the end of broadcast %s", b.broadcast_id)
        log.info("channel %s is offline (%s)", b.channel, reason)

    # -- periodic jobs ---------------------------------------------------------------------

    async def _expire(self) -> None:
        self.registry.expire(self.wall())

    async def _recheck_keys(self) -> None:
        for b in list(self.live.values()):
            if b.publisher is None or b.ended:
                continue
            key = b.key
            ref = await channel_for_stream_key(self.db, key)
            if ref is not None and ref.channel_id == b.channel_id:
                continue
            async with self._lock:
                # While the lookup ran, a publisher may have resumed or taken over the
                # broadcast with another (valid) key: only the checked key's publish goes.
                if b.ended or b.key != key:
                    continue
                if b.publisher is not None:
                    log.warning(
                        "stream key of %s was revoked; dropping %s", b.channel, b.publisher.peer
                    )
                    b.publisher.kick("stream key revoked")
                    b.publisher = None
                await self._end(b, "stream key revoked")

    async def _write_stats(self) -> None:
        for b in list(self.live.values()):
            if not b.ended:
                await update_broadcast_stats(self.db, b.broadcast_id, self.stats_of(b))

    @staticmethod
    def stats_of(b: Broadcast) -> dict[str, Any]:
        """Ingest figures, with the resolution from the real SPS once the muxer has seen it."""
        snapshot = b.stats.snapshot()
        hls = b.stream.stats
        if hls.get("width"):
            snapshot["width"], snapshot["height"] = hls["width"], hls["height"]
        snapshot["hls"] = {key: hls.get(key) for key in HLS_STATS}
        return snapshot
