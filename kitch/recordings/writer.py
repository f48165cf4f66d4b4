"""The writer thread of one recording: init and segment bytes in, files and a playlist out.

The event loop only calls the ``put_*`` methods and :meth:`RecordingWriter.finish`, which never
block: they append to a queue bounded in bytes (``max_queue_bytes``). A disk that cannot keep
up (the queue would overflow) or any ``OSError`` (ENOSPC, EACCES...) stops the recording: the
thread drops what is queued, closes the playlist with what was written (VOD + ENDLIST when the
disk still lets it) and reports :class:`Stopped` with the reason. The live stream never waits.

Each segment's file is written whole before its playlist entry is appended (one ``write`` on
an ``O_APPEND`` descriptor), so a process killed at any instant leaves a playlist that names
only complete files; :func:`kitch.recordings.files.finish` closes such a recording later.

Segment and init files are written with ``O_DIRECT`` where the filesystem takes it: from one
page-aligned buffer per writer, padded to whole blocks, then truncated to the real size. That
skips the page cache (on the development VM a 1.5 MB segment costs 0.24 ms of CPU that way
against 2.1 ms through the page cache, whose allocation and copy dominate what recording
costs). A filesystem that refuses it (EINVAL) gets ordinary writes from then on.

Reports go to ``report`` from the writer thread (the caller hands them to its loop).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kitch.recordings import files

log = logging.getLogger("kitch.recordings")

#: Default bound of the bytes waiting to be written, per recording.
MAX_QUEUE_BYTES = 64 * 1024 * 1024
#: O_DIRECT writes are whole blocks of this size from a buffer aligned to it (mmap: pages).
BLOCK = 4096
_O_DIRECT = getattr(os, "O_DIRECT", 0)


@dataclass(frozen=True, slots=True)
class InitJob:
    number: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SegmentJob:
    msn: int
    #: the segment's bytes: one buffer, or its parts in order (written one after the other,
    #: never joined on the event loop)
    data: bytes | tuple[bytes | memoryview, ...]
    duration: float
    init: int  # the init segment it needs (fMP4); -1 for MPEG-TS
    discontinuity: bool
    program_date_time: float
    target_duration: int  # the live stream's TARGETDURATION (header of the EVENT playlist)
    ts: bool = False

    @property
    def chunks(self) -> tuple[bytes | memoryview, ...]:
        return (self.data,) if isinstance(self.data, bytes) else self.data

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks)


@dataclass(frozen=True, slots=True)
class Progress:
    """A segment is on disk and listed."""

    segments: int
    bytes: int
    duration: float


@dataclass(frozen=True, slots=True)
class Stopped:
    """The recording stopped before the broadcast ended (``reason`` says why); what was
    written stays playable."""

    reason: str
    segments: int
    bytes: int
    duration: float


@dataclass(frozen=True, slots=True)
class Finished:
    """The broadcast ended and the playlist is closed (VOD, EXT-X-ENDLIST)."""

    segments: int
    bytes: int
    duration: float


Report = Progress | Stopped | Finished
_FINISH = object()


def describe(exc: OSError) -> str:
    """A short reason for the dashboard: what failed, in words a streamer can act on."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EDQUOT:
        return "the disk quota is used up"
    return f"cannot write the recording ({exc.strerror or exc.__class__.__name__})"


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


class RecordingWriter:
    """Writes one recording into ``directory`` (created if missing) from its own thread."""

    def __init__(
        self,
        directory: Path,
        report: Callable[[Report], None],
        *,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
        name: str = "recording",
    ) -> None:
        self.directory = directory
        self.report = report
        self.max_queue_bytes = max_queue_bytes
        self._queue: deque[InitJob | SegmentJob | object] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._stop_reason: str | None = None  # set by the loop side: fell behind
        self._closed = False  # finish() or a stop was asked: no more puts
        self._thread = threading.Thread(target=self._run, name=f"rec-{name}", daemon=True)
        # written state (writer thread only)
        self._inits: dict[int, str] = {}
        self._last_init = -2
        self._fd: int | None = None
        self._made = False
        self._direct = bool(_O_DIRECT)
        self._buffer: mmap.mmap | None = None
        self._entries: list[files.Entry] = []
        self._ts = False
        self._td = 1
        self.segments = 0
        self.bytes = 0
        self.duration = 0.0

    # ---- the loop side (never blocks) ------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def put_init(self, number: int, data: bytes) -> bool:
        return self._put(InitJob(number, data), len(data))

    def put_segment(self, job: SegmentJob) -> bool:
        return self._put(job, job.size)

    def _put(self, job: InitJob | SegmentJob, size: int) -> bool:
        with self._cond:
            if self._closed:
                return False
            if self._queued_bytes + size > self.max_queue_bytes:
                self._stop_reason = (
                    f"the disk could not keep up (more than {_size(self.max_queue_bytes)} "
                    "waiting to be written)"
                )
                self._closed = True
                self._queue.clear()
                self._queued_bytes = 0
                self._queue.append(_FINISH)
                self._cond.notify()
                return False
            self._queue.append(job)
            self._queued_bytes += size
            self._cond.notify()
            return True

    def finish(self) -> None:
        """The broadcast ended: write what is queued, close the playlist, end the thread."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._queue.append(_FINISH)
            self._cond.notify()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread (from a thread that may block); True once it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    # ---- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue:
                        self._cond.wait()
                    job = self._queue.popleft()
                    if isinstance(job, InitJob):
                        self._queued_bytes -= len(job.data)
                    elif isinstance(job, SegmentJob):
                        self._queued_bytes -= job.size
                    reason = self._stop_reason
                if job is _FINISH:
                    self._close()
                    if reason:
                        self._stopped(reason)
                    else:
                        self._report(Finished(*self._figures()))
                    return
                try:
                    if isinstance(job, InitJob):
                        self._write_init(job)
                    elif isinstance(job, SegmentJob):
                        self._write_segment(job)
                except OSError as exc:
                    log.warning("recording in %s stopped: %s", self.directory, exc)
                    with self._cond:
                        self._closed = True
                        self._queue.clear()
                        self._queued_bytes = 0
                    self._close()
                    self._stopped(describe(exc))
                    return
        except Exception:  # a bug: still tell the owner rather than die silently
            log.exception("recording writer for %s failed", self.directory)
            with self._cond:
                self._closed = True
                self._queue.clear()
            self._close()
            self._stopped("internal error while writing the recording")

    def _figures(self) -> tuple[int, int, float]:
        return self.segments, self.bytes, round(self.duration, 3)

    def _report(self, report: Report) -> None:
        try:
            self.report(report)
        except Exception:
            log.exception("recording report failed")

    def _stopped(self, reason: str) -> None:
        log.warning("recording in %s stopped: %s", self.directory, reason)
        self._report(Stopped(reason, *self._figures()))

    def _make_directory(self) -> None:
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True

    def _write_file(self, name: str, chunks: tuple[bytes | memoryview, ...]) -> None:
        path = self.directory / name
        try:
            if self._direct:
                try:
                    self._write_direct(path, chunks)
                    return
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._direct = False  # not on this filesystem: the page cache from now on
                    self._release_buffer()
            with open(path, "wb") as f:
                f.writelines(chunks)
        except OSError:
            with contextlib.suppress(OSError):  # a file cut short is never listed: none left
                path.unlink(missing_ok=True)
            raise

    def _write_direct(self, path: Path, chunks: tuple[bytes | memoryview, ...]) -> None:
        size = sum(len(c) for c in chunks)
        padded = -(-size // BLOCK) * BLOCK
        if self._buffer is None or len(self._buffer) < padded:
            self._release_buffer()
            self._buffer = mmap.mmap(-1, max(padded, 2 * 1024 * 1024))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | _O_DIRECT, 0o644)
        try:
            with memoryview(self._buffer) as whole, whole[:padded] as view:
                offset = 0
                for chunk in chunks:
                    view[offset : offset + len(chunk)] = chunk
                    offset += len(chunk)
                written = os.write(fd, view)
            if written != padded:
                raise OSError(errno.EIO, f"short write ({written} of {padded} bytes)")
            if padded != size:
                os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def _release_buffer(self) -> None:
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None

    def _write_init(self, job: InitJob) -> None:
        self._make_directory()
        name = files.init_name(job.number)
        self._write_file(name, (job.data,))
        self._inits[job.number] = name
        self.bytes += len(job.data)

    def _write_segment(self, job: SegmentJob) -> None:
        self._make_directory()
        name = files.segment_name(job.msn, job.ts)
        self._write_file(name, job.chunks)
        map_uri = None
        if not job.ts and job.init != self._last_init:
            map_uri = self._inits.get(job.init)
            if map_uri is None:
                raise OSError(0, f"segment {job.msn} needs init {job.init}, never given")
        first = not self._entries
        entry = files.Entry(
            name,
            job.duration,
            job.discontinuity and not first,
            map_uri,
            job.program_date_time if first or job.discontinuity else None,
        )
        text = files.render_entry(entry)
        if self._fd is None:
            self._ts = job.ts
            self._td = max(job.target_duration, math.floor(job.duration + 0.5), 1)
            text = files.header(self._td, ts=job.ts, ended=False) + text
            self._fd = os.open(
                self.directory / files.PLAYLIST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
            )
        written = os.write(self._fd, text.encode())
        if written != len(text.encode()):
            raise OSError(0, "short write to the playlist")
        self._entries.append(entry)
        self._last_init = job.init
        self.segments += 1
        self.bytes += job.size
        self.duration += job.duration
        self._report(Progress(*self._figures()))

    def _close(self) -> None:
        """Close the playlist: VOD with EXT-X-ENDLIST (as far as the disk allows)."""
        self._release_buffer()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if not self._entries:
            return
        try:
            files.replace_text(
                self.directory / files.PLAYLIST,
                files.render(self._entries, ts=self._ts, ended=True, at_least=self._td),
            )
        except OSError as exc:  # the readers get it closed anyway (files.as_vod)
            log.warning("could not close the playlist in %s: %s", self.directory, exc)
