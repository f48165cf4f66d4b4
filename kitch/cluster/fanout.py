"""Fan-out between Kitch nodes through Redis pub/sub (docs/CLUSTER.md, "Fan-out").

One :class:`Fanout` per node. What one node must show on every node's sockets (a chat room's
broadcasts, moderation, channel changes, notifications) is published once, on a topic; every
node, the sender's included, gets it back from Redis in the same order and fans it out to its
own sockets through its usual one-encode path. A topic's handler is called for each payload, on
the event loop.

While Redis is unreachable :meth:`Fanout.publish` answers False (the caller delivers locally),
the connection is retried with a backoff (``BACKOFF_MIN`` doubling to ``BACKOFF_MAX``), and the
up hooks run after each new subscription so the callers can make up for what pub/sub dropped
meanwhile (the chat reads the stored messages back from the database).

Viewer counts: every ``VIEWERS_EVERY`` seconds each node writes its own per-channel counts (and
the channels live on it) into one Redis hash (with an expiry time, ``VIEWERS_TTL`` seconds
ahead) and reads the others', so a node's count is its own plus the other live nodes'; a node
that dies stops refreshing its entry and its viewers are gone within ``VIEWERS_TTL`` seconds.

This module knows nothing of the HTTP layer: payloads are bytes, counts are dictionaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgpack
from prometheus_client import Counter, Gauge

if TYPE_CHECKING:  # redis itself is imported when a node starts its fan-out (80 ms)
    import redis.asyncio as aioredis

log = logging.getLogger("kitch.fanout")

PREFIX = "kitch:"
TOPICS = ("chat", "events")
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0
#: Payloads waiting for the publisher at most; past it the caller delivers locally.
MAX_QUEUE = 100_000
VIEWERS_EVERY = 2.0
VIEWERS_TTL = 6.0
#: Seconds a publish or a count exchange may take before Redis counts as lost.
COMMAND_TIMEOUT = 5.0
#: Seconds without a payload after which the subscriber pings Redis (two unanswered: lost).
PING_EVERY = 5.0
#: Nodes tell their message ids apart by a tag in their low bits (``TAG_BITS``).
TAG_BITS = 10

CONNECTED = Gauge("kitch_fanout_connected", "1 while this node is subscribed to Redis")
PUBLISHED = Counter("kitch_fanout_published_total", "Payloads published to Redis")
RECEIVED = Counter("kitch_fanout_received_total", "Payloads received from Redis")
LOCAL = Counter("kitch_fanout_local_total", "Payloads delivered to this node alone: Redis was away")
LOSSES = Counter("kitch_fanout_losses_total", "Times this node lost Redis")

Handler = Callable[[bytes], None]
UpHook = Callable[[], Awaitable[None]]
DownHook = Callable[[], None]


def _client(url: str, timeout: float | None = None) -> aioredis.Redis:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # No silent retries inside redis-py: a lost connection must surface here, since pub/sub
    # drops what is published while a subscriber is away and the callers have to resync.
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=2.0,
        socket_timeout=timeout,
        socket_keepalive=True,
    )
    return client


class Fanout:
    """A node's link to the others through Redis."""

    def __init__(self, url: str, node: str | None = None, prefix: str = PREFIX) -> None:
        self.url = url
        #: the URL as logged: without its user name and password
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        self.shown = parts._replace(netloc=f"***@{host}").geturl() if "@" in parts.netloc else url
        self.node = node or secrets.token_hex(6)
        self.prefix = prefix
        #: the low bits of this node's chat message ids (set from Redis at the first connect)
        self.tag = secrets.randbelow(1 << TAG_BITS)
        self._tagged = False
        self.connected = False
        self.handlers: dict[str, Handler] = {}
        self.up_hooks: list[UpHook] = []
        self.down_hooks: list[DownHook] = []
        #: counts of this node's viewers per channel, read every ``VIEWERS_EVERY`` s
        self.local_viewers: Callable[[], dict[str, int]] | None = None
        #: the other live nodes' viewers per channel, summed
        self.remote_viewers: dict[str, int] = {}
        #: this node's live channels (name -> what describes its broadcast), shared with the
        #: counts so that a node started later, or one whose peer died, learns which are live
        self.local_live: Callable[[], dict[str, Any]] | None = None
        #: the other live nodes' live channels, and when they were last read (monotonic; 0:
        #: never, or Redis was lost since)
        self.remote_live: dict[str, Any] = {}
        self.exchanged_at = 0.0
        #: this node's chat presence per channel (its own sockets), and the other nodes' (a
        #: list per channel, one entry per node)
        self.local_presence: Callable[[], dict[str, Any]] | None = None
        self.remote_presence: dict[str, list[Any]] = {}
        self.published = 0
        self.received = 0
        self.reconnects = 0
        self._queue: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._pub: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session: asyncio.Task[None] | None = None
        self._subscribed = False  # the current session reached its subscription
        #: what a failed Redis command raises (redis-py's errors, set by :meth:`start`)
        self._errors: tuple[type[BaseException], ...] = (OSError,)

    # -- wiring ------------------------------------------------------------------------------

    def on(self, topic: str, handler: Handler) -> None:
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}")
        self.handlers[topic] = handler

    def channel_name(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    async def start(self) -> None:
        if self._tasks:
            return
        from redis.exceptions import RedisError

        self._errors = (RedisError, OSError)
        self._pub = _client(self.url, COMMAND_TIMEOUT)
        self._tasks = [
            asyncio.create_task(self._subscribe_loop(), name="fanout-subscribe"),
            asyncio.create_task(self._publish_loop(), name="fanout-publish"),
            asyncio.create_task(self._viewers_loop(), name="fanout-viewers"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.connected = False
        CONNECTED.set(0)
        if self._pub is not None:  # this node's viewers leave the counts at once
            with contextlib.suppress(*self._errors):
                await asyncio.wait_for(self._pub.hdel(self._viewers_key, self.node), 1.0)
            with contextlib.suppress(*self._errors):
                await self._pub.aclose()
            self._pub = None

    # -- publishing --------------------------------------------------------------------------

    def publish(self, topic: str, data: bytes) -> bool:
        """Queue ``data`` for every node (this one included); False when Redis is away (the
        caller then delivers it to its own sockets)."""
        if not self.connected or len(self._queue) >= MAX_QUEUE:
            LOCAL.inc()
            return False
        self._queue.append((topic, data))
        self._wake.set()
        return True

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            assert self._pub is not None
            try:
                async with self._pub.pipeline(transaction=False) as pipe:
                    for topic, data in batch:
                        pipe.publish(self.channel_name(topic), data)
                    await pipe.execute()
                self.published += len(batch)
                PUBLISHED.inc(len(batch))
            except self._errors as exc:
                log.warning("fan-out: publishing %d payload(s) failed: %s", len(batch), exc)
                # what could not be published is delivered here; the others resync
                self._down()
                LOCAL.inc(len(batch))
                for topic, data in batch:
                    self._deliver(topic, data)
                if self._session is not None:
                    self._session.cancel()  # reconnect the subscriber too, then resync

    # -- subscribing -------------------------------------------------------------------------

    def _deliver(self, topic: str, data: bytes) -> None:
        handler = self.handlers.get(topic)
        if handler is None:
            return
        try:
            handler(data)
        except Exception:
            log.exception("fan-out: a %s payload failed", topic)

    def _down(self) -> None:
        if not self.connected:
            return
        self.connected = False
        CONNECTED.set(0)
        LOSSES.inc()
        self.remote_viewers = {}
        self.remote_presence = {}
        self.remote_live = {}
        self.exchanged_at = 0.0
        log.warning("fan-out: lost Redis at %s; delivering locally until it is back", self.shown)
        for hook in self.down_hooks:
            try:
                hook()
            except Exception:
                log.exception("fan-out: a down hook failed")

    async def _subscribe_loop(self) -> None:
        delay = BACKOFF_MIN
        while True:
            self._subscribed = False
            self._session = asyncio.create_task(self._listen(), name="fanout-listen")
            reason = "the publisher failed"
            try:
                await self._session
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    self._session.cancel()
                    raise
            except self._errors as exc:
                reason = str(exc) or type(exc).__name__
            except Exception:
                log.exception("fan-out: the subscriber failed")
                reason = "the subscriber failed"
            if self._subscribed:  # a loss after a good session: retry soon
                delay = BACKOFF_MIN
            self._down()
            log.warning(
                "fan-out: Redis at %s unreachable (%s); retrying in %.1f s",
                self.shown,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _listen(self) -> None:
        client = _client(self.url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(*(self.channel_name(t) for t in TOPICS))
            confirmed = 0
            while confirmed < len(TOPICS):
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    raise TimeoutError("no subscribe confirmation")
                if message["type"] == "subscribe":
                    confirmed += 1
            if not self._tagged:
                seq = await client.incr(f"{self.prefix}node-seq")
                self.tag = int(seq) % (1 << TAG_BITS)
                self._tagged = True
            else:
                self.reconnects += 1
            if self._pub is not None:  # its connections from before the loss are dead
                await self._pub.connection_pool.disconnect()
            self.connected = self._subscribed = True
            CONNECTED.set(1)
            log.info("fan-out: subscribed to Redis at %s as node %s", self.shown, self.node)
            for hook in self.up_hooks:
                try:
                    await hook()
                except Exception:
                    log.exception("fan-out: an up hook failed")
            names = {self.channel_name(t): t for t in TOPICS}
            quiet = 0  # pings unanswered: a connection cut without a reset (a partition)
            while True:
                message = await pubsub.get_message(timeout=PING_EVERY)
                if message is None:
                    quiet += 1
                    if quiet > 2:
                        raise TimeoutError("Redis stopped answering pings")
                    await pubsub.ping()
                    continue
                quiet = 0
                if message["type"] != "message":
                    if message["type"] == "subscribe":  # a silent reconnect: resubscribed
                        raise ConnectionError("the subscription was renewed")
                    continue
                topic = names.get(message["channel"].decode())
                if topic is not None:
                    self.received += 1
                    RECEIVED.inc()
                    self._deliver(topic, message["data"])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await client.aclose()

    # -- viewer counts -----------------------------------------------------------------------

    @property
    def _viewers_key(self) -> str:
        return f"{self.prefix}viewers"

    async def _viewers_loop(self) -> None:
        while True:
            await asyncio.sleep(VIEWERS_EVERY)
            if not self.connected or self._pub is None:
                continue
            try:
                await self.exchange_viewers()
            except self._errors as exc:
                log.warning("fan-out: viewer counts not exchanged: %s", exc)
                self.remote_viewers = {}
                self.remote_presence = {}
                self.remote_live = {}
                self.exchanged_at = 0.0

    async def exchange_viewers(self) -> None:
        """Write this node's counts, read the other live nodes' (dropping expired entries)."""
        assert self._pub is not None
        local = self.local_viewers() if self.local_viewers is not None else {}
        live = self.local_live() if self.local_live is not None else {}
        presence = self.local_presence() if self.local_presence is not None else {}
        now = time.time()
        entry = msgpack.packb(
            {"until": now + VIEWERS_TTL, "counts": local, "live": live, "presence": presence}
        )
        async with self._pub.pipeline(transaction=False) as pipe:
            pipe.hset(self._viewers_key, self.node, entry)
            pipe.hgetall(self._viewers_key)
            _, found = await pipe.execute()
        totals: dict[str, int] = {}
        lives: dict[str, Any] = {}
        presences: dict[str, list[Any]] = {}
        stale: list[Any] = []
        for node, raw in found.items():
            if node.decode() == self.node:
                continue
            try:
                other = msgpack.unpackb(raw, raw=False)
                until, counts = float(other["until"]), dict(other["counts"])
                other_live = dict(other.get("live") or {})
                other_presence = dict(other.get("presence") or {})
            except (ValueError, TypeError, KeyError, msgpack.UnpackException):
                stale.append(node)
                continue
            if until < now:
                stale.append(node)
                continue
            for channel, count in counts.items():
                if isinstance(channel, str) and isinstance(count, int) and count > 0:
                    totals[channel] = totals.get(channel, 0) + count
            lives.update(other_live)
            for channel, seen in other_presence.items():
                presences.setdefault(channel, []).append(seen)
        if stale:
            await self._pub.hdel(self._viewers_key, *stale)
        self.remote_viewers = totals
        self.remote_live = lives
        self.remote_presence = presences
        self.exchanged_at = time.monotonic()
