"""This node in a cluster of Kitch nodes sharing one database (docs/CLUSTER.md, "Nodes").

:class:`ClusterNode` is the asyncio side of :mod:`kitch.cluster.leases`: it resolves the node's
id and URL from the settings, registers the node, closes what an earlier crash left open (but
not what other running nodes hold), runs the heartbeat that renews the node's leases, takes and
gives up channel leases for the ingest hub, and tells the HLS side which node to send a request
for a channel held elsewhere to (:meth:`ClusterNode.locate`, from a table of the channels live
on other nodes that every heartbeat reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import secrets
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kitch.cluster import leases
from kitch.config import Settings, parse_hostport, valid_node_id
from kitch.db import Database

log = logging.getLogger("kitch.cluster")

__all__ = ["ClusterNode", "NodeIdInUseError", "node_id_from", "node_url_from"]

#: Where the node id made once is kept, under the data dir.
NODE_ID_FILE = "node-id"
#: Media sequence numbers a broadcast taking a channel over from another node skips past the
#: old holder's last written position: segments it may have started after its last heartbeat.
RESUME_MSN_MARGIN = 3


class NodeIdInUseError(RuntimeError):
    """Another running process heartbeats under this node id."""


def node_id_from(settings: Settings) -> str:
    """``--node-id``, else the id kept in ``DATA_DIR/node-id``, made once from the host name
    and a random suffix (blocking file I/O: call it in a thread)."""
    if settings.node_id is not None:
        return settings.node_id
    path = settings.data_dir / NODE_ID_FILE
    with contextlib.suppress(FileNotFoundError):
        kept = path.read_text(encoding="utf-8").strip()
        if valid_node_id(kept):
            return kept
    host = "".join(
        c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in platform.node()
    )
    made = f"{host[:48] or 'node'}-{secrets.token_hex(4)}"
    _write_once(path, made)
    return path.read_text(encoding="utf-8").strip()


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` unless it exists (two processes racing: the first wins)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def node_url_from(settings: Settings) -> str:
    """``--node-url``, else ``--public-url``, else ``http://`` and the address of ``--http``
    (the host name when it binds every address)."""
    if settings.node_url is not None:
        return settings.node_url.rstrip("/")
    if settings.public_url is not None:
        return settings.public_url.rstrip("/")
    host, port = parse_hostport(settings.http)
    if host in ("0.0.0.0", "::", ""):
        host = platform.node()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class ClusterNode:
    """This node: its id and URL, its heartbeat, the leases of the channels live here.

    ``on_lost(channel)`` is awaited when a heartbeat finds that another node took the lease of
    a channel live here (this node was stalled past the lease): the broadcast must end."""

    def __init__(
        self,
        db: Database,
        node_id: str,
        url: str,
        *,
        heartbeat: float = 1.0,
        lease: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.node_id = node_id
        self.url = url.rstrip("/")
        self.heartbeat = heartbeat
        self.lease = lease
        self.wall = wall
        #: this process: "host/pid/random" (a restart after a crash is told from a second
        #: process started under the same id)
        self.incarnation = f"{platform.node()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.on_lost: Callable[[str], Coroutine[Any, Any, None]] | None = None
        #: told the channels live on other nodes (name -> URL) whenever that table changes
        #: (the HLS worker processes redirect with it)
        self.on_routes: Callable[[dict[str, str]], None] | None = None
        #: the last such table
        self.routes: dict[str, str] = {}
        #: channel id -> name of every channel whose lease this node holds
        self.held: dict[int, str] = {}
        #: origins (scheme://host:port) of the other nodes seen at the last heartbeat
        self.peer_origins: tuple[str, ...] = ()
        #: where the HLS numbering of each channel live here stands (name -> next media
        #: sequence number, discontinuity sequence), read at every heartbeat and written to the
        #: leases so that a node taking a channel over numbers on from it
        self.positions: Callable[[], dict[str, tuple[int, int]]] | None = None
        self._written: dict[int, tuple[int, int]] = {}
        #: channels taken over from another node -> the numbering their new broadcast starts at
        self._resumes: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._registered = False

    @classmethod
    async def from_settings(cls, db: Database, settings: Settings) -> ClusterNode:
        node_id = await asyncio.to_thread(node_id_from, settings)
        return cls(
            db,
            node_id,
            node_url_from(settings),
            heartbeat=settings.node_heartbeat,
            lease=settings.node_lease,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> int:
        """Register the node, close the broadcasts an earlier crash left open on channels no
        running node holds, start the heartbeat. Returns how many sessions were closed.

        Raises :class:`NodeIdInUseError` when another process heartbeats under this id (it
        waits one lease period to tell a live process from the remains of a crashed one)."""
        await self._check_id_free()
        await leases.register_node(self.db, self.node_id, self.url, self.incarnation, self.wall())
        self._registered = True
        closed = await leases.close_orphans(self.db, self.node_id, self.wall(), self.lease)
        found = await self._refresh_others()
        for node_id, url, _beat in found.peers:
            if url.rstrip("/") == self.url:
                log.warning(
                    "node %s has the same URL %s as this node %s: redirects between them would "
                    "loop; give each node its own --node-url",
                    node_id,
                    url,
                    self.node_id,
                )
        self._task = asyncio.create_task(self._run(), name="cluster-heartbeat")
        log.info("cluster node %s at %s (lease %g s)", self.node_id, self.url, self.lease)
        return closed

    async def _check_id_free(self) -> None:
        """A fresh heartbeat under this id: from this host, its process must be gone (else
        the id is in use); from another host, wait two heartbeats and see if it advances."""

        def fresh() -> tuple[float, str] | None:
            for node_id, _url, beat, incarnation in rows:
                if node_id == self.node_id and beat > self.wall() - self.lease:
                    return beat, incarnation
            return None

        rows = await leases.node_rows(self.db)
        seen = fresh()
        if seen is None:
            return
        host, _, rest = seen[1].partition("/")
        pid = rest.partition("/")[0]
        if host == platform.node() and pid.isdigit():
            if _process_exists(int(pid)):
                raise NodeIdInUseError(self._in_use(f"process {pid} on this host"))
            return  # that process is gone: this is a restart after a crash
        wait = min(self.lease, 2 * self.heartbeat + 0.5)
        log.warning(
            "node id %s heartbeated %.1f s ago from %s: waiting %g s to tell a running node "
            "from a crashed one",
            self.node_id,
            self.wall() - seen[0],
            host or "another host",
            wait,
        )
        await asyncio.sleep(wait)
        rows = await leases.node_rows(self.db)
        again = fresh()
        if again is not None and again[0] > seen[0]:
            raise NodeIdInUseError(self._in_use(f"a node on {host or 'another host'}"))

    def _in_use(self, by: str) -> str:
        return (
            f"node id {self.node_id!r} is in use by another running node ({by}); give each "
            "node its own --node-id"
        )

    async def stop(self) -> None:
        """Stop the heartbeat; give up every lease and the node row (a clean shutdown)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.held.clear()
        if not self._registered:  # never started, or already stopped
            return
        self._registered = False
        try:
            await leases.release_node(self.db, self.node_id, self.incarnation)
        except Exception:
            log.exception("could not release the leases of node %s", self.node_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self.beat()
            except Exception:  # the database may be away for a moment: try again next beat
                log.exception("cluster heartbeat failed")

    async def beat(self) -> None:
        """One heartbeat: renew the node row and its leases; end what was lost."""
        held = dict(self.held)
        changed = {}
        if self.positions is not None:
            now_at = self.positions()
            for channel_id, name in held.items():
                at = now_at.get(name)
                if at is not None and self._written.get(channel_id) != at:
                    changed[channel_id] = at
        renewal = await leases.renew(
            self.db,
            self.node_id,
            self.url,
            self.incarnation,
            self.held,  # live: a channel released during the beat must not be taken again
            self.wall(),
            self.lease,
            changed,
        )
        if renewal.owned:
            self._written = {i: at for i, at in {**self._written, **changed}.items() if i in held}
        if not renewal.owned:
            log.error(
                "another process now runs as node %s: give each node its own --node-id",
                self.node_id,
            )
        for channel_id in renewal.lost:
            channel = self.held.pop(channel_id, None)
            if channel is None:
                continue
            log.warning("lease of %s was taken by another node: ending it here", channel)
            if self.on_lost is not None:
                await self.on_lost(channel)
        await self._refresh_others()

    async def _refresh_others(self) -> leases.Others:
        """Read the other nodes: the origins of the live ones, and the channels they hold
        (told to ``on_routes`` when that table changed). Returns what was read."""
        now = self.wall()
        found = await leases.others(self.db, self.node_id, now)
        origins = []
        for _node_id, url, beat in found.peers:
            if beat > now - self.lease:
                parts = urlsplit(url)
                origin = f"{parts.scheme}://{parts.netloc}"
                if origin not in origins:
                    origins.append(origin)
        self.peer_origins = tuple(origins)
        if found.routes != self.routes:
            self.routes = found.routes
            if self.on_routes is not None:
                self.on_routes(found.routes)
        return found

    # -- leases ----------------------------------------------------------------------------

    async def acquire(self, channel_id: int, channel: str) -> str | None:
        """Take the channel's lease; None when this node holds it now, else the holder's id.
        Taken from another node, the channel's new broadcast numbers on from where that node
        last said its numbering stood (:meth:`resume`)."""
        before = await leases.position(self.db, channel_id)
        found = await leases.acquire(
            self.db, channel_id, channel, self.node_id, self.wall(), self.lease
        )
        if found is None:
            if before is not None and before.node_id != self.node_id and before.next_msn > 0:
                self._resumes[channel] = (
                    before.next_msn + RESUME_MSN_MARGIN,
                    before.discontinuity_sequence + 1,
                )
            self.held[channel_id] = channel
            self.routes.pop(channel, None)  # ours now (the next heartbeat tells the workers)
        return found

    def resume(self, channel: str) -> tuple[int, int] | None:
        """For a broadcast opening on ``channel`` just taken from another node: the media
        sequence number and discontinuity sequence to start at (once), else None."""
        return self._resumes.pop(channel, None)

    async def idle(self, channel: str) -> None:
        """The channel's publisher is gone (the reconnect grace runs): another node may take
        the channel for a new publish."""
        for channel_id in [i for i, name in self.held.items() if name == channel]:
            await leases.idle(self.db, channel_id, self.node_id)

    async def release(self, channel: str) -> None:
        """The channel's broadcast ended here: give its lease up."""
        for channel_id in [i for i, name in self.held.items() if name == channel]:
            del self.held[channel_id]
            await leases.release(self.db, channel_id, self.node_id)

    # -- HLS routing -----------------------------------------------------------------------

    async def locate(self, channel: str) -> str | None:
        """The base URL of the node holding ``channel`` when it is another node, else None
        (held here, or by nobody). Read from the table of channels live on other nodes that
        every heartbeat refreshes: no database query per request, whatever names clients ask
        for, and a channel that moves is seen within a heartbeat."""
        return self.routes.get(channel)
