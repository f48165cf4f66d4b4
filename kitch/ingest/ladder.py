"""The ladder sink: each broadcast's 720p/480p/360p renditions, from PyAV encoders in threads.

One :class:`LadderPool` per server admits a bounded number of ladders at once (the CPU they
take is the budget); a broadcast past it runs passthrough only, says so in its health, and gets
its ladder when a slot frees. The sink runs on the event loop and never waits: source packets go
into the worker's bounded queue, and the worker's output comes back to the loop with
``call_soon_threadsafe`` into the stream's rung renditions, which cut where the source cuts.

AAC audio is shared as it is by every rung (the source's packets); other audio (Opus) is
re-encoded to AAC once by the worker. The ladder needs fMP4 output (its rungs are CMAF parts);
with ``--hls-format ts`` it stays off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kitch.hls import codecs
from kitch.hls.registry import LiveStream
from kitch.media import MediaPacket
from kitch.transcode.ladder import DECODABLE, DEFAULT_RUNGS, Rung, RungPlan, plan_ladder
from kitch.transcode.worker import LadderWorker

log = logging.getLogger("kitch.ladder")
#: the rungs a channel picks among; others named in --ladder follow only its on/off switch
STANDARD_RUNGS = frozenset(r.name for r in DEFAULT_RUNGS)

#: (enabled, rung names) for a channel, read at the start of each broadcast
ChannelLadder = Callable[[int], Awaitable[tuple[bool, list[str]]]]


class LadderPool:
    """Admission control: at most ``slots`` ladders run; the others wait in order."""

    def __init__(self, slots: int) -> None:
        self.slots = max(0, slots)
        self.running: set[LadderSink] = set()
        self.waiting: deque[LadderSink] = deque()

    def acquire(self, sink: LadderSink) -> bool:
        if len(self.running) < self.slots:
            self.running.add(sink)
            return True
        if sink not in self.waiting:
            self.waiting.append(sink)
        return False

    def release(self, sink: LadderSink) -> None:
        if sink in self.waiting:
            self.waiting.remove(sink)
        if sink in self.running:
            self.running.discard(sink)
            while self.waiting and len(self.running) < self.slots:
                nxt = self.waiting.popleft()
                self.running.add(nxt)
                nxt.slot_granted()


@dataclass(frozen=True, slots=True)
class LadderConfig:
    """Server-wide ladder settings: the rungs a channel may have and codec threads per
    encoder (1: one core per rung at most, the lowest delay)."""

    rungs: tuple[Rung, ...]
    threads: int = 1


class LadderSink:
    """The ladder of one broadcast (see the module's docstring)."""

    name = "ladder"

    def __init__(
        self,
        stream: LiveStream,
        channel_id: int,
        pool: LadderPool,
        config: LadderConfig,
        channel_ladder: ChannelLadder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stream = stream
        self.channel_id = channel_id
        self.pool = pool
        self.config = config
        self.clock = clock
        self.loop = asyncio.get_running_loop()
        self.state = "starting"  # off | starting | waiting | running | unavailable
        self.reason: str | None = None
        self.rungs: tuple[Rung, ...] = config.rungs
        self.worker: LadderWorker | None = None
        #: Every frame from the first start of the transcoder on (its rungs then exist for
        #: good and take the AAC frames as they are); a plain attribute: it is read per frame.
        self.wants_frames = False
        self.plans: list[RungPlan] = []
        self._video_config: MediaPacket | None = None
        self._audio_config: MediaPacket | None = None
        self._keyframe: MediaPacket | None = None
        self._settings_read = channel_ladder is None
        self._ended = False
        if stream.settings.format == "ts":
            self._off("unavailable", "the ladder needs fMP4 HLS output (--hls-format fmp4)")
        elif not config.rungs:
            self._off("off", "no rungs configured")
        elif channel_ladder is not None:
            self._settings_task = asyncio.ensure_future(self._read_settings(channel_ladder))

    async def _read_settings(self, channel_ladder: ChannelLadder) -> None:
        try:
            enabled, names = await channel_ladder(self.channel_id)
        except Exception:
            log.exception("could not read the ladder settings of %s", self.stream.channel)
            enabled, names = True, [r.name for r in self.config.rungs]
        if self._ended:
            return
        self._settings_read = True
        # the channel picks among the standard rungs; rungs the operator named otherwise
        # (--ladder) follow only the channel's on/off switch
        self.rungs = tuple(
            r for r in self.config.rungs if r.name in names or r.name not in STANDARD_RUNGS
        )
        if not enabled or not self.rungs:
            self._off("off", "turned off for this channel" if not enabled else "no rungs chosen")
            return
        self._try_start()

    def _off(self, state: str, reason: str) -> None:
        self.state, self.reason = state, reason

    # ---- the Sink interface -----------------------------------------------------------------

    def refuse(self, packet: MediaPacket) -> str | None:
        return None  # a source the ladder cannot decode plays as passthrough only

    def packet(self, packet: MediaPacket, now: float) -> None:
        if packet.is_config:
            if packet.kind == "video":
                self._video_config = packet
            else:
                self._audio_config = packet
                if packet.codec == "aac":
                    for name in self.stream.rungs:
                        self.stream.feed_rung(name, packet, now)
        elif packet.kind == "video" and packet.keyframe and self._keyframe is None:
            self._keyframe = packet
            self._try_start()
        if packet.kind == "audio" and packet.codec == "aac" and not packet.is_config:
            for name in self.stream.rungs:  # AAC is shared as it is
                self.stream.feed_rung(name, packet, now)
        if self.worker is not None and (packet.kind == "video" or packet.codec != "aac"):
            self.worker.put(packet)

    def discontinuity(self, now: float) -> None:
        """The publisher reconnected: the encoders start over at its first keyframe."""
        self._stop_worker()
        self._keyframe = None
        if self.state == "running":
            self.state = "starting"

    def end(self, now: float) -> None:
        self._ended = True
        self._stop_worker()
        self.pool.release(self)

    def health(self) -> dict[str, Any]:
        w = self.worker
        ladder = {
            "state": self.state,
            "reason": self.reason,
            "decode_cpu_seconds": round(w.stats.decode_cpu_seconds, 3) if w else 0.0,
            "dropped_packets": w.stats.dropped_packets if w else 0,
            "decoder_restarts": w.stats.decoder_restarts if w else 0,
        }
        rungs = []
        for plan in self.plans:
            rendition = self.stream.rungs.get(plan.name)
            if rendition is None:
                continue  # not started (waiting for a slot)
            stats = w.stats.rungs.get(plan.name) if w else None
            _peak, avg = rendition.store.bitrate()
            speed = None
            if stats and stats.cpu_seconds > 0:
                speed = round(stats.media_ms / 1000 / stats.cpu_seconds, 2)
            rungs.append(
                {
                    "name": plan.name,
                    "width": plan.width,
                    "height": plan.height,
                    "bitrate_kbps": round(avg / 1000, 1),
                    "fps": round(plan.fps, 3),
                    "encode_speed": speed,
                    "dropped_frames": stats.dropped if stats else 0,
                    "restarts": stats.restarts if stats else 0,
                    "cpu_seconds": round(stats.cpu_seconds, 3) if stats else 0.0,
                    "bytes_held": rendition.store.bytes_held,
                    "window_bytes": rendition.store.window_bytes,
                    "error": stats.error if stats else None,
                }
            )
        return {"ladder": ladder, "renditions": rungs}

    # ---- starting and stopping --------------------------------------------------------------

    def _try_start(self) -> None:
        if self._ended or self.worker is not None or not self._settings_read:
            return
        if self.state in ("off", "unavailable"):
            return
        config, key = self._video_config, self._keyframe
        if config is None or key is None:
            return
        if config.codec not in DECODABLE:
            self._off("unavailable", f"cannot decode {config.codec}")
            return
        try:
            info = codecs.video_info(config.codec, bytes(config.data), bytes(key.data))
        except Exception as exc:  # a configuration record the muxer took but cannot size
            self._off("unavailable", f"unreadable video configuration: {exc}")
            return
        self.plans = plan_ladder(info.width, info.height, info.fps, self.rungs)
        if not self.plans:
            self._off("off", f"the source ({info.height}p) is not above any rung")
            return
        if self not in self.pool.running and not self.pool.acquire(self):
            self.state = "waiting"
            self.reason = "waiting for a free encoder slot: passthrough only"
            return
        self._start_worker()

    def slot_granted(self) -> None:
        """The pool gave this waiting sink a slot: start at the next keyframe."""
        if self._ended:
            self.pool.release(self)
            return
        self._keyframe = None  # the worker starts at the source's next keyframe
        self.state, self.reason = "starting", None

    def _start_worker(self) -> None:
        self.wants_frames = True
        for plan in self.plans:
            self.stream.add_rung(plan.name)
            if self._audio_config is not None and self._audio_config.codec == "aac":
                self.stream.feed_rung(plan.name, self._audio_config, self.clock())
        self.worker = LadderWorker(
            self.stream.channel, self.plans, self._emit, threads=self.config.threads
        )
        self.worker.start()
        assert self._video_config is not None
        self.worker.put(self._video_config)
        if self._audio_config is not None and self._audio_config.codec != "aac":
            self.worker.put(self._audio_config)
        self.state, self.reason = "running", None
        log.info(
            "ladder of %s: %s",
            self.stream.channel,
            ", ".join(f"{p.name} {p.width}x{p.height}" for p in self.plans),
        )

    def _stop_worker(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            # flushing joins threads: never on the event loop
            threading.Thread(target=worker.close, name="ladder-close", daemon=True).start()

    def _emit(self, name: str, packets: list[MediaPacket]) -> None:
        """From a worker thread: hand the packets to the loop."""
        self.loop.call_soon_threadsafe(self._deliver, name, packets)

    def _deliver(self, name: str, packets: Sequence[MediaPacket]) -> None:
        if self._ended and self.stream.ended:
            return
        now = self.clock()
        targets = list(self.stream.rungs) if name == "audio" else [name]
        for target in targets:
            for p in packets:
                self.stream.feed_rung(target, p, now)
