"""The facade the server calls: one :class:`LiveStream` per live channel, each with renditions.

Sans-IO: no asyncio here; wall-clock ``now`` is passed in. Listeners registered with
:meth:`HlsRegistry.add_listener` are called with the channel name after every change a
playlist reader could wait for (a new part, segment, init, end, removal); a listener that
raises is logged and does not disturb the feed.

Threading: feed, end and expire from the thread that serves HTTP (the event loop); a
transcoder working in another thread hands its packets over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from kitch.hls.events import Event, InitReady, PartReady, SegmentEnded
from kitch.hls.follower import Follower, PartPlan, Plan
from kitch.hls.playlist import (
    TS_VERSION,
    VERSION,
    RenditionReport,
    VariantInfo,
    master_playlist,
    media_playlist,
)
from kitch.hls.segmenter import VIDEO_TIMESCALE, Segmenter
from kitch.hls.settings import HlsSettings
from kitch.hls.store import RenditionStore, Resume
from kitch.media import MediaPacket
from kitch.twins import mux as _mux

SOURCE = "source"
log = logging.getLogger(__name__)
Listener = Callable[[str], None]


class Tap(Protocol):
    """Sees every change of a registry's state, in order, as it is made (the HLS worker
    processes' mirror is fed from one: see :mod:`kitch.hls.mirror`)."""

    def opened(self, stream: LiveStream) -> None: ...
    def rendition_added(self, rendition: Rendition, rung: bool) -> None: ...
    def applied(self, rendition: Rendition, event: Event, now: float) -> None: ...
    def settled(self, rendition: Rendition, now: float) -> None: ...
    def rendition_ended(self, rendition: Rendition, now: float) -> None: ...
    def stream_ended(self, stream: LiveStream, now: float) -> None: ...
    def expired(self, now: float) -> None: ...


class Rendition:
    """One output rendition: a segmenter feeding a store. The source rendition decides where
    every rendition cuts: its parts and segment ends go, as plans, to the rung renditions."""

    def __init__(self, stream: LiveStream, name: str, leader: Segmenter | None = None) -> None:
        self.stream = stream
        self.name = name
        self.segmenter: Segmenter | Follower = (
            Segmenter(stream.settings) if leader is None else Follower(leader)
        )
        self.store = RenditionStore(name, stream.broadcast_id, stream.settings, stream.resume)
        self.config_errors = 0

    def feed(self, packet: MediaPacket, now: float) -> None:
        """Take one packet (config packets included) received at wall-clock ``now``."""
        if self.store.ended:
            return
        try:
            events = self.segmenter.feed(packet, now)
        except _mux.MuxError:
            self.config_errors += 1
            return
        self._apply(events, now)

    def part_filled(self, now: float) -> None:
        """A frame fed natively (``kitch._ingest.FrameLane``) filled the part in progress."""
        assert isinstance(self.segmenter, Segmenter)
        try:
            events = self.segmenter.close_part()
        except _mux.MuxError:
            self.config_errors += 1
            return
        self._apply(events, now)

    def plan(self, plans: list[Plan], now: float) -> None:
        """The source's cuts, for a rung rendition."""
        assert isinstance(self.segmenter, Follower)
        if not self.store.ended:
            for p in plans:
                self._apply(self.segmenter.plan(p), now)

    def discontinuity(self, now: float) -> None:
        self._apply(self.segmenter.discontinuity(), now)

    def end(self, now: float) -> None:
        self._apply(self.segmenter.end(), now)
        self.store.end(now)
        tap = self.stream.registry.tap
        if tap is not None:
            tap.rendition_ended(self, now)
        self.stream.changed()

    def _apply(self, events: list[Any], now: float) -> None:
        if not events:
            return
        plans: list[Plan] = []
        tap = self.stream.registry.tap
        for ev in events:
            self.store.apply(ev, now)
            if tap is not None:
                tap.applied(self, ev, now)
            if isinstance(ev, PartReady) and self.stream.rungs:
                start = round(ev.media_time * VIDEO_TIMESCALE)
                seg = self.store.segments[-1]
                plans.append(
                    PartPlan(
                        seg.msn,
                        self.store.next_part_number - 1,
                        start,
                        start + round(ev.duration * VIDEO_TIMESCALE),
                        ev.first_in_segment,
                        ev.discontinuity,
                        ev.independent,
                        seg.program_date_time if ev.first_in_segment else None,
                    )
                )
            elif isinstance(ev, SegmentEnded) and self.stream.rungs:
                plans.append(ev)
        if plans and self.name == SOURCE:
            for rung in self.stream.rungs.values():
                rung.plan(plans, now)
        self.store.part_target = self.segmenter.part_target
        td = self.segmenter.target_duration
        if td is not None and (self.store.target_duration or 0) < td:
            self.store.target_duration = td
        if tap is not None:
            tap.settled(self, now)
        self.stream.enforce_memory(now)
        self.stream.changed()

    @property
    def frame_rate(self) -> float:
        """Frames per second the segmenter measured (0 before it knows)."""
        return self.segmenter.frame_rate

    @property
    def init(self) -> InitReady | None:
        inits = self.store.inits
        return inits[max(inits)] if inits else None

    def variant(self) -> VariantInfo | None:
        init = self.init
        if init is None or not self.store.ready:
            return None
        peak, avg = self.store.bitrate()
        return VariantInfo(
            f"{self.name}/index.m3u8",
            peak,
            avg,
            init.width,
            init.height,
            self.frame_rate if init.has_video else 0.0,
            init.codecs,
        )


class LiveStream:
    """One broadcast on one channel. ``feed`` goes to the ``source`` rendition."""

    def __init__(
        self,
        registry: HlsRegistry,
        channel: str,
        broadcast_id: str,
        now: float,
        resume: Resume | None = None,
    ) -> None:
        self.registry = registry
        self.resume = resume
        self.settings = registry.settings
        self.channel = channel
        self.broadcast_id = broadcast_id
        self.started_at = now
        self.ended_at: float | None = None
        self.first_frame_at: float | None = None
        self.renditions: dict[str, Rendition] = {}
        self.rungs: dict[str, Rendition] = {}  # renditions cut where the source cuts
        self.bytes_in = 0
        self.version = 0  # bumped on every change: playlists rendered for a version stay valid
        self.rendition(SOURCE)

    # ---- writing --------------------------------------------------------------------------

    def rendition(self, name: str) -> Rendition:
        """The rendition called ``name``, created on first use (``source`` always exists)."""
        r = self.renditions.get(name)
        if r is None:
            r = self.renditions[name] = Rendition(self, name)
            if self.registry.tap is not None and name != SOURCE:
                self.registry.tap.rendition_added(r, False)
        return r

    def add_rung(self, name: str) -> Rendition:
        """A rendition fed by the ladder and cut along the source's plans (fMP4 only)."""
        r = self.renditions.get(name)
        if r is None:
            source = self.renditions[SOURCE].segmenter
            assert isinstance(source, Segmenter)
            r = self.renditions[name] = self.rungs[name] = Rendition(self, name, source)
            if self.registry.tap is not None:
                self.registry.tap.rendition_added(r, True)
        return r

    def feed_rung(self, name: str, packet: MediaPacket, now: float) -> None:
        """A packet of rung ``name`` (see :meth:`add_rung`); unknown rungs are ignored."""
        r = self.rungs.get(name)
        if r is not None:
            r.feed(packet, now)

    def feed(self, packet: MediaPacket, now: float) -> None:
        if not packet.is_config and self.first_frame_at is None:
            self.first_frame_at = now
        self.bytes_in += len(packet.data)
        self.renditions[SOURCE].feed(packet, now)

    def discontinuity(self, now: float) -> None:
        """The publisher reconnected within the grace: continue with EXT-X-DISCONTINUITY."""
        for r in self.renditions.values():
            r.discontinuity(now)

    def end(self, now: float) -> None:
        """The broadcast is over: EXT-X-ENDLIST now, 404 after ``ended_retention``."""
        if self.ended_at is not None:
            return
        self.ended_at = now
        if self.registry.tap is not None:
            self.registry.tap.stream_ended(self, now)
        for r in self.renditions.values():
            r.end(now)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def resume_point(self) -> Resume:
        """Where a broadcast that replaces this one elsewhere should number on from: past every
        segment any rendition has started, one discontinuity later than the last."""
        stores = [r.store for r in self.renditions.values()]
        return Resume(
            max(s.next_msn for s in stores),
            max(s.discontinuity_sequence + sum(g.discontinuity for g in s.segments) for s in stores)
            + 1,
        )

    def changed(self) -> None:
        self.version += 1
        self.registry.notify(self.channel)

    def enforce_memory(self, now: float) -> None:
        limit = self.settings.max_stream_memory
        stores = [r.store for r in self.renditions.values()]
        total = sum(s.bytes_held for s in stores)
        while total > limit:
            freed = 0
            for s in sorted(stores, key=lambda s: -s.bytes_held):
                freed = s.shed(now)
                if freed:
                    break
            if not freed:
                break
            total -= freed

    def expire(self, now: float) -> None:
        for r in self.renditions.values():
            r.store.expire(now)

    # ---- reading --------------------------------------------------------------------------

    def master_playlist(self) -> str | None:
        """None until the source rendition can be played."""
        variants = [v for r in self.renditions.values() if (v := r.variant()) is not None]
        if not variants or SOURCE not in {v.uri.split("/")[0] for v in variants}:
            return None
        all_ts = all(r.store.ts for r in self.renditions.values() if r.variant() is not None)
        return master_playlist(variants, TS_VERSION if all_ts else VERSION)

    def media_playlist(self, name: str, *, skip: bool = False) -> str | None:
        r = self.renditions.get(name)
        if r is None or not r.store.ready:
            return None
        reports = tuple(
            RenditionReport(f"../{o.name}/index.m3u8", *o.store.last_position())
            for o in self.renditions.values()
            if o is not r and o.store.ready
        )
        return media_playlist(r.store, skip=skip, reports=reports)

    @property
    def stats(self) -> dict[str, Any]:
        """Numbers for the dashboard and /metrics: memory, segments, parts, repairs, GOP..."""
        src = self.renditions[SOURCE]
        seg = src.segmenter
        assert isinstance(seg, Segmenter)
        peak, avg = src.store.bitrate()
        init = src.init
        return {
            "broadcast_id": self.broadcast_id,
            "ended": self.ended,
            "bytes_held": sum(r.store.bytes_held for r in self.renditions.values()),
            "window_bytes": sum(r.store.window_bytes for r in self.renditions.values()),
            "bytes_in": self.bytes_in,
            "segments": sum(len(r.store.segments) for r in self.renditions.values()),
            "parts": sum(r.store.next_part_number for r in self.renditions.values()),
            "repaired_dts": seg.repaired_dts,
            "dropped_packets": seg.dropped_packets,
            "audio_resyncs": seg.audio_resyncs,
            "config_errors": src.config_errors,
            "memory_drops": sum(r.store.memory_drops for r in self.renditions.values()),
            "gop_seconds": seg.gop_seconds,
            "gop_too_long": (seg.gop_seconds or 0) > 2 * self.settings.segment_duration,
            "target_duration": src.store.target_duration,
            "forced_cuts": seg.forced_cuts,
            "part_target": src.store.part_target,
            "frame_rate": seg.frame_rate,
            "bitrate": avg,
            "peak_bitrate": peak,
            "codecs": init.codecs if init else None,
            "width": init.width if init else 0,
            "height": init.height if init else 0,
            "renditions": sorted(self.renditions),
        }


class HlsRegistry:
    """All live (and recently ended) streams, by channel."""

    def __init__(self, settings: HlsSettings | None = None, clock: Callable[[], float] = time.time):
        self.settings = settings or HlsSettings()
        self.clock = clock
        self._streams: dict[str, LiveStream] = {}
        self._listeners: list[Listener] = []
        self._ids = itertools.count()
        #: sees every change (see :class:`Tap`); None: nobody
        self.tap: Tap | None = None

    def open(self, channel: str, now: float, resume: Resume | None = None) -> LiveStream:
        """Start a new broadcast on ``channel`` (replacing an ended or stale one), numbered on
        from ``resume`` when given."""
        old = self._streams.get(channel)
        if old is not None and not old.ended:
            old.end(now)
        bid = f"{int(now * 1000):x}{next(self._ids):x}"
        stream = LiveStream(self, channel, bid, now, resume)
        self._streams[channel] = stream
        if self.tap is not None:
            self.tap.opened(stream)
        self.notify(channel)
        return stream

    def get(self, channel: str) -> LiveStream | None:
        return self._streams.get(channel)

    def channels(self) -> list[str]:
        return sorted(self._streams)

    def expire(self, now: float) -> None:
        """Drop departed segments past retention and ended streams past ``ended_retention``."""
        if self.tap is not None:
            self.tap.expired(now)
        for channel, stream in list(self._streams.items()):
            if (
                stream.ended_at is not None
                and stream.ended_at + self.settings.ended_retention < now
            ):
                del self._streams[channel]
                self.notify(channel)
            else:
                stream.expire(now)

    def add_listener(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def notify(self, channel: str) -> None:
        for cb in list(self._listeners):
            try:
                cb(channel)
            except Exception:
                log.exception("HLS change listener failed for %s", channel)
