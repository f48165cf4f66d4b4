"""Live thumbnails: a still picture of every live broadcast, refreshed every few seconds.

Three parts:

* :class:`ThumbnailSink`, one per broadcast (the ``thumbnails`` output). Its :meth:`packet`
  only keeps a reference to the latest video keyframe and the codec configuration record
  before it. When a keyframe arrives and ``interval`` seconds have passed since the last
  picture was started (the first keyframe starts one at once), it hands that keyframe to the
  worker; if the broadcast's previous job has not finished, it counts a skip and tries again
  at the next keyframe. So a broadcast has at most one job queued or running.
* :class:`Thumbnailer`, one per server: a single worker thread that runs the jobs of every
  broadcast one after another (decode the keyframe, scale, JPEG; see
  :mod:`kitch.transcode.thumbnails`) and writes the offline pictures. A job's result comes
  back to the event loop with ``call_soon_threadsafe``.
* :class:`ThumbnailStore`: the pictures the HTTP side serves. Live ones are held in memory
  (two JPEGs per live channel). When a broadcast ends its last picture is written to
  ``DATA_DIR/thumbnails/<channel id>-<name>/<size>.jpg`` (each file written to a temporary
  name, flushed and renamed over the old one, with the picture's time as its modification
  time), and from then on served from there, also after a restart. The channel id in the
  directory name keeps a deleted account's picture from showing for a new account of the same
  name.

Writing the file is a job on the same worker thread, queued behind the broadcast's last
picture job, so the picture saved is the newest one. At shutdown :meth:`Thumbnailer.close`
waits for the queued writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kitch.ingest.sinks import BroadcastInfo
from kitch.media import MediaPacket
from kitch.transcode.decoders import decoder_for
from kitch.transcode.thumbnails import SIZES, ThumbnailError, make_thumbnails

log = logging.getLogger("kitch.thumbnails")

#: The picture sizes served, as the names in the URLs (``640x360``).
SIZE_NAMES: tuple[str, ...] = tuple(f"{w}x{h}" for w, h in SIZES)
DEFAULT_INTERVAL = 45.0
#: The interval range meant for production; shorter ones (down to 1 s) are for tests.
PRODUCTION_INTERVAL = (30.0, 60.0)
_DIR_NAME = re.compile(r"^(?P<id>[0-9]{1,18})-(?P<name>[a-z0-9_]{1,64})$")


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """One picture of a broadcast in every size (JPEG bytes by size name)."""

    images: Mapping[str, bytes]
    #: Wall clock (Unix seconds) when its keyframe arrived.
    taken_at: float

    @property
    def version(self) -> int:
        """Changes with every picture: its time in milliseconds."""
        return int(self.taken_at * 1000)


@dataclass(frozen=True, slots=True)
class SavedThumbnail:
    """An offline picture on disk: whose it is and when it was taken."""

    channel_id: int
    taken_at: float

    @property
    def version(self) -> int:
        return int(self.taken_at * 1000)


class ThumbnailStore:
    """The pictures served under ``/thumbnails``: in memory while live, on disk after.

    Every method but :meth:`read_saved`, :meth:`write_saved` and :meth:`scan` runs on the
    event loop and does no I/O; those three block (run them in a thread)."""

    def __init__(self, directory: Path, interval: float = DEFAULT_INTERVAL) -> None:
        self.directory = directory
        self.interval = interval
        #: channel name -> (broadcast id, newest picture) of live broadcasts
        self.live: dict[str, tuple[int, Thumbnail]] = {}
        #: channel name -> the picture on disk
        self.saved: dict[str, SavedThumbnail] = {}

    async def load(self) -> None:
        """Learn which offline pictures are on disk (at start-up)."""
        self.saved = await asyncio.to_thread(self.scan)

    def scan(self) -> dict[str, SavedThumbnail]:
        """The offline pictures on disk, the highest channel id per name (blocking)."""
        found: dict[str, SavedThumbnail] = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return found
        for entry in entries:
            match = _DIR_NAME.match(entry.name)
            if match is None or not entry.is_dir():
                continue
            try:
                stats = [os.stat(Path(entry.path) / f"{size}.jpg") for size in SIZE_NAMES]
            except OSError:
                continue  # a size missing: never served
            name, channel_id = match["name"], int(match["id"])
            known = found.get(name)
            if known is None or known.channel_id < channel_id:
                found[name] = SavedThumbnail(channel_id, stats[0].st_mtime)
        return found

    def _path(self, name: str, channel_id: int, size: str) -> Path:
        return self.directory / f"{channel_id}-{name}" / f"{size}.jpg"

    # -- what the HTTP side asks ------------------------------------------------------------

    def live_picture(self, name: str) -> Thumbnail | None:
        entry = self.live.get(name)
        return None if entry is None else entry[1]

    def saved_picture(self, name: str, channel_id: int) -> SavedThumbnail | None:
        saved = self.saved.get(name)
        return saved if saved is not None and saved.channel_id == channel_id else None

    def version(self, name: str, channel_id: int) -> int | None:
        """The version of the picture ``/thumbnails/<name>/`` serves now, None when none."""
        live = self.live_picture(name)
        if live is not None:
            return live.version
        saved = self.saved_picture(name, channel_id)
        return None if saved is None else saved.version

    def read_saved(self, name: str, channel_id: int, size: str) -> bytes | None:
        """An offline picture's bytes, None when the file is gone (blocking)."""
        try:
            return self._path(name, channel_id, size).read_bytes()
        except OSError:
            return None

    # -- what the sinks do ------------------------------------------------------------------

    def put_live(self, name: str, broadcast_id: int, picture: Thumbnail) -> None:
        self.live[name] = (broadcast_id, picture)

    def write_saved(self, name: str, channel_id: int, picture: Thumbnail) -> None:
        """Write every size of ``picture`` atomically (blocking): a temporary file, flushed to
        disk, renamed over the old one, its modification time set to the picture's."""
        folder = self.directory / f"{channel_id}-{name}"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for size, data in picture.images.items():
            target = folder / f"{size}.jpg"
            tmp = folder / f".{size}.jpg.{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.utime(tmp, (picture.taken_at, picture.taken_at))
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def saved_written(
        self, name: str, channel_id: int, broadcast_id: int, picture: Thumbnail
    ) -> None:
        """The broadcast's last picture is on disk: serve it from there from now on."""
        self.saved[name] = SavedThumbnail(channel_id, picture.taken_at)
        entry = self.live.get(name)
        if entry is not None and entry[0] == broadcast_id:
            del self.live[name]


class Thumbnailer:
    """The server's thumbnail work: one worker thread shared by every broadcast, the store and
    the interval. :meth:`close` (blocking) waits for queued jobs and stops the thread."""

    def __init__(
        self,
        store: ThumbnailStore,
        interval: float = DEFAULT_INTERVAL,
        sizes: tuple[tuple[int, int], ...] = SIZES,
    ) -> None:
        self.store = store
        self.interval = interval
        self.sizes = sizes
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails")
        self._closed = False

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job`` for the worker thread; False once closed."""
        if self._closed:
            return False
        try:
            self._pool.submit(job)
        except RuntimeError:  # shut down meanwhile
            return False
        return True

    def close(self) -> None:
        """Run what is queued (the offline pictures of ended broadcasts), then stop (blocking)."""
        self._closed = True
        self._pool.shutdown(wait=True)

    def sink(self, info: BroadcastInfo) -> ThumbnailSink:
        """The sink factory (see :mod:`kitch.ingest.sinks`)."""
        return ThumbnailSink(info, self)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ThumbnailSink:
    """The thumbnails of one broadcast (see the module's docstring)."""

    name = "thumbnails"

    def __init__(
        self,
        info: BroadcastInfo,
        owner: Thumbnailer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = info.channel
        self.channel_id = info.channel_id
        self.broadcast_id = info.broadcast_id
        self.owner = owner
        self.clock = clock
        self.loop = asyncio.get_running_loop()
        self.state = "waiting"  # waiting (no keyframe yet) | running | unavailable
        self.reason: str | None = "waiting for the first video keyframe"
        self._config: MediaPacket | None = None
        self._keyframe: MediaPacket | None = None
        self._keyframe_wall = 0.0
        self._due = -float("inf")
        self._busy = False
        self._ended = False
        #: the newest picture made; set by the worker thread, read by the save job after it
        self._latest: Thumbnail | None = None
        # figures for health()
        self.made = 0
        self.skips = 0
        self.failures = 0
        self.last_at: float | None = None
        self.encode_ms: float | None = None
        self.last_error: str | None = None

    # ---- the Sink interface -----------------------------------------------------------------

    def refuse(self, packet: MediaPacket) -> str | None:
        return None  # a codec without a decoder here just has no thumbnail

    #: Only video configurations and keyframes are read.
    wants_frames = False

    def packet(self, packet: MediaPacket, now: float) -> None:
        if packet.kind != "video" or self._ended:
            return
        if packet.is_config:
            self._config_packet(packet)
            return
        if not packet.keyframe or self._config is None:
            return
        self._keyframe, self._keyframe_wall = packet, now
        if self.clock() < self._due:
            return
        if self._busy:
            self.skips += 1  # the previous picture is still being made: the next keyframe
            return
        self._start(packet, now)

    def discontinuity(self, now: float) -> None:
        """The publisher reconnected: its configuration may change; wait for its keyframe."""
        self._config = self._keyframe = None

    def end(self, now: float) -> None:
        """Queue the save of the last picture behind the job in progress (if any)."""
        if self._ended:
            return
        self._ended = True
        if self._latest is None and not self._busy and self._keyframe is not None:
            self._start(self._keyframe, self._keyframe_wall)  # ended before any picture
        self.owner.submit(self._save)

    def health(self) -> dict[str, Any]:
        return {
            "thumbnails": {
                "state": self.state,
                "reason": self.reason,
                "interval": self.owner.interval,
                "last_at": _iso(self.last_at),
                "encode_ms": self.encode_ms,
                "made": self.made,
                "skips": self.skips,
                "failures": self.failures,
                "error": self.last_error,
            }
        }

    # ---- jobs -------------------------------------------------------------------------------

    def _config_packet(self, packet: MediaPacket) -> None:
        if decoder_for(packet.codec) is None:
            self._config = None
            self.state = "unavailable"
            self.reason = f"this server cannot decode {packet.codec}: no thumbnails"
            return
        self._config = packet
        if self.state == "unavailable":
            self.state, self.reason = "waiting", "waiting for the first video keyframe"

    def _start(self, keyframe: MediaPacket, wall: float) -> None:
        config = self._config
        if config is None:
            return
        if not self.owner.submit(lambda: self._make(config, keyframe, wall)):
            return
        self._busy = True
        self._due = self.clock() + self.owner.interval

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        # a closed loop (shutdown) raises RuntimeError: nobody is left to tell
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(callback, *args)

    def _make(self, config: MediaPacket, keyframe: MediaPacket, wall: float) -> None:
        """In the worker thread: decode, scale, encode."""
        started = time.thread_time()
        try:
            images = make_thumbnails(config, keyframe, self.owner.sizes)
        except ThumbnailError as exc:
            self._post(self._failed, str(exc))
            return
        except Exception as exc:  # never kill the shared worker thread
            log.exception("thumbnail of %s failed", self.channel)
            self._post(self._failed, f"unexpected error: {exc}")
            return
        cpu_ms = (time.thread_time() - started) * 1000
        picture = Thumbnail(images, wall)
        self._latest = picture
        self._post(self._made, picture, cpu_ms)

    def _made(self, picture: Thumbnail, cpu_ms: float) -> None:
        self._busy = False
        self.made += 1
        self.last_at = picture.taken_at
        self.encode_ms = round(cpu_ms, 2)
        self.state, self.reason = "running", None
        if not self._ended:
            self.owner.store.put_live(self.channel, self.broadcast_id, picture)

    def _failed(self, error: str) -> None:
        self._busy = False
        self.failures += 1
        self.last_error = error
        log.warning("thumbnail of %s: %s", self.channel, error)

    def _save(self) -> None:
        """In the worker thread, after the last picture job: keep the last picture on disk."""
        picture = self._latest
        if picture is None:
            return
        store = self.owner.store
        try:
            store.write_saved(self.channel, self.channel_id, picture)
        except OSError as exc:
            log.warning("could not save the thumbnail of %s: %s", self.channel, exc)
            return
        self._post(store.saved_written, self.channel, self.channel_id, self.broadcast_id, picture)
