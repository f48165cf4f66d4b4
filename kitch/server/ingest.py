"""Asyncio glue of the ingest hub (:mod:`kitch.ingest.hub`): the clocks, one timer, the database.

The hub decides; this file looks stream keys up, records broadcasts, runs the hub's timer (one
task that sleeps until :meth:`Hub.next_deadline` or until a change wakes it) and carries out the
actions the hub queues. Calls that await the database hold one lock, so a publish, a departure,
a key re-check and the shutdown never interleave halfway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any, Protocol

from kitch.config import Settings
from kitch.db import Database
from kitch.db.follows import Notification, notify_live
from kitch.db.queries import (
    channel_for_stream_key,
    end_broadcast,
    get_channel,
    start_broadcast,
    update_broadcast_stats,
)
from kitch.db.schedule import link_broadcast
from kitch.hls import HlsRegistry, Resume
from kitch.ingest.hub import (
    ALREADY_LIVE,
    UNKNOWN_KEY,
    Broadcast,
    Hub,
    Publisher,
    RecheckKeys,
    RecordEnd,
    Refusal,
    WriteStats,
)
from kitch.ingest.sinks import SinkFactory
from kitch.media import MediaPacket
from kitch.schedule.rules import LINK_AFTER, LINK_BEFORE
from kitch.server import metrics

log = logging.getLogger("kitch.ingest")

__all__ = ["IngestHub", "Leases", "LiveListener"]


class LiveListener(Protocol):
    """Told when a channel goes live with a new broadcast (not a resume within the grace, not
    a takeover) and when a broadcast ends; both calls must not block."""

    def went_live(
        self,
        name: str,
        broadcast_id: int,
        title: str,
        category: str,
        notifications: Iterable[Notification],
    ) -> None: ...

    def went_offline(self, name: str, broadcast_id: int) -> None: ...


class Leases(Protocol):
    """Where a channel's lease is taken and given up when several nodes share the database
    (:class:`~kitch.cluster.nodes.ClusterNode`): a channel is live on one node at a time."""

    async def acquire(self, channel_id: int, channel: str) -> str | None:
        """Take the channel's lease: None when this node holds it now, else the holder's id."""
        ...

    def resume(self, channel: str) -> tuple[int, int] | None:
        """Just taken from another node: the (media sequence, discontinuity sequence) the new
        broadcast numbers its playlists from, so players following the channel read on."""
        ...

    async def idle(self, channel: str) -> None:
        """The channel's publisher is gone (reconnect grace): another node may take it."""
        ...

    async def release(self, channel: str) -> None: ...


def _held_elsewhere(conn: Publisher, channel: str, holder: str) -> Refusal:
    """The refusal of a publish while another node holds the channel (as a second publisher)."""
    log.warning(
        "refused second publisher %s on live channel %s (live on node %s)",
        conn.peer,
        channel,
        holder,
    )
    return ALREADY_LIVE


class IngestHub:
    """The hub on the event loop. ``sinks``: the outputs every broadcast feeds after the
    passthrough HLS sink (see :mod:`kitch.ingest.sinks`). ``listener`` hears of go-lives (after
    each follower's notification is stored, off the publish path) and of ends. ``leases``:
    a new broadcast first takes the channel's lease (refused as a second publisher while
    another node holds it); an ended one gives it up."""

    def __init__(
        self,
        db: Database,
        registry: HlsRegistry,
        settings: Settings,
        *,
        sinks: Sequence[SinkFactory] = (),
        listener: LiveListener | None = None,
        leases: Leases | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.listener = listener
        self.leases = leases
        self.core = Hub(
            registry, sinks=sinks, reconnect_grace=settings.reconnect_grace, now=clock()
        )
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> dict[str, Broadcast]:
        return self.core.live

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._timer = asyncio.create_task(self._run(), name="ingest-timer")
        metrics.STREAM_HEALTH.add(self.health_all)

    async def stop(self) -> None:
        """End every broadcast; publishes still being authorised are refused from now on."""
        # Refuse from the first moment: a publish whose key lookup ends while the timer below is
        # being stopped would otherwise take the lock first and open a broadcast only to have
        # it ended at once (and be told it is live).
        self.core.stopping = True
        metrics.STREAM_HEALTH.discard(self.health_all)
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None
        async with self._lock:
            self.core.stop(self.wall())
            await self._carry_out()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = max(0.0, self.core.next_deadline() - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            try:
                async with self._lock:
                    self.core.poll(self.clock(), self.wall())
                    later = await self._carry_out()
                for action in later:
                    if isinstance(action, RecheckKeys):
                        await self.recheck_keys(action.keys)
                    else:
                        await self._write_stats(action)
            except Exception:  # a failing job must not stop the timer
                log.exception("ingest timer job failed")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- publish lifecycle -----------------------------------------------------------------

    async def begin(self, key: str, conn: Publisher) -> Broadcast | Refusal:
        """Authorise ``key`` for ``conn``; start, resume or take over the channel's broadcast."""
        ref = await channel_for_stream_key(self.db, key)
        if ref is None:
            metrics.PUBLISH_REFUSED.labels(UNKNOWN_KEY.reason).inc()
            return UNKNOWN_KEY
        async with self._lock:
            await self._carry_out()
            result: Broadcast | Refusal | None = None
            waiting = self.core.live.get(ref.username)
            if waiting is not None and waiting.publisher is None and self.leases is not None:
                # a resume within the grace: the lease is this node's again, unless another
                # node took the channel meanwhile (then this broadcast ends and the publish is
                # refused, as any publish of a channel live elsewhere)
                holder = await self.leases.acquire(ref.channel_id, ref.username)
                if holder is not None:
                    self.core.lost(ref.username, "taken by another node", self.wall())
                    await self._carry_out()
                    result = _held_elsewhere(conn, ref.username, holder)
            if result is None:
                result = self.core.claim(ref.username, key, conn, self.clock(), self.wall())
                if result is None and self.leases is not None:
                    holder = await self.leases.acquire(ref.channel_id, ref.username)
                    if holder is not None:
                        result = _held_elsewhere(conn, ref.username, holder)
            if result is None:
                try:
                    broadcast_id = await start_broadcast(self.db, ref.channel_id, {})
                except BaseException:
                    await self._release(ref.username)
                    raise
                resumed = None if self.leases is None else self.leases.resume(ref.username)
                result = self.core.open(
                    ref.username,
                    ref.channel_id,
                    broadcast_id,
                    key,
                    conn,
                    self.clock(),
                    self.wall(),
                    None if resumed is None else Resume(*resumed),
                )
                self._spawn(self._announce(ref.username, ref.channel_id, broadcast_id))
            elif isinstance(result, Refusal):
                metrics.PUBLISH_REFUSED.labels(result.reason).inc()
            metrics.LIVE_CHANNELS.set(len(self.core.live))
            self._wake.set()
            return result

    def feed(self, b: Broadcast, conn: Publisher, packet: MediaPacket) -> Refusal | None:
        """Fan one packet out; a refusal (an output cannot carry the codec) is for the encoder,
        and the broadcast has ended."""
        refusal = self.core.feed(b, conn, packet, self.clock(), self.wall())
        if refusal is not None:
            metrics.PUBLISH_REFUSED.labels(refusal.reason).inc()
            self._spawn(self._settle())
        return refusal

    def lane(self, b: Broadcast, conn: Publisher) -> Callable[[MediaPacket], bool] | None:
        """The native path of ``conn``'s common frames into ``b`` (see :meth:`Hub.lane`)."""
        return self.core.lane(b, conn, self.clock, self.wall)

    def metadata(self, b: Broadcast, conn: Publisher, values: dict[str, Any]) -> None:
        self.core.metadata(b, conn, values)

    async def publisher_gone(self, b: Broadcast, conn: Publisher, reason: str) -> None:
        """The connection closed without unpublishing: start the reconnect grace."""
        async with self._lock:
            self.core.dropped(b, conn, reason, self.clock(), self.wall())
            await self._carry_out()
            self._wake.set()
            if self.leases is not None and self.core.live.get(b.channel) is b and not b.publisher:
                try:  # the grace runs here, but the publisher may come back on another node
                    await self.leases.idle(b.channel)
                except Exception:
                    log.exception("could not mark the lease of %s idle", b.channel)

    async def unpublished(self, b: Broadcast, conn: Publisher) -> None:
        """The streamer stopped on purpose: end the broadcast now."""
        async with self._lock:
            self.core.unpublished(b, conn, self.wall())
            await self._carry_out()

    async def _settle(self) -> None:
        async with self._lock:
            await self._carry_out()

    async def _announce(self, name: str, channel_id: int, broadcast_id: int) -> None:
        """A new broadcast: link it to the scheduled stream it fulfils (one starting within
        the link window of the broadcast's start, see docs/SCHEDULE.md), store one notification
        per follower (exactly once: the table's UNIQUE (user, kind, broadcast)), then tell the
        listener. Runs as a task, so a channel with many followers never holds up its publish."""
        try:
            await link_broadcast(
                self.db,
                channel_id,
                broadcast_id,
                before=LINK_BEFORE.total_seconds(),
                after=LINK_AFTER.total_seconds(),
            )
        except Exception:
            log.exception("could not link broadcast %s to its scheduled stream", broadcast_id)
        title = category = ""
        notes: list[Notification] = []
        try:
            channel = await get_channel(self.db, name)
            title = channel.title if channel is not None else ""
            category = channel.category if channel is not None else ""
            notes = await notify_live(
                self.db, channel_id, broadcast_id, {"title": title, "category": category}
            )
        except Exception:  # the channel still goes live for everyone watching
            log.exception("could not notify the followers of %s", name)
        b = self.core.live.get(name)
        if self.listener is not None and b is not None and b.broadcast_id == broadcast_id:
            self.listener.went_live(name, broadcast_id, title, category, notes)

    # -- the hub's actions -----------------------------------------------------------------

    async def _carry_out(self) -> list[RecheckKeys | WriteStats]:
        """Record the broadcasts the hub ended; return the jobs that run outside the lock."""
        later: list[RecheckKeys | WriteStats] = []
        ended = False
        while (action := self.core.next_action()) is not None:
            if isinstance(action, RecordEnd):
                ended = True
                if self.listener is not None:
                    self.listener.went_offline(action.channel, action.broadcast_id)
                try:
                    await update_broadcast_stats(self.db, action.broadcast_id, action.stats)
                    await end_broadcast(self.db, action.broadcast_id, action.reason)
                except Exception:
                    log.exception("could not record the end of broadcast %s", action.broadcast_id)
                if action.channel not in self.core.live:
                    await self._release(action.channel)
            else:
                later.append(action)
        if ended:
            metrics.LIVE_CHANNELS.set(len(self.core.live))
        return later

    async def _release(self, channel: str) -> None:
        if self.leases is not None:
            try:
                await self.leases.release(channel)
            except Exception:  # it expires on its own within the lease period
                log.exception("could not release the lease of %s", channel)

    async def lease_lost(self, channel: str) -> None:
        """Another node took the channel's lease (this node was stalled past it): drop the
        publisher and end the broadcast here."""
        async with self._lock:
            self.core.lost(channel, "taken by another node", self.wall())
            await self._carry_out()

    async def recheck_keys(self, keys: Sequence[tuple[str, str]] | None = None) -> None:
        """Look the live keys up (all those publishing, by default); a key that no longer
        resolves to its channel drops its publisher and ends the broadcast."""
        if keys is None:
            keys = [(b.channel, b.key) for b in self.core.live.values() if b.publisher]
        for channel, key in keys:
            ref = await channel_for_stream_key(self.db, key)
            b = self.core.live.get(channel)
            if b is None or (ref is not None and ref.channel_id == b.channel_id):
                continue
            async with self._lock:
                self.core.revoked(channel, key, self.wall())
                await self._carry_out()

    async def _write_stats(self, job: WriteStats) -> None:
        live = {b.broadcast_id for b in self.core.live.values()}
        for broadcast_id, stats in job.rows:
            if broadcast_id in live:
                await update_broadcast_stats(self.db, broadcast_id, stats)

    # -- health ----------------------------------------------------------------------------

    def health(self, channel: str) -> dict[str, Any] | None:
        """The channel's stream health (None when it is not live); see docs/ARCHITECTURE.md."""
        return self.core.health(channel)

    def health_all(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(channel, health) of every live broadcast, for /metrics."""
        for channel in list(self.core.live):
            h = self.core.health(channel)
            if h is not None:
                yield channel, h
