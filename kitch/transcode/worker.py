"""Runs one stream's ladder in worker threads: a decoder thread and one encoder thread per rung.

The caller (the ingest, on the event loop) only puts packets into a bounded queue and never
waits: a full queue drops the packet and counts it, then the decoder skips to the next keyframe
(a decoder cannot resume mid-GOP). Each rung has its own bounded queue of decoded frames, so a
rung that cannot keep real time drops frames (never a source keyframe, which must stay an IDR)
and counts them without slowing the other rungs. Output packets go to ``emit(rung, packets)``
from the worker threads; the caller marshals them to where they belong.

A decoder or encoder failure restarts only that part at the next source keyframe, after a
backoff that doubles on each failure (up to ``MAX_BACKOFF`` seconds) and resets after a
minute without one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kitch.media import MediaPacket
from kitch.transcode.audio import AudioToAac
from kitch.transcode.ladder import (
    DecodedFrame,
    LadderError,
    RungEncoder,
    RungPlan,
    SourceTiming,
    VideoDecoder,
)

log = logging.getLogger("kitch.transcode")

Emit = Callable[[str, list[MediaPacket]], None]
INPUT_QUEUE = 240  # packets (about 4 s of 30 fps video plus its audio)
FRAME_QUEUE = 15  # decoded frames waiting for one rung (0.5 s at 30 fps)
MAX_BACKOFF = 30.0
_STOP = object()


@dataclass
class RungStats:
    """Figures for one rung, read by the health API (plain ints and floats: safe to read from
    another thread)."""

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    restarts: int = 0
    cpu_seconds: float = 0.0
    media_ms: int = 0  # output media time encoded (for encode speed)
    error: str | None = None


@dataclass
class LadderStats:
    packets_in: int = 0
    dropped_packets: int = 0
    decoder_restarts: int = 0
    decode_cpu_seconds: float = 0.0
    rungs: dict[str, RungStats] = field(default_factory=dict)


class _Backoff:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.delay = 0.0
        self.until = 0.0
        self.last_failure = -1e18

    def failed(self) -> None:
        now = self.clock()
        if now - self.last_failure > 60:
            self.delay = 0.0
        self.delay = min(MAX_BACKOFF, max(0.5, self.delay * 2))
        self.until = now + self.delay
        self.last_failure = now

    def ready(self) -> bool:
        return self.clock() >= self.until


class _FrameBuffer:
    """A bounded queue of decoded frames for one rung. When it is full a new frame is dropped,
    unless it is a keyframe: then the oldest queued non-keyframe makes room for it (keyframes
    become IDRs and must all arrive); with none queued, the keyframe is added beyond the
    capacity, up to twice it (past that, a rung so far behind loses its oldest keyframe).
    Answers how many frames it dropped."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.items: deque[object] = deque()
        self.ready = threading.Condition()

    def put(self, item: object, force: bool = False) -> int:
        with self.ready:
            dropped = 0
            if len(self.items) >= self.capacity and not force:
                if not (isinstance(item, DecodedFrame) and item.keyframe):
                    return 1
                victim: object = next(
                    (i for i in self.items if isinstance(i, DecodedFrame) and not i.keyframe),
                    None,
                )
                if victim is None and len(self.items) >= 2 * self.capacity:
                    victim = self.items[0]
                if victim is not None:
                    self.items.remove(victim)
                    dropped = 1
            self.items.append(item)
            self.ready.notify()
            return dropped

    def get(self) -> object:
        with self.ready:
            while not self.items:
                self.ready.wait()
            return self.items.popleft()


class _RungThread:
    def __init__(self, owner: LadderWorker, plan: RungPlan) -> None:
        self.owner = owner
        self.plan = plan
        self.stats = RungStats()
        self.frames = _FrameBuffer(owner.frame_queue)
        self.encoder: RungEncoder | None = None
        self.backoff = _Backoff(owner.clock)
        self.thread = threading.Thread(target=self._run, name=f"ladder-{plan.name}", daemon=True)

    def offer(self, frame: DecodedFrame) -> None:
        self.stats.dropped += self.frames.put(frame)

    def _run(self) -> None:
        while True:
            item = self.frames.get()
            if item is _STOP:
                self._flush()
                return
            assert isinstance(item, DecodedFrame)
            self.stats.frames_in += 1
            if self.encoder is None:
                if not item.keyframe or not self.backoff.ready():
                    self.stats.dropped += 1
                    continue
                try:
                    self.encoder = RungEncoder(self.plan, self.owner.timing, self.owner.threads)
                except LadderError as exc:
                    self._failed(exc)
                    continue
            started = time.thread_time()
            try:
                packets = self.encoder.encode(item)
            except LadderError as exc:
                self._failed(exc)
                continue
            finally:
                self.stats.cpu_seconds += time.thread_time() - started
            self._emit(packets)

    def _emit(self, packets: list[MediaPacket]) -> None:
        media = [p for p in packets if not p.is_config]
        self.stats.frames_out += len(media)
        if media:
            self.stats.media_ms = media[-1].pts - (self.owner.timing.first_pts or 0)
        if packets:
            self.owner.emit(self.plan.name, packets)

    def _flush(self) -> None:
        if self.encoder is not None:
            try:
                self._emit(self.encoder.encode(None))
            except LadderError as exc:
                self.stats.error = str(exc)

    def _failed(self, exc: LadderError) -> None:
        log.warning("ladder rung %s of %s failed: %s", self.plan.name, self.owner.name, exc)
        self.encoder = None
        self.stats.restarts += 1
        self.stats.error = str(exc)
        self.backoff.failed()


class LadderWorker:
    """One stream's ladder in threads. ``put`` never blocks; ``close`` flushes and joins."""

    def __init__(
        self,
        name: str,
        plans: Sequence[RungPlan],
        emit: Emit,
        *,
        threads: int = 1,
        clock: Callable[[], float] = time.monotonic,
        input_queue: int = INPUT_QUEUE,
        frame_queue: int = FRAME_QUEUE,
    ) -> None:
        """``threads``: codec threads per decoder/encoder; ``input_queue``: source packets held
        (default 240); ``frame_queue``: decoded frames held per rung (default 15)."""
        self.name = name
        self.frame_queue = frame_queue
        self.emit = emit
        self.threads = threads
        self.clock = clock
        self.stats = LadderStats()
        self.timing = SourceTiming()
        self._video_config: MediaPacket | None = None
        self._decoder: VideoDecoder | None = None
        self._decoder_backoff = _Backoff(clock)
        self._audio: AudioToAac | None = None
        self._need_keyframe = True
        self._input: queue.Queue[object] = queue.Queue(input_queue)
        self._rungs = [_RungThread(self, plan) for plan in plans]
        self.stats.rungs = {r.plan.name: r.stats for r in self._rungs}
        self._thread = threading.Thread(target=self._run, name=f"ladder-{name}", daemon=True)
        self._closed = False

    @property
    def rung_names(self) -> list[str]:
        return [r.plan.name for r in self._rungs]

    def start(self) -> None:
        for r in self._rungs:
            r.thread.start()
        self._thread.start()

    def put(self, packet: MediaPacket) -> None:
        """Hand a source packet over (from the event loop); drops and counts when full."""
        if self._closed:
            return
        try:
            self._input.put_nowait(packet)
        except queue.Full:
            self.stats.dropped_packets += 1
            if packet.kind == "video":
                self._need_keyframe = True  # read by the decoder thread: skip to a keyframe

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued, stop the threads and wait for them (call off the loop)."""
        if self._closed:
            return
        self._closed = True
        self._input.put(_STOP)
        self._thread.join(timeout)
        for r in self._rungs:
            r.thread.join(timeout)

    # -- decoder thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._input.get()
            if item is _STOP:
                self._decode(None)
                for r in self._rungs:
                    r.frames.put(_STOP, force=True)
                if self._audio is not None:
                    self._audio_feed(None)
                return
            assert isinstance(item, MediaPacket)
            self.stats.packets_in += 1
            if item.kind == "audio":
                self._audio_packet(item)
            elif item.is_config:
                if self._video_config is None or item.data != self._video_config.data:
                    self._video_config = item
                    self._decoder = None
                    self._need_keyframe = True
            else:
                self._video_packet(item)

    def _video_packet(self, packet: MediaPacket) -> None:
        if self._need_keyframe:
            if not packet.keyframe:
                return
            self._need_keyframe = False
        if packet.keyframe:
            self.timing.on_keyframe(packet)
        if self._decoder is None:
            if self._video_config is None or not packet.keyframe:
                return
            if not self._decoder_backoff.ready():
                self._need_keyframe = True
                return
            try:
                self._decoder = VideoDecoder(self._video_config, self.threads)
            except LadderError as exc:
                self._decoder_failed(exc)
                return
        self._decode(packet)

    def _decode(self, packet: MediaPacket | None) -> None:
        if self._decoder is None:
            return
        started = time.thread_time()
        try:
            frames = self._decoder.decode(packet)
        except LadderError as exc:
            self._decoder_failed(exc)
            return
        finally:
            self.stats.decode_cpu_seconds += time.thread_time() - started
        for frame in frames:
            for r in self._rungs:
                r.offer(frame)

    def _decoder_failed(self, exc: LadderError) -> None:
        log.warning("ladder decoder of %s failed: %s", self.name, exc)
        self._decoder = None
        self._need_keyframe = True
        self.stats.decoder_restarts += 1
        self._decoder_backoff.failed()

    def _audio_packet(self, packet: MediaPacket) -> None:
        if packet.codec == "aac":
            return  # AAC is shared as it is: the caller copies the source's packets
        if packet.is_config:
            try:
                self._audio = AudioToAac(packet)
            except LadderError as exc:
                log.warning("audio of %s cannot be re-encoded: %s", self.name, exc)
                self._audio = None
            return
        if self._audio is not None:
            self._audio_feed(packet)

    def _audio_feed(self, packet: MediaPacket | None) -> None:
        assert self._audio is not None
        try:
            out = self._audio.feed(packet)
        except LadderError as exc:
            log.warning("audio of %s: %s", self.name, exc)
            self._audio = None
            return
        if out:
            self.emit("audio", out)
