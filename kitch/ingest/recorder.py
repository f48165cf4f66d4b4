"""The recorder sink: a broadcast's ``source`` rendition copied to disk as a VOD recording.

It never touches packets: it listens to the source rendition's segment store and hands each
segment, as the live HLS muxer finished it (the very bytes the HTTP side serves), and the init
segment it needs to a :class:`~kitch.recordings.writer.RecordingWriter` thread. The loop side
never blocks: the writer's queue is bounded, and a disk that falls behind or fails stops the
recording (the live stream goes on) with the reason stored for the dashboard.

Whether to record is the channel's switch, read when the broadcast starts
(:meth:`RecordingBackend.begin`, which also creates the recording's row); segments finished
before that answer wait in a small buffer. MPEG-TS output (``--hls-format ts``) is recorded as
``.ts`` segments without init segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kitch.hls.registry import SOURCE
from kitch.hls.store import RenditionStore, Segment
from kitch.ingest.sinks import BroadcastInfo
from kitch.media import MediaPacket
from kitch.recordings.writer import (
    MAX_QUEUE_BYTES,
    Finished,
    Progress,
    RecordingWriter,
    Report,
    SegmentJob,
    Stopped,
)

log = logging.getLogger("kitch.recordings")

#: Segments kept while the channel's switch is being read (a few seconds of media at most).
PENDING_SEGMENTS = 16
#: Seconds between two progress rows written while recording (the first segment at once).
PROGRESS_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class RecordingTarget:
    """Where a broadcast records: its row's id and its directory."""

    id: int
    directory: Path


@dataclass(frozen=True, slots=True)
class RecordingStatus:
    """What the recorder tells the backend to store (state: recording, ended, stopped,
    failed; ``ended_at`` is set once it is over)."""

    state: str
    reason: str | None
    segments: int
    bytes: int
    duration: float
    ended_at: float | None = None


class RecordingBackend(Protocol):
    """The server side of recordings (database rows, writer bookkeeping)."""

    max_queue_bytes: int

    async def begin(self, info: BroadcastInfo) -> RecordingTarget | None:
        """None: this broadcast is not recorded (the channel's switch is off)."""
        ...

    def update(self, recording_id: int, status: RecordingStatus) -> None:
        """Store the status (never blocks; called on the loop)."""
        ...

    def track(self, writer: RecordingWriter) -> None:
        """A writer started (the server waits for it at shutdown)."""
        ...


class RecorderSink:
    name = "recording"

    def __init__(self, info: BroadcastInfo, backend: RecordingBackend) -> None:
        self.info = info
        self.backend = backend
        self.loop = asyncio.get_running_loop()
        self.store: RenditionStore = info.stream.renditions[SOURCE].store
        self.state = "starting"  # starting | off | recording | stopped | failed | ended
        self.reason: str | None = None
        self.target: RecordingTarget | None = None
        self.writer: RecordingWriter | None = None
        self._pending: deque[tuple[SegmentJob, bytes]] = deque(maxlen=PENDING_SEGMENTS)
        self._inits_sent: set[int] = set()
        self._ended_at: float | None = None
        self._figures = (0, 0, 0.0)
        self._saved_at: float | None = None  # monotonic time of the last progress row
        self.store.segment_listeners.append(self._on_segment)
        self._task = asyncio.ensure_future(self._begin())

    # ---- start -----------------------------------------------------------------------------

    async def _begin(self) -> None:
        try:
            target = await self.backend.begin(self.info)
        except Exception:
            log.exception("could not start recording %s", self.info.channel)
            target = None
        if target is None:
            self._off()
            return
        self.target = target
        self.writer = RecordingWriter(
            target.directory,
            self._from_writer,
            max_queue_bytes=self.backend.max_queue_bytes or MAX_QUEUE_BYTES,
            name=self.info.channel,
        )
        self.writer.start()
        self.backend.track(self.writer)
        self.state = "recording"
        log.info("recording %s into %s", self.info.channel, target.directory)
        while self._pending:
            self._send(*self._pending.popleft())
        if self._ended_at is not None:
            self._finish()

    def _off(self) -> None:
        self.state = "off"
        self._pending.clear()
        self._unlisten()

    def _unlisten(self) -> None:
        if self._on_segment in self.store.segment_listeners:
            self.store.segment_listeners.remove(self._on_segment)

    # ---- segments --------------------------------------------------------------------------

    def _on_segment(self, store: RenditionStore, seg: Segment) -> None:
        if not seg.complete or self.state not in ("starting", "recording"):
            return
        init = store.inits.get(seg.init)
        if init is None:
            return
        ts = init.container == "ts"
        job = SegmentJob(
            seg.msn,
            tuple(p.data for p in seg.parts),  # not joined here: the writer's thread writes them
            seg.duration,
            -1 if ts else seg.init,
            seg.discontinuity,
            seg.program_date_time,
            store.target_duration or math.ceil(seg.duration),
            ts,
        )
        if self.state == "starting":
            self._pending.append((job, init.data))
        else:
            self._send(job, init.data)

    def _send(self, job: SegmentJob, init: bytes) -> None:
        writer = self.writer
        if writer is None or self.state != "recording":
            return
        if not job.ts and job.init not in self._inits_sent:
            self._inits_sent.add(job.init)
            writer.put_init(job.init, init)
        writer.put_segment(job)  # False: the writer is stopping and will say why

    # ---- reports from the writer thread ------------------------------------------------------

    def _from_writer(self, report: Report) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the process is exiting
            self.loop.call_soon_threadsafe(self._on_report, report)

    def _on_report(self, report: Report) -> None:
        target = self.target
        if target is None:
            return
        self._figures = (report.segments, report.bytes, report.duration)
        if isinstance(report, Progress):
            now = time.monotonic()
            due = self._saved_at is None or now - self._saved_at >= PROGRESS_INTERVAL
            if self.state == "recording" and due:
                self._saved_at = now
                self.backend.update(target.id, self._status("recording", None))
            return
        self._unlisten()
        now = self._ended_at if self._ended_at is not None else time.time()
        if isinstance(report, Stopped):
            self.state = "stopped" if report.segments else "failed"
            self.reason = report.reason
            log.warning(
                "recording of %s stopped (the live stream goes on): %s",
                self.info.channel,
                report.reason,
            )
        elif isinstance(report, Finished):
            self.state = "ended" if report.segments else "failed"
            if not report.segments:
                self.reason = "the broadcast ended before its first whole segment"
        self.backend.update(target.id, self._status(self.state, self.reason, now))

    def _status(
        self, state: str, reason: str | None, ended_at: float | None = None
    ) -> RecordingStatus:
        segments, size, duration = self._figures
        return RecordingStatus(state, reason, segments, size, duration, ended_at)

    # ---- the Sink interface ----------------------------------------------------------------

    def refuse(self, packet: MediaPacket) -> str | None:
        return None

    #: Segments come from the source rendition's store, not from packets.
    wants_frames = False

    def packet(self, packet: MediaPacket, now: float) -> None:
        pass  # segments come from the source rendition's store

    def discontinuity(self, now: float) -> None:
        pass  # the store marks the segment after the reconnect

    def end(self, now: float) -> None:
        """The broadcast is over. The passthrough sink, ended after this one, flushes the last
        segment into the store: the writer is told to finish once that has happened."""
        if self._ended_at is not None:
            return
        self._ended_at = now
        self.loop.call_soon(self._finish)

    def _finish(self) -> None:
        self._unlisten()
        if self.state == "starting":
            return  # _begin finishes once it knows
        if self.writer is not None and self.state == "recording":
            self.writer.finish()

    def health(self) -> dict[str, Any]:
        return {}
