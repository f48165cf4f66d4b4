"""HLS worker processes: every core serves viewers (``hls_workers`` >= 1).

The main process keeps ingest and the real registry. It binds the HLS port once (``hls_host``:
``hls_port``, a group of ``http_listen_sockets`` sockets) and starts ``hls_workers`` processes
(:mod:`kitch.server.hls_worker`) that inherit every one of those sockets and accept from them;
the kernel hands each new connection to one of them. Each worker has a Unix socketpair to the
main process: the main process sends it the configuration, a snapshot of every stream and then
every change of the registry (:class:`~kitch.hls.mirror.MirrorTap`), in order; the worker sends
back, once a second, the playlist readers it saw, which
:class:`~kitch.api.viewers.ViewerCounter` counts like its own.

A worker that exits (crash, SIGKILL, a message it could not apply) is started again (after 1 s,
doubling to 30 s while it keeps failing quickly) and gets a snapshot. A worker that reads its
socket too slowly is never waited for: past :data:`MAX_BEHIND` bytes queued for it, it gets
nothing more until the queue has drained, then a fresh snapshot (a resync). Workers die with
the main process (their socket closes, and on Linux the kernel signals them) and are stopped
with SIGTERM (then SIGKILL after :data:`STOP_GRACE` s) when it shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, cast

from prometheus_client import Counter, Gauge

from kitch.api.app import HTTP_REQUESTS
from kitch.api.viewers import ViewerCounter, key_of
from kitch.config import Settings, parse_hostport, split_list
from kitch.hls import HlsRegistry
from kitch.hls.mirror import FrameReader, MirrorError, MirrorTap, Op, encode, snapshot_frames
from kitch.server.http import listen_sockets

log = logging.getLogger("kitch.hls_workers")

#: Bytes queued for a worker (beyond its last snapshot) before it is dropped and resynced.
MAX_BEHIND = 64 * 1024 * 1024
#: Seconds a worker has to exit after SIGTERM before it is killed.
STOP_GRACE = 3.0
#: Seconds between two looks at the workers (exited? drained?).
WATCH_INTERVAL = 0.2
#: Largest frame read from a worker (a batch of playlist readers).
MAX_WORKER_FRAME = 64 * 1024 * 1024

WORKERS_UP = Gauge("kitch_hls_workers_running", "HLS worker processes running and in sync")
WORKER_RESTARTS = Counter("kitch_hls_worker_restarts_total", "HLS worker processes started again")
WORKER_RESYNCS = Counter(
    "kitch_hls_worker_resyncs_total", "HLS workers dropped for reading too slowly and resynced"
)


def _rows(batch: object, *types: type) -> Iterator[list[Any]]:
    """The items of a worker's ``batch`` that are lists of exactly ``types``, in order
    (anything else, from a confused worker, is skipped)."""
    if isinstance(batch, list):
        for item in batch:
            if (
                isinstance(item, list)
                and len(item) == len(types)
                and all(isinstance(v, t) for v, t in zip(item, types, strict=True))
            ):
                yield item


def _count_requests(counts: object) -> None:
    """A worker's answered requests, into ``kitch_http_requests_total`` (by method, area,
    status, as the main process counts its own; their durations are not reported)."""
    for method, area, status, n in _rows(counts, str, str, int, int):
        if n > 0:
            HTTP_REQUESTS.labels(method, area, str(status)).inc(n)


def worker_config(settings: Settings, hls: dict[str, Any]) -> dict[str, Any]:
    """What a worker needs to know (sent as its first message)."""
    return {
        "hls": hls,
        "http_max_connections": settings.http_max_connections,
        "http_header_timeout": settings.http_header_timeout,
        "http_max_header_bytes": settings.http_max_header_bytes,
        "trusted_proxies": split_list(settings.trusted_proxies),
        "log_format": settings.log_format,
        "log_level": settings.log_level,
    }


def hls_address(settings: Settings) -> tuple[str, int]:
    """Where the workers listen: ``hls_host`` (else the host of ``http``) and ``hls_port``."""
    host = settings.hls_host or parse_hostport(settings.http)[0]
    return host.strip("[]"), settings.hls_port


class _Link(asyncio.Protocol):
    """The main process's end of one worker's socketpair."""

    def __init__(self, owner: HlsWorkers, index: int) -> None:
        self.owner = owner
        self.index = index
        self.reader = FrameReader(MAX_WORKER_FRAME)
        self.transport: asyncio.Transport | None = None
        self.behind = False  # dropped: nothing is sent until it drained, then a snapshot
        self.base = 0  # bytes queued right after the last snapshot was written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            for message in self.reader.feed(data):
                if message[0] == Op.SIGHTINGS and len(message) == 2:
                    self.owner.sightings(message[1])
                elif message[0] == Op.REQUESTS and len(message) == 2:
                    _count_requests(message[1])
        except MirrorError as exc:
            log.warning("hls worker %d: %s", self.index, exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def send(self, frame: bytes) -> None:
        t = self.transport
        if t is None or self.behind or t.is_closing():
            return
        t.write(frame)
        if t.get_write_buffer_size() > self.base + MAX_BEHIND:
            self.behind = True
            WORKER_RESYNCS.inc()
            log.warning("hls worker %d: fell behind; resyncing it once it drains", self.index)

    def resync(self, registry: HlsRegistry) -> None:
        """Send a snapshot (the worker replaces what it had) and resume the changes."""
        t = self.transport
        if t is None or t.is_closing():
            return
        for frame in snapshot_frames(registry):
            t.write(frame)
        if self.owner.routes_frame is not None:
            t.write(self.owner.routes_frame)
        self.base = t.get_write_buffer_size()
        self.behind = False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class _Slot:
    """One worker: its process, its link, and when it may be started again."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.link: _Link | None = None
        self.started_at = 0.0
        self.backoff = 1.0
        self.restart_at = 0.0


class HlsWorkers:
    """Starts, feeds, watches and stops the HLS worker processes."""

    def __init__(
        self,
        settings: Settings,
        registry: HlsRegistry,
        viewers: ViewerCounter | None,
        hls: dict[str, Any],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.viewers = viewers
        self.config = encode([Op.CONFIG, worker_config(settings, hls)])
        self.slots = [_Slot(i) for i in range(settings.hls_workers)]
        self.listeners: list[socket.socket] = []
        self.tap: MirrorTap | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        #: the last ROUTES message (channels live on other nodes), for workers that resync
        self.routes_frame: bytes | None = None

    @property
    def port(self) -> int:
        return int(self.listeners[0].getsockname()[1])

    async def start(self) -> None:
        """Bind the HLS port (OSError when it cannot be had) and start every worker."""
        host, port = hls_address(self.settings)
        # every worker takes every socket: a worker's loop accepts one connection per socket
        # per turn (libuv), and whichever worker is free first takes the next one
        self.listeners = listen_sockets(host, port, self.settings.http_listen_sockets)
        self.tap = MirrorTap(self.registry, self._broadcast)
        for slot in self.slots:
            await self._spawn(slot)
        self._watch = asyncio.create_task(self._watcher(), name="hls-workers")
        log.info("%d HLS worker(s) serving http://%s:%d/hls", len(self.slots), host, self.port)

    def _broadcast(self, frame: bytes) -> None:
        for slot in self.slots:
            if slot.link is not None:
                slot.link.send(frame)

    def routes(self, table: dict[str, str]) -> None:
        """The channels live on other nodes of a cluster (name -> node base URL): the workers
        redirect requests for them there, as the main process does."""
        self.routes_frame = encode([Op.ROUTES, table])
        self._broadcast(self.routes_frame)

    def sightings(self, batch: object) -> None:
        if self.viewers is not None:
            for channel, address, agent in _rows(batch, str, str, bytes):
                self.viewers.seen_key(channel, key_of(address, agent))

    async def _spawn(self, slot: _Slot) -> None:
        assert self.listeners
        ours, theirs = socket.socketpair()
        try:
            slot.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kitch.server.hls_worker",
                    str(theirs.fileno()),
                    ",".join(str(s.fileno()) for s in self.listeners),
                ],
                pass_fds=(theirs.fileno(), *(s.fileno() for s in self.listeners)),
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        slot.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        link = _Link(self, slot.index)
        await loop.create_unix_connection(lambda: link, sock=ours)
        slot.link = link
        assert link.transport is not None
        link.transport.write(self.config)
        link.resync(self.registry)
        WORKERS_UP.inc()

    async def _watcher(self) -> None:
        while not self._stopping:
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            for slot in self.slots:
                link = slot.link
                if slot.proc is not None and slot.proc.poll() is not None:
                    code = slot.proc.returncode
                    slot.proc = None
                    if link is not None:
                        link.close()
                        slot.link = None
                    WORKERS_UP.dec()
                    lived = now - slot.started_at
                    slot.backoff = 1.0 if lived > 60 else min(30.0, slot.backoff * 2)
                    delay = 0.0 if lived > 60 else slot.backoff / 2
                    slot.restart_at = now + delay
                    log.warning(
                        "hls worker %d exited (%s) after %.1f s; starting it again in %.1f s",
                        slot.index,
                        code,
                        lived,
                        delay,
                    )
                elif (
                    link is not None
                    and link.behind
                    and link.transport is not None
                    and link.transport.get_write_buffer_size() == 0
                ):
                    link.resync(self.registry)
                if slot.proc is None and now >= slot.restart_at and not self._stopping:
                    try:
                        await self._spawn(slot)
                        WORKER_RESTARTS.inc()
                    except OSError as exc:
                        log.error("hls worker %d: cannot start: %s", slot.index, exc)
                        slot.restart_at = now + 5.0

    async def stop(self) -> None:
        """SIGTERM every worker, wait (then SIGKILL), close the links and the port."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.tap is not None:
            self.tap.close()
        procs = [s.proc for s in self.slots if s.proc is not None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for proc in procs:
            if proc.poll() is None:
                log.warning("hls worker pid %d did not stop: killing it", proc.pid)
                proc.kill()
                proc.wait()
        for slot in self.slots:
            if slot.link is not None:
                slot.link.close()
                slot.link = None
            if slot.proc is not None:
                slot.proc = None
                WORKERS_UP.dec()
        for sock in self.listeners:
            sock.close()
        self.listeners = []
