"""Asyncio glue of the recordings: database rows, start-up recovery, retention cleanup.

:class:`Recordings` is the :class:`~kitch.ingest.recorder.RecordingBackend` the recorder sinks
talk to. Status updates are coalesced per recording and written by one task (a recording's
latest status wins), so a segment landing never waits for the database. File work (closing a
recording a crash left open, deleting) runs in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from kitch.config import Settings
from kitch.db import Database
from kitch.db import recordings as rows
from kitch.ingest.recorder import RecorderSink, RecordingStatus, RecordingTarget
from kitch.ingest.sinks import BroadcastInfo, Sink
from kitch.recordings import files
from kitch.recordings.retention import Held, plan
from kitch.recordings.writer import RecordingWriter

log = logging.getLogger("kitch.recordings")
#: Seconds the shutdown waits for the writers to flush their queues.
SHUTDOWN_WAIT = 30.0
_CHANNEL_DIR = re.compile(r"^[a-z0-9_]{1,64}$")
RECOVERED = "the server stopped while recording; kept up to the last whole segment"


class Recordings:
    def __init__(
        self, db: Database, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.settings = settings
        self.root: Path = settings.recordings_root
        self.enabled = settings.recordings
        self.max_queue_bytes = settings.recording_queue_bytes
        self.clock = clock
        self._writers: set[RecordingWriter] = set()
        self._pending: dict[int, RecordingStatus] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._cleaner: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # cleanups never overlap

    # -- the sink factory and the backend ---------------------------------------------------

    def sink(self, info: BroadcastInfo) -> Sink | None:
        """The recorder of a broadcast (None when recordings are off server-wide)."""
        return RecorderSink(info, self) if self.enabled else None

    async def begin(self, info: BroadcastInfo) -> RecordingTarget | None:
        if not await rows.recording_enabled(self.db, info.channel_id):
            return None
        path = f"{info.channel}/{info.broadcast_id}"
        directory = self.root / path
        rid = await rows.create_recording(
            self.db, info.channel_id, info.broadcast_id, path, now=self.clock()
        )
        return RecordingTarget(rid, directory)

    def update(self, recording_id: int, status: RecordingStatus) -> None:
        self._pending[recording_id] = status
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    def track(self, writer: RecordingWriter) -> None:
        self._writers = {w for w in self._writers if not w.done}
        self._writers.add(writer)

    async def _flush(self) -> None:
        while self._pending:
            rid, status = next(iter(self._pending.items()))
            del self._pending[rid]
            try:
                await rows.update_recording(
                    self.db,
                    rid,
                    state=status.state,
                    reason=status.reason,
                    segments=status.segments,
                    size=status.bytes,
                    duration=status.duration,
                    ended_at=status.ended_at,
                    now=self.clock(),
                )
            except Exception:
                log.exception("could not store the status of recording %s", rid)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Close what a dead process left open, clean up once, then every interval."""
        closed = await self.recover()
        if closed:
            log.warning("closed %d recording(s) left open by an earlier crash", closed)
        self._cleaner = asyncio.create_task(self._clean_forever(), name="recordings-cleanup")

    async def close(self) -> None:
        """After the hub stopped: wait for the writers, then store their last status."""
        if self._cleaner is not None:
            self._cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleaner
        await asyncio.sleep(0)  # the sinks' end callbacks tell their writers to finish
        writers = [w for w in self._writers if not w.done]
        deadline = time.monotonic() + SHUTDOWN_WAIT
        for w in writers:
            left = max(0.0, deadline - time.monotonic())
            if not await asyncio.to_thread(w.join, left):
                log.warning("a recording writer did not finish in time (%s)", w.directory)
        await asyncio.sleep(0)  # their last reports, queued from the threads
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush()

    async def recover(self) -> int:
        """Recordings still marked ``recording`` belong to a process that died: close each
        (VOD + ENDLIST up to its last whole segment) and store what is left."""
        left = await rows.open_recordings(self.db)
        for rec in left:
            try:
                summary = await asyncio.to_thread(files.finish, self.root / rec.path)
            except OSError as exc:
                log.warning("could not close recording %s: %s", rec.id, exc)
                summary = files.Summary(0, 0, 0.0)
            ended = max(rec.started_at, rec.updated_at)
            await rows.update_recording(
                self.db,
                rec.id,
                state="ended" if summary.segments else "failed",
                reason=RECOVERED
                if summary.segments
                else "the server stopped before it had written a whole segment",
                segments=summary.segments,
                size=summary.bytes,
                duration=summary.duration,
                ended_at=ended,
                now=self.clock(),
            )
        return len(left)

    async def _clean_forever(self) -> None:
        while True:
            try:
                await self.cleanup()
            except Exception:
                log.exception("recordings cleanup failed")
            await asyncio.sleep(self.settings.recording_cleanup_interval)

    async def cleanup(self) -> list[int]:
        """Delete expired recordings and the oldest over the quota (files in a thread), and
        directories no recording row names (a deleted account's). Returns the ids deleted."""
        async with self._lock:
            finished = await rows.finished_recordings(self.db)
            live = await rows.open_recordings(self.db)
            doomed = plan(
                [Held(r.id, r.ended_at or r.started_at, r.bytes) for r in finished],
                now=self.clock(),
                retention_days=self.settings.recording_retention_days,
                quota_bytes=self.settings.recording_quota_bytes,
                live_bytes=sum(r.bytes for r in live),
            )
            by_id = {r.id: r for r in finished}
            for rid in doomed:
                path = await rows.delete_recording(self.db, rid)
                if path is not None:
                    rec = by_id[rid]
                    log.info(
                        "deleting recording %s of %s (%d bytes, ended %s)",
                        rid,
                        rec.channel,
                        rec.bytes,
                        time.strftime("%Y-%m-%d %H:%M", time.gmtime(rec.ended_at or 0)),
                    )
                    await asyncio.to_thread(files.remove, self.root / path)
            # listed before the rows are read: a recording's row exists before its directory
            found = await asyncio.to_thread(files.directories, self.root)
            known = await rows.all_paths(self.db)
            stray = [p for p in found if p not in known and _CHANNEL_DIR.match(p.split("/")[0])]
            for p in stray:
                log.info("deleting recording files no recording names: %s", p)
                await asyncio.to_thread(files.remove, self.root / p)
            return doomed
