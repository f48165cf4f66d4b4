"""The per-channel hub, sans-IO: publish decisions, the live-session rules, fan-out to sinks.

It enforces the live-session rules of docs/ARCHITECTURE.md:

* a publisher that drops and comes back within ``reconnect_grace`` continues the same broadcast
  (same database session, no offline flip, HLS continues after a discontinuity);
* a publisher that stops on purpose (FCUnpublish / deleteStream) ends the broadcast at once;
* a second publisher on a live key is refused while the first one sends media; once the first
  has been silent for ``TAKEOVER_SILENCE`` seconds the newcomer takes over;
* a key that stops resolving (rotated, or ingest disabled) disconnects its publisher and ends
  the broadcast (the glue looks the keys up every ``KEY_RECHECK_INTERVAL`` seconds).

No I/O here (h11 style): the monotonic clock ``now`` (for the rules) and the wall clock
``wall`` (for the outputs) are arguments, timers are data (:meth:`Hub.next_deadline`, then
:meth:`Hub.poll`), and what needs the database comes out as actions (:meth:`Hub.next_action`)
that the asyncio glue (``kitch/server/ingest.py``) carries out: record a broadcast's end, look
the live keys up, write the stats. The glue serialises the calls that await the database.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kitch.hls import HlsRegistry, LiveStream, Resume
from kitch.hls.segmenter import frame_steps
from kitch.ingest.passthrough import PassthroughSink
from kitch.ingest.sinks import BroadcastInfo, Sink, SinkFactory, merge_health
from kitch.ingest.stats import IngestStats
from kitch.media import MediaPacket
from kitch.twins import ingest as _ingest

log = logging.getLogger("kitch.ingest")

#: Seconds of media silence after which a new publisher on the same key takes over.
TAKEOVER_SILENCE = 2.0
#: How often live keys are checked against the database, in seconds.
KEY_RECHECK_INTERVAL = 2.0
#: How often ingest statistics are written to the database, in seconds.
STATS_INTERVAL = 3.0
#: How often departed segments and ended streams are dropped from memory, in seconds.
EXPIRE_INTERVAL = 1.0

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
    """A publish refused: the onStatus ``code`` and ``description`` the encoder gets, and the
    ``reason`` it is counted under (``kitch_rtmp_publish_refused_total``)."""

    code: str
    description: str
    reason: str


UNKNOWN_KEY = Refusal(BAD_NAME, "Unknown or disabled stream key", "unknown_key")
SHUTTING_DOWN = Refusal(REJECTED, "The server is shutting down", "shutting_down")
ALREADY_LIVE = Refusal(REJECTED, "This stream key is already live", "already_live")


# -- actions: what the glue does for the hub ------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordEnd:
    """Write the broadcast's last stats and close its session (the channel goes offline)."""

    broadcast_id: int
    channel: str
    reason: str
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecheckKeys:
    """Look these (channel, key) pairs up; call :meth:`Hub.revoked` for each that no longer
    resolves to its channel."""

    keys: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WriteStats:
    """Store these (broadcast id, stats) rows."""

    rows: tuple[tuple[int, dict[str, Any]], ...]


Action = RecordEnd | RecheckKeys | WriteStats


@dataclass(eq=False)
class Broadcast:
    channel: str
    channel_id: int
    key: str
    broadcast_id: int
    stream: LiveStream
    publisher: Publisher | None
    #: Monotonic time of the last media packet (or of the publish that started or resumed it).
    last_media: float
    #: Wall clock of the start.
    since: float
    sinks: list[Sink] = field(default_factory=list)
    stats: IngestStats = field(default_factory=IngestStats)
    #: Monotonic deadline of the reconnect grace while the publisher is gone.
    grace_until: float | None = None
    ended: bool = False


class Hub:
    """Every live broadcast, by channel; ``sinks`` are the factories of the outputs each
    broadcast feeds after the passthrough HLS sink (which is always first)."""

    def __init__(
        self,
        registry: HlsRegistry,
        *,
        sinks: Sequence[SinkFactory] = (),
        reconnect_grace: float = 10.0,
        now: float,
    ) -> None:
        self.registry = registry
        self.factories: tuple[SinkFactory, ...] = (PassthroughSink, *sinks)
        self.reconnect_grace = reconnect_grace
        self.live: dict[str, Broadcast] = {}
        self.stopping = False
        self._actions: deque[Action] = deque()
        self._next_expire = now + EXPIRE_INTERVAL
        self._next_recheck = now + KEY_RECHECK_INTERVAL
        self._next_stats = now + STATS_INTERVAL

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    # -- publish lifecycle -----------------------------------------------------------------

    def claim(
        self, channel: str, key: str, conn: Publisher, now: float, wall: float
    ) -> Broadcast | Refusal | None:
        """Decide on a publish whose ``key`` resolved to ``channel``: a refusal, the live
        broadcast it resumes or takes over, or None: nothing is live there, so the caller
        records a new broadcast and calls :meth:`open`."""
        if self.stopping:
            return SHUTTING_DOWN
        b = self.live.get(channel)
        if b is None:
            return None
        if b.publisher is not None:
            if now - b.last_media < TAKEOVER_SILENCE:
                log.warning("refused second publisher %s on live channel %s", conn.peer, channel)
                return ALREADY_LIVE
            log.info(
                "publisher %s takes over %s from silent %s", conn.peer, channel, b.publisher.peer
            )
            old, b.publisher = b.publisher, None
            old.kick("taken over by a new publisher")
        b.grace_until = None
        b.publisher, b.key, b.last_media = conn, key, now
        b.stats = IngestStats()
        for sink in list(b.sinks):
            try:
                sink.discontinuity(wall)
            except Exception:
                self._sink_failed(b, sink, "discontinuity", wall)
        log.info("publisher %s resumed broadcast on %s", conn.peer, channel)
        return b

    def open(
        self,
        channel: str,
        channel_id: int,
        broadcast_id: int,
        key: str,
        conn: Publisher,
        now: float,
        wall: float,
        resume: Resume | None = None,
    ) -> Broadcast:
        """Start broadcast ``broadcast_id`` (recorded by the caller) on ``channel``; its playlists
        number on from ``resume`` (a channel taken over from another node)."""
        stream = self.registry.open(channel, wall, resume)
        info = BroadcastInfo(channel, channel_id, broadcast_id, stream)
        sinks: list[Sink] = []
        for factory in self.factories:
            try:
                sink = factory(info)
            except Exception:
                log.exception("output %r failed to start for %s", factory, channel)
                continue
            if sink is not None:
                sinks.append(sink)
        b = Broadcast(channel, channel_id, key, broadcast_id, stream, conn, now, wall, sinks)
        self.live[channel] = b
        log.info("channel %s is live (publisher %s)", channel, conn.peer)
        return b

    def feed(
        self, b: Broadcast, conn: Publisher, packet: MediaPacket, now: float, wall: float
    ) -> Refusal | None:
        """Fan ``packet`` out to the broadcast's sinks. A config packet a sink refuses is fed
        to none: the answer is the refusal for the encoder, and the broadcast has ended."""
        if b.publisher is not conn or b.ended:
            return None
        if packet.is_config:
            for sink in b.sinks:
                reason = sink.refuse(packet)
                if reason is not None:
                    log.warning("%s output refuses %s: %s", sink.name, b.channel, reason)
                    b.publisher = None
                    self._end(b, f"publish refused: {reason}", wall)
                    return Refusal(REJECTED, reason, "codec")
        b.last_media = now
        b.stats.on_packet(packet)
        for sink in b.sinks:
            try:
                sink.packet(packet, wall)
            except Exception:
                self._sink_failed(b, sink, "packet", wall)
        return None

    def lane(
        self, b: Broadcast, conn: Publisher, clock: Callable[[], float], wall: Callable[[], float]
    ) -> _ingest.FrameLane | None:
        """The native path of ``conn``'s common frames into ``b``'s passthrough muxer (what
        :meth:`feed` does with them; see :mod:`kitch._ingest`), or None when ``b`` does not
        start with a passthrough sink. It checks at every frame that ``conn`` still publishes
        ``b`` and that no other sink wants the frame; otherwise the frame comes to :meth:`feed`."""
        sink = b.sinks[0] if b.sinks else None
        if not isinstance(sink, PassthroughSink):
            return None
        return _ingest.FrameLane(b, conn, sink, clock, wall, self._sink_failed, frame_steps())

    def metadata(self, b: Broadcast, conn: Publisher, values: dict[str, Any]) -> None:
        if b.publisher is conn:
            b.stats.on_metadata(values)

    def dropped(self, b: Broadcast, conn: Publisher, reason: str, now: float, wall: float) -> None:
        """The connection closed without unpublishing: the reconnect grace starts."""
        if b.publisher is not conn or b.ended:
            return
        b.publisher = None
        grace = self.reconnect_grace
        log.info("publisher %s left %s (%s); grace %.1f s", conn.peer, b.channel, reason, grace)
        if grace <= 0:
            self._end(b, reason, wall)
        else:
            b.grace_until = now + grace

    def unpublished(self, b: Broadcast, conn: Publisher, wall: float) -> None:
        """The streamer stopped on purpose (FCUnpublish / deleteStream): the broadcast ends."""
        if b.publisher is not conn or b.ended:
            return
        b.publisher = None
        log.info("publisher %s stopped publishing %s", conn.peer, b.channel)
        self._end(b, "unpublished", wall)

    def revoked(self, channel: str, key: str, wall: float) -> None:
        """``key`` no longer resolves to ``channel``: if the broadcast still publishes with it
        (not resumed or taken over with another key meanwhile), drop the publisher and end."""
        b = self.live.get(channel)
        if b is None or b.key != key:
            return
        if b.publisher is not None:
            log.warning("stream key of %s was revoked; dropping %s", channel, b.publisher.peer)
            b.publisher.kick("stream key revoked")
            b.publisher = None
        self._end(b, "stream key revoked", wall)

    def lost(self, channel: str, reason: str, wall: float) -> None:
        """The channel is no longer this server's (another node holds it now): drop the
        publisher and end the broadcast, whatever its state."""
        b = self.live.get(channel)
        if b is None:
            return
        if b.publisher is not None:
            log.warning("%s: %s; dropping %s", channel, reason, b.publisher.peer)
            b.publisher.kick(reason)
            b.publisher = None
        self._end(b, reason, wall)

    def stop(self, wall: float) -> None:
        """End every broadcast; publishes claimed from now on are refused."""
        self.stopping = True
        for b in list(self.live.values()):
            if b.publisher is not None:
                b.publisher.kick("server shutting down")
                b.publisher = None
            self._end(b, "server shutdown", wall)

    def _end(self, b: Broadcast, reason: str, wall: float) -> None:
        if b.ended:
            return
        b.ended = True
        b.grace_until = None
        for sink in reversed(b.sinks):
            try:
                sink.end(wall)
            except Exception:
                log.exception("%s output failed to end on %s", sink.name, b.channel)
        if self.live.get(b.channel) is b:
            del self.live[b.channel]
        self._actions.append(RecordEnd(b.broadcast_id, b.channel, reason, self.stats_of(b)))
        log.info("channel %s is offline (%s)", b.channel, reason)

    def _sink_failed(self, b: Broadcast, sink: Sink, what: str, wall: float) -> None:
        log.exception("%s output failed (%s) on %s; it is dropped", sink.name, what, b.channel)
        b.sinks = [s for s in b.sinks if s is not sink]
        try:
            sink.end(wall)
        except Exception:
            log.exception("%s output failed to end on %s", sink.name, b.channel)

    # -- timers ----------------------------------------------------------------------------

    def next_deadline(self) -> float:
        """When :meth:`poll` has something to do next (monotonic)."""
        graces = [b.grace_until for b in self.live.values() if b.grace_until is not None]
        return min(self._next_expire, self._next_recheck, self._next_stats, *graces)

    def poll(self, now: float, wall: float) -> None:
        """Do what is due at ``now``: end broadcasts whose grace ran out, expire old media,
        queue the key re-check and the stats write."""
        for b in list(self.live.values()):
            if b.grace_until is not None and now >= b.grace_until and b.publisher is None:
                self._end(b, "publisher did not come back", wall)
        if now >= self._next_expire:
            self._next_expire = now + EXPIRE_INTERVAL
            self.registry.expire(wall)
        if now >= self._next_recheck:
            self._next_recheck = now + KEY_RECHECK_INTERVAL
            keys = tuple((b.channel, b.key) for b in self.live.values() if b.publisher is not None)
            if keys:
                self._actions.append(RecheckKeys(keys))
        if now >= self._next_stats:
            self._next_stats = now + STATS_INTERVAL
            rows = tuple((b.broadcast_id, self.stats_of(b)) for b in self.live.values())
            if rows:
                self._actions.append(WriteStats(rows))

    # -- figures ---------------------------------------------------------------------------

    @staticmethod
    def stats_of(b: Broadcast) -> dict[str, Any]:
        """Ingest figures, with the resolution from the real SPS once the muxer has seen it."""
        snapshot = b.stats.snapshot()
        hls = b.stream.stats
        if hls.get("width"):
            snapshot["width"], snapshot["height"] = hls["width"], hls["height"]
        snapshot["hls"] = {key: hls.get(key) for key in HLS_STATS}
        return snapshot

    def health(self, channel: str) -> dict[str, Any] | None:
        """The live broadcast's health (see docs/ARCHITECTURE.md), or None when not live."""
        b = self.live.get(channel)
        if b is None:
            return None
        s = b.stats
        stream = b.stream.stats
        if stream["width"]:  # from the SPS, once the muxer has read it
            width, height = stream["width"], stream["height"]
        else:
            width, height = s.width, s.height
        parts = []
        for sink in list(b.sinks):
            try:
                parts.append(sink.health())
            except Exception:
                log.exception("%s output failed to report its health on %s", sink.name, channel)
        return {
            "live": True,
            "since": datetime.fromtimestamp(b.since, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "ingest": {
                "bitrate_kbps": s.bitrate_kbps,
                "fps": s.fps,
                "keyframe_interval": s.keyframe_interval_s,
                "av_drift_ms": s.av_drift_ms,
                "width": width,
                "height": height,
                "video_codec": s.video_codec,
                "audio_codec": s.audio_codec,
            },
            **merge_health(parts),
        }
